"""API keys: made, listed and revoked here; checked on every request by ``api.deps``.

A key is random and high-entropy, so the store keeps one SHA-256 digest of it (a request
costs one hash), its first characters (``prefix``) to tell keys apart in a list, and a scope:
``admin`` may do everything; ``tokens`` may read credentials and mint their tokens and ICE
servers, nothing else: the key a web backend holds, so a leaked backend key cannot create,
delete or deactivate anything.
"""

from __future__ import annotations

import enum

from voxgate.auth.apikeys import digest_api_key
from voxgate.domain import ids
from voxgate.domain.errors import NotFound, ValidationFailed
from voxgate.domain.records import ApiKey
from voxgate.domain.timeutil import utcnow
from voxgate.store.base import Store

__all__ = ["ApiKeys", "Scope"]

PREFIX_LENGTH = 10  # "KEYvx" and five random characters: enough to tell keys apart


class Scope(enum.StrEnum):
    ADMIN = "admin"
    TOKENS = "tokens"


class ApiKeys:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def create(
        self, label: str, scope: str = Scope.ADMIN, key: str | None = None
    ) -> tuple[str, ApiKey]:
        """Returns the key (shown once, never stored) and its record."""
        if scope not in tuple(Scope):
            raise ValidationFailed("scope must be admin or tokens", pointer="/scope")
        if not label.strip() or len(label) > 200:
            raise ValidationFailed("label must be 1-200 characters", pointer="/label")
        key = key or ids.new_api_key()
        record = ApiKey(
            ids.new_uuid(),
            label,
            digest_api_key(key),
            utcnow(),
            scope=str(scope),
            prefix=key[:PREFIX_LENGTH],
        )
        await self.store.add_api_key(record)
        return key, record

    async def ensure(self, key: str, label: str = "bootstrap") -> None:
        if await self.store.api_key_by_digest(digest_api_key(key)) is None:
            await self.create(label, Scope.ADMIN, key)

    async def list(self) -> list[ApiKey]:
        return sorted(await self.store.list_api_keys(), key=lambda k: k.created_at)

    async def revoke(self, key_id: str) -> ApiKey:
        """Refused at once on this node and within the check cache (5 s) on every other."""
        revoked = await self.store.revoke_api_key(key_id, utcnow())
        if revoked is None:
            raise NotFound("No API key with that id", pointer="/id")
        return revoked
