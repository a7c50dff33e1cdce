"""What SIP digest authentication needs, kept sealed, and never the password itself.

A REGISTER's digest (RFC 2617 / RFC 8760) is checked against HA1 = H(user:realm:password):
the edge (Kamailio) needs HA1, not the password. So when a password is set we keep HA1 for
MD5 and for SHA-256 under the deployment's realm, sealed like the signing keys (AES-GCM under
the secret file, bound to the record's id), next to the argon2 hash that password logins use.

A realm is part of HA1: a deployment that changes its SIP domain needs each password set again
(``actions/reset_password``), or the next WebRTC password login of the credential records it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from voxgate.auth.keyring import Sealer
from voxgate.domain.errors import ConfigurationError

__all__ = ["ALGORITHMS", "DigestSeal", "DigestSecret", "ha1"]

ALGORITHMS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def ha1(algorithm: str, user: str, realm: str, password: str) -> str:
    """H(user:realm:password) in lowercase hex (RFC 8760 3.4.2)."""
    digest = ALGORITHMS[algorithm](f"{user}:{realm}:{password}".encode(), usedforsecurity=False)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class DigestSecret:
    """HA1 per algorithm for one user name in one realm."""

    realm: str
    user: str
    ha1: dict[str, str]

    @classmethod
    def of(cls, user: str, realm: str, password: str) -> DigestSecret:
        return cls(realm, user, {alg: ha1(alg, user, realm, password) for alg in ALGORITHMS})


class DigestSeal:
    """Seals and opens ``DigestSecret``s; ``decoy`` gives a stable HA1 for a user name that
    has none, so an unknown user costs the edge the same work and gets the same answer as a
    wrong password."""

    PURPOSE = "sip-digest"

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._decoy_key = sealer.derive("sip-digest-decoy")

    def seal(self, record_id: str, secret: DigestSecret) -> bytes:
        body = json.dumps({"realm": secret.realm, "user": secret.user, "ha1": secret.ha1})
        return self._sealer.seal(body.encode(), f"{self.PURPOSE}:{record_id}")

    def open(self, record_id: str, blob: bytes | None) -> DigestSecret | None:
        if not blob:
            return None
        try:
            raw = json.loads(self._sealer.open(blob, f"{self.PURPOSE}:{record_id}"))
        except (ConfigurationError, ValueError):
            return None  # another secret file, or a damaged value: as if none were kept
        return DigestSecret(str(raw["realm"]), str(raw["user"]), dict(raw["ha1"]))

    def decoy(self, user: str, realm: str, algorithm: str) -> str:
        mac = hmac.new(self._decoy_key, f"{algorithm}:{user}:{realm}".encode(), hashlib.sha256)
        size = ALGORITHMS[algorithm]().digest_size
        return mac.hexdigest()[: 2 * size]
