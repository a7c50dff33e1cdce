"""Facts about the deployment that every process must agree on, as part of ``SqlStore``: the
SIP realm, which every stored HA1 is computed under, so that an API node or a CLI run that
sets a password uses the realm the SIP nodes challenge with."""

from __future__ import annotations

import contextlib

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from voxgate.store import schema

__all__ = ["DeploymentRows"]


class DeploymentRows:
    def _begin(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError  # SqlStore's: one writer at a time on SQLite

    async def deployment_value(self, name: str) -> str | None:
        t = schema.deployment
        async with self._begin() as db:
            row = (await db.execute(select(t.c.value).where(t.c.name == name))).first()
        return None if row is None else str(row[0])

    async def set_deployment_value(self, name: str, value: str) -> None:
        t = schema.deployment
        async with self._begin() as db:
            done = await db.execute(update(t).where(t.c.name == name).values(value=value))
            if not done.rowcount:
                await db.execute(insert(t).values(name=name, value=value))
