"""The login JWT: Guardian's claim shape (what Telnyx emits) plus a ``kid`` header.

Minting and the cryptographic half of verification are pure: the key ring and the time are
arguments. Whether the credential behind ``sub`` still allows the token is the service's job.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any

from voxgate.auth.keyring import KeyRing
from voxgate.domain import ids
from voxgate.domain.errors import LoginFailed

__all__ = [
    "ISSUER",
    "MAX_TOKEN_BYTES",
    "TOKEN_LIFETIME",
    "TokenClaims",
    "mint",
    "verify_signature",
]

ISSUER = "telnyx_telephony"
TOKEN_LIFETIME = 86_400
ALGORITHM = "HS512"
MAX_TOKEN_BYTES = 4096
LEEWAY = 30


class _AtobSafeEncoder(json.JSONEncoder):
    """JSON whose base64 never contains '-' or '_', so the browser SDK's ``atob`` can read
    ``exp``: ASCII only, and '>', '?', '~', DEL escaped (they only occur inside strings)."""

    def encode(self, o: Any) -> str:
        text = super().encode(o)
        return (
            text.replace(">", "\\u003e")
            .replace("?", "\\u003f")
            .replace("~", "\\u007e")
            .replace("\x7f", "\\u007f")
        )


_ENCODER = _AtobSafeEncoder(separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: str
    jti: str
    iat: int
    exp: int
    kid: str


def mint(
    ring: KeyRing,
    *,
    subject: str,
    now: float,
    not_before_iat: float = 0.0,
    expires_at: float | None = None,
) -> tuple[str, TokenClaims]:
    """``exp = min(iat + 24 h, expires_at)``; ``iat`` is never below ``not_before_iat``.

    ``not_before_iat`` is the credential's ``tokens_valid_after``: a token minted in the same
    second as a revocation gets ``iat`` at the cut-off so it is not mistaken for an old one.
    """
    key = ring.signing_key()
    iat = max(math.floor(now), math.ceil(not_before_iat))
    exp = iat + TOKEN_LIFETIME
    if expires_at is not None:
        exp = min(exp, math.floor(expires_at))
    claims: dict[str, Any] = {
        "aud": ISSUER,
        "exp": exp,
        "iat": iat,
        "iss": ISSUER,
        "jti": ids.new_uuid(),
        "nbf": iat - 1,
        "sub": subject,
        "tel_token": _b64url(ids.random_bytes(72)),
        "typ": "access",
    }
    token = _sign(key.secret, _header(key.kid), claims)
    return token, TokenClaims(subject, claims["jti"], iat, exp, key.kid)


@functools.lru_cache(maxsize=64)
def _header(kid: str) -> str:
    """The header segment: the same for every token of a key, so encoded once per key (it
    was a fifth of the JSON work of a REST mint, ``make bench`` profile)."""
    return _b64url(_ENCODER.encode({"alg": ALGORITHM, "kid": kid, "typ": "JWT"}).encode("ascii"))


def _sign(secret: bytes, head: str, claims: dict[str, Any]) -> str:
    """Compact JWS, HS512. Written out rather than through PyJWT for the same reason as
    ``verify_signature``; tests/unit/test_tokens.py decodes what this makes with PyJWT."""
    body = _b64url(_ENCODER.encode(claims).encode("ascii"))
    signature = hmac.new(secret, f"{head}.{body}".encode("ascii"), hashlib.sha512).digest()
    return f"{head}.{body}.{_b64url(signature)}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(segment: str) -> object:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def verify_signature(ring: KeyRing, token: object, now: float) -> TokenClaims:
    """Signature, algorithm allow-list, kid, iss, aud, typ, nbf and exp; any failure is one error.

    Written out rather than through PyJWT: PyJWT validates base64 one character at a time in
    Python, which was the largest single cost of a login (``make bench`` profile). HS512 with a
    fixed algorithm needs only an HMAC and a constant-time comparison of the *encoded* signature
    (so no second encoding of one signature is accepted); tests/unit/test_tokens.py checks that
    this accepts exactly the tokens PyJWT accepts. The message never echoes the token.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
        raise LoginFailed("JWT token authentication failed")
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        raise LoginFailed("JWT token authentication failed")
    head, body, signature = parts
    try:
        header = _b64url_json(head)
    except (ValueError, RecursionError):  # bad base64/JSON, or JSON nested past the stack
        raise LoginFailed("JWT token authentication failed") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise LoginFailed("JWT token authentication failed")
    secret = ring.verifying_secret(header.get("kid"))
    if secret is None:
        raise LoginFailed("JWT token authentication failed")
    expected = hmac.new(secret, f"{head}.{body}".encode("ascii"), hashlib.sha512).digest()
    if not hmac.compare_digest(_b64url(expected), signature):
        raise LoginFailed("JWT token authentication failed")
    try:
        claims = _b64url_json(body)
    except (ValueError, RecursionError):  # bad base64/JSON, or JSON nested past the stack
        raise LoginFailed("JWT token authentication failed") from None
    if not isinstance(claims, dict):
        raise LoginFailed("JWT token authentication failed")
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    sub, jti = claims.get("sub"), claims.get("jti")
    if claims.get("iss") != ISSUER or claims.get("typ") != "access":
        raise LoginFailed("JWT token authentication failed")
    aud = claims.get("aud")
    if aud != ISSUER and not (isinstance(aud, list) and ISSUER in aud):
        raise LoginFailed("JWT token authentication failed")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (exp, nbf, iat)):
        raise LoginFailed("JWT token authentication failed")
    if not isinstance(sub, str) or not isinstance(jti, str):
        raise LoginFailed("JWT token authentication failed")
    assert isinstance(exp, int) and isinstance(nbf, int) and isinstance(iat, int)
    if now >= exp:
        raise LoginFailed("JWT token expired")
    if now + LEEWAY < nbf:
        raise LoginFailed("JWT token not yet valid")
    return TokenClaims(sub, jti, iat, exp, str(header["kid"]))
