"""Argon2 for every stored password.

A dummy hash keeps "no such user" exactly as slow as "wrong password".
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["Passwords"]


class Passwords:
    def __init__(
        self, *, time_cost: int = 2, memory_cost: int = 19456, parallelism: int = 1
    ) -> None:
        # OWASP's argon2id minimum (19 MiB, t=2): strong, yet ~20 ms so logins stay responsive.
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism
        )
        self._dummy = self._hasher.hash("voxgate-dummy-password")

    def hash(self, password: str) -> str:
        return str(self._hasher.hash(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Constant work whether or not the user exists: unknown users verify against a dummy."""
        try:
            ok = bool(self._hasher.verify(stored_hash or self._dummy, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored_hash is not None
