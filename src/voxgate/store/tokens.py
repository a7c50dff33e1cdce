"""Tokens revoked one by one (token reuse), as part of ``SqlStore``: a handful of rows, each
kept until its token would have expired anyway."""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from voxgate.store import schema

__all__ = ["RevokedTokenRows"]


class RevokedTokenRows:
    def _begin(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError  # SqlStore's: one writer at a time on SQLite

    async def revoke_jti(
        self, jti: str, credential_id: str, expires_at: datetime, now: datetime
    ) -> None:
        """Refuse one token from now on; rows of tokens past their expiry go at the same time
        (they are refused by their ``exp`` anyway), so the table stays small."""
        t = schema.revoked_tokens
        async with self._begin() as db:
            await db.execute(delete(t).where(t.c.expires_at <= now))
            if (await db.execute(select(t.c.jti).where(t.c.jti == jti))).first() is None:
                values = {"jti": jti, "credential_id": credential_id, "revoked_at": now}
                await db.execute(insert(t).values(**values, expires_at=expires_at))

    async def revoked_jtis(self, now: datetime) -> set[str]:
        t = schema.revoked_tokens
        async with self._begin() as db:
            rows = await db.execute(select(t.c.jti).where(t.c.expires_at > now))
        return {str(r[0]) for r in rows.all()}
