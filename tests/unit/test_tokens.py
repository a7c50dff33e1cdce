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


def _pyjwt_accepts(r: KeyRing, token: str) -> bool:
    """The reference: what PyJWT (which mints our tokens) would accept, with our claim rules."""
    try:
        header = jwt.get_unverified_header(token)
        secret = r.verifying_secret(header.get("kid"))
        if header.get("alg") != "HS512" or secret is None:
            return False
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS512"],
            audience="telnyx_telephony",
            issuer="telnyx_telephony",
            options={
                "require": ["exp", "iat", "nbf", "sub", "jti", "iss", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        return False
    ints = [claims.get(k) for k in ("exp", "nbf", "iat")]
    return (
        claims.get("typ") == "access"
        and all(isinstance(v, int) and not isinstance(v, bool) for v in ints)
        and isinstance(claims.get("sub"), str)
        and isinstance(claims.get("jti"), str)
        and claims["exp"] > NOW
        and claims["nbf"] <= NOW + 30
    )


def _ours_accepts(r: KeyRing, token: str) -> bool:
    try:
        verify_signature(r, token, NOW)
    except LoginFailed:
        return False
    return True


_R = ring("k")
_VALID, _ = mint(_R, subject="cred-1", now=NOW)
_ALPHABET = "ABCxyz019-_=.+/ %\u00e9"


@settings(max_examples=1500, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(_VALID)), st.sampled_from(["set", "drop", "insert"])),
        min_size=1,
        max_size=3,
    ),
    char=st.sampled_from(_ALPHABET),
)
def test_our_verifier_agrees_with_pyjwt_on_mutated_tokens(
    edits: list[tuple[int, str]], char: str
) -> None:
    token = _VALID
    for pos, op in edits:
        pos = min(pos, len(token) - 1)
        if op == "set":
            token = token[:pos] + char + token[pos + 1 :]
        elif op == "drop":
            token = token[:pos] + token[pos + 1 :]
        else:
            token = token[:pos] + char + token[pos:]
    assert _ours_accepts(_R, token) == _pyjwt_accepts(_R, token)


_claim_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(int(NOW) - 10**6, int(NOW) + 10**6),
    st.text(max_size=8),
    st.sampled_from(["telnyx_telephony", "access", ["telnyx_telephony"], ["x"]]),
)


@settings(max_examples=1500, deadline=None)
@given(
    claims=st.fixed_dictionaries(
        {},
        optional={
            k: _claim_values for k in ("aud", "exp", "iat", "iss", "jti", "nbf", "sub", "typ")
        },
    ),
    kid=st.sampled_from(["k", "other"]),
)
def test_our_verifier_agrees_with_pyjwt_on_signed_claim_sets(
    claims: dict[str, object], kid: str
) -> None:
    token = jwt.PyJWS().encode(
        json.dumps(claims).encode(), _R.keys["k"].secret, algorithm="HS512", headers={"kid": kid}
    )
    assert _ours_accepts(_R, token) == _pyjwt_accepts(_R, token)


def test_a_second_encoding_of_the_signature_is_refused() -> None:
    head, body, sig = _VALID.split(".")
    assert _ours_accepts(_R, _VALID)
    assert not _ours_accepts(_R, f"{head}.{body}.{sig}==")


def test_a_header_nested_past_the_stack_is_an_ordinary_refusal() -> None:
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")
    with pytest.raises(LoginFailed):
        verify_signature(_R, f"{deep}.e30.abc", NOW)
