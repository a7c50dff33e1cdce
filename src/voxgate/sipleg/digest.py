"""Answering a carrier's digest challenge (RFC 3261 22, RFC 2617, RFC 8760): the client side.

Kamailio checks the digests our users send; this is the other direction, a trunk's 401/407 to
an INVITE or REGISTER of ours. Hand-written (a dozen lines of hashing) because no maintained
library answers SIP challenges without bringing its own transport; ``tests/unit/
test_sipleg_digest.py`` holds it against httpx's HTTP digest for the same inputs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["Challenge", "authorization"]

_PARAM = re.compile(r'([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_HASHES = {"MD5": "md5", "SHA-256": "sha256"}  # hashlib names


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` or ``Proxy-Authenticate`` value we can answer."""

    realm: str
    nonce: str
    algorithm: str  # MD5 | SHA-256, each optionally -sess
    qop: str | None  # "auth" when offered, else None (RFC 2069 style)
    opaque: str | None
    stale: bool

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        """None for a scheme or algorithm we cannot answer (then the call fails as refused)."""
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != "digest":
            return None
        params = {k.lower(): _unquote(v) for k, v in _PARAM.findall(rest)}
        algorithm = params.get("algorithm", "MD5").upper()
        if _hash(algorithm) is None or "nonce" not in params:
            return None
        qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            return None  # auth-int only: we would have to hash the body; nobody demands it
        return cls(
            params.get("realm", ""),
            params["nonce"],
            algorithm,
            "auth" if qops else None,
            params.get("opaque"),
            params.get("stale", "").lower() == "true",
        )


def authorization(
    challenge: Challenge, method: str, uri: str, user: str, password: str, cnonce: str, nc: int = 1
) -> str:
    """The ``Authorization``/``Proxy-Authorization`` value answering ``challenge``."""
    name = _hash(challenge.algorithm)
    assert name is not None  # Challenge.parse refused the others

    def digest(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    count = f"{nc:08x}"
    ha1 = digest(f"{user}:{challenge.realm}:{password}")
    if challenge.algorithm.endswith("-SESS"):
        ha1 = digest(f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = digest(f"{method}:{uri}")
    if challenge.qop:
        response = digest(f"{ha1}:{challenge.nonce}:{count}:{cnonce}:{challenge.qop}:{ha2}")
    else:
        response = digest(f"{ha1}:{challenge.nonce}:{ha2}")
    fields = [
        f'username="{_quote(user)}"',
        f'realm="{_quote(challenge.realm)}"',
        f'nonce="{_quote(challenge.nonce)}"',
        f'uri="{_quote(uri)}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if challenge.opaque is not None:
        fields.append(f'opaque="{_quote(challenge.opaque)}"')
    if challenge.qop:
        fields += [f"qop={challenge.qop}", f"nc={count}", f'cnonce="{_quote(cnonce)}"']
    return "Digest " + ", ".join(fields)


def _hash(algorithm: str) -> str | None:
    return _HASHES.get(algorithm.upper().removesuffix("-SESS"))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _quote(value: str) -> str:
    """A quoted-string's content: no line breaks (header injection), quotes escaped."""
    clean = value.replace("\r", "").replace("\n", "")
    return clean.replace("\\", "\\\\").replace('"', '\\"')
