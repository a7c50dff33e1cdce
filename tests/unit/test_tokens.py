"""Token minting and signature checks, pure: the ring and the clock are arguments."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.auth.keyring import KeyRing
from voxgate.auth.tokens import mint, verify_signature
from voxgate.domain.errors import LoginFailed
from voxgate.domain.records import SigningKey

NOW = 1_800_000_000.0


def ring(*kids: str) -> KeyRing:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return KeyRing.from_keys([SigningKey(k, secrets.token_bytes(64), at) for k in kids])


def test_claims_follow_the_24h_and_expires_at_rule() -> None:
    r = ring("k1")
    token, claims = mint(r, subject="cred-1", now=NOW)
    assert claims.exp - claims.iat == 86_400
    capped_token, capped = mint(r, subject="cred-1", now=NOW, expires_at=NOW + 600)
    assert capped.exp == int(NOW + 600)
    assert verify_signature(r, token, NOW + 10).sub == "cred-1"
    with pytest.raises(LoginFailed, match="expired"):
        verify_signature(r, capped_token, NOW + 601)


def test_iat_never_below_the_revocation_cutoff() -> None:
    _, claims = mint(ring("k"), subject="s", now=NOW + 0.2, not_before_iat=NOW + 1)
    assert claims.iat == int(NOW + 1) and claims.exp == claims.iat + 86_400


def test_payload_is_atob_safe_for_random_names_and_ids() -> None:
    """The browser SDK decodes the payload with atob(), which rejects '-' and '_'."""
    r = ring("k")

    @settings(max_examples=300, deadline=None)
    @given(st.text(min_size=1, max_size=64))
    def check(subject: str) -> None:
        token, _ = mint(r, subject=subject, now=NOW)
        payload = token.split(".")[1]
        assert "-" not in payload and "_" not in payload, subject
        decoded = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
        assert decoded["sub"] == subject

    check()


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda t, r: jwt.encode({"sub": "x"}, None, algorithm="none"), "alg none"),
        (
            lambda t, r: jwt.encode(
                _claims(t), secrets.token_bytes(64), algorithm="HS512", headers={"kid": "k"}
            ),
            "other key",
        ),
        (
            lambda t, r: jwt.encode(
                _claims(t), r.keys["k"].secret, algorithm="HS256", headers={"kid": "k"}
            ),
            "HS256",
        ),
        (
            lambda t, r: jwt.encode(
                _claims(t),
                r.keys["k"].secret,
                algorithm="HS512",
                headers={"kid": "../../etc/passwd"},
            ),
            "bad kid",
        ),
        (
            lambda t, r: jwt.encode(
                {**_claims(t), "iss": "evil"},
                r.keys["k"].secret,
                algorithm="HS512",
                headers={"kid": "k"},
            ),
            "iss",
        ),
        (
            lambda t, r: jwt.encode(
                {**_claims(t), "aud": "evil"},
                r.keys["k"].secret,
                algorithm="HS512",
                headers={"kid": "k"},
            ),
            "aud",
        ),
        (
            lambda t, r: jwt.encode(
                {**_claims(t), "typ": "refresh"},
                r.keys["k"].secret,
                algorithm="HS512",
                headers={"kid": "k"},
            ),
            "typ",
        ),
        (
            lambda t, r: jwt.encode(
                {**_claims(t), "nbf": int(NOW) + 3600},
                r.keys["k"].secret,
                algorithm="HS512",
                headers={"kid": "k"},
            ),
            "nbf",
        ),
        (lambda t, r: t.rsplit(".", 1)[0] + ".AAAA", "signature"),
        (
            lambda t, r: (
                t.split(".")[0]
                + "."
                + base64.urlsafe_b64encode(b'{"sub":"other"}').decode().rstrip("=")
                + "."
                + t.split(".")[2]
            ),
            "tampered",
        ),
        (lambda t, r: "x" * 5000, "oversized"),
        (lambda t, r: "%%%.###.$$$", "garbage"),
    ],
)
def test_forgeries_are_refused_without_echoing_the_token(mutate, why: str) -> None:  # type: ignore[no-untyped-def]
    r = ring("k")
    token, _ = mint(r, subject="s", now=NOW)
    forged = mutate(token, r)
    with pytest.raises(LoginFailed) as exc:
        verify_signature(r, forged, NOW)
    assert forged not in str(exc.value) and token not in str(exc.value), why


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def test_ring_prefers_newest_live_key() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 2, 1, tzinfo=UTC)
    r = KeyRing.from_keys(
        [
            SigningKey("old", b"a" * 64, at),
            SigningKey("new", b"b" * 64, later),
            SigningKey("gone", b"c" * 64, later, retired_at=later),
        ]
    )
    assert r.signing_kid == "new" and set(r.keys) == {"old", "new"}
    assert r.verifying_secret(["not", "a", "str"]) is None
