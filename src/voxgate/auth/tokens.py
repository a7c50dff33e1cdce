"""The login JWT: Guardian's claim shape (what Telnyx emits) plus a ``kid`` header.

Minting and the cryptographic half of verification are pure: the key ring and the time are
arguments. Whether the credential behind ``sub`` still allows the token is the service's job.
"""

from __future__ import annotations

import json
import math
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from voxgate.auth.keyring import KeyRing
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
        "jti": str(uuid.uuid4()),
        "nbf": iat - 1,
        "sub": subject,
        "tel_token": secrets.token_urlsafe(72),
        "typ": "access",
    }
    token = jwt.encode(
        claims,
        key.secret,
        algorithm=ALGORITHM,
        headers={"kid": key.kid},
        json_encoder=_AtobSafeEncoder,
    )
    return token, TokenClaims(subject, claims["jti"], iat, exp, key.kid)


def verify_signature(ring: KeyRing, token: object, now: float) -> TokenClaims:
    """Signature, algorithm allow-list, kid, iss, aud, typ, nbf and exp; any failure is one error.

    The message never says which check failed beyond a short reason and never echoes the token.
    """
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_BYTES:
        raise LoginFailed("JWT token authentication failed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise LoginFailed("JWT token authentication failed") from None
    if header.get("alg") != ALGORITHM:
        raise LoginFailed("JWT token authentication failed")
    secret = ring.verifying_secret(header.get("kid"))
    if secret is None:
        raise LoginFailed("JWT token authentication failed")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=ISSUER,
            issuer=ISSUER,
            options={
                "require": ["exp", "iat", "nbf", "sub", "jti", "iss", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError:
        raise LoginFailed("JWT token authentication failed") from None
    exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
    sub, jti = claims.get("sub"), claims.get("jti")
    if claims.get("typ") != "access":
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
