"""Signing keys: several may verify, exactly one (the newest unretired) signs.

Secrets rest in the store sealed with AES-GCM under a key-encryption key that lives in a file
outside the database, so a copied database alone cannot mint tokens.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from voxgate.domain.errors import ConfigurationError
from voxgate.domain.records import SigningKey

__all__ = ["KeyRing", "Sealer"]


class Sealer:
    """Seals signing secrets for storage; the KEK file is created 0600 on first use."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("key-encryption key must be 32 bytes")
        self._kek = kek
        self._aead = AESGCM(kek)

    @classmethod
    def from_file(cls, path: Path) -> Sealer:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
        return cls(path.read_bytes()[:32])

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose``, stable for as long as the secret file is."""
        return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose.encode()).derive(
            self._kek
        )

    def seal(self, secret: bytes, kid: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, secret, kid.encode())

    def open(self, blob: bytes, kid: str) -> bytes:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], kid.encode())
        except InvalidTag:
            raise ConfigurationError(
                f"signing key {kid} cannot be unsealed: "
                "the secret file does not belong to this database"
            ) from None


@dataclass(frozen=True, slots=True)
class KeyRing:
    """An immutable snapshot; rotation builds a new ring and swaps it in."""

    keys: dict[str, SigningKey]
    signing_kid: str | None

    @classmethod
    def from_keys(cls, keys: list[SigningKey]) -> KeyRing:
        live = [k for k in keys if k.retired_at is None]
        newest = max(live, key=lambda k: (k.created_at, k.kid), default=None)
        return cls({k.kid: k for k in live}, newest.kid if newest else None)

    def signing_key(self) -> SigningKey:
        if self.signing_kid is None:
            raise LookupError("no signing key")
        return self.keys[self.signing_kid]

    def verifying_secret(self, kid: object) -> bytes | None:
        if not isinstance(kid, str):
            return None
        key = self.keys.get(kid)
        return key.secret if key else None
