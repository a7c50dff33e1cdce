"""SIP trunks and the phone numbers voxgate holds, as part of ``SqlStore`` (a mixin, like
``store/reports.py``: ``store/sql.py`` stays about the identities, this about the phone network).
"""

from __future__ import annotations

import contextlib
from dataclasses import fields
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voxgate.domain.errors import Conflict
from voxgate.domain.records import Page, PhoneNumber, Trunk
from voxgate.store import schema

__all__ = ["TrunkRows"]

R = TypeVar("R", Trunk, PhoneNumber)

_DUPLICATE_NUMBER = "phone_number is already held by voxgate"


class TrunkRows:
    engine: AsyncEngine

    def _begin(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError  # SqlStore's: one writer at a time on SQLite

    # -- trunks ----------------------------------------------------------------------------
    async def add_trunk(self, trunk: Trunk) -> None:
        await self._add(schema.trunks, trunk, "a trunk with this id already exists", "/id")

    async def get_trunk(self, trunk_id: str) -> Trunk | None:
        return await self._get(Trunk, schema.trunks, schema.trunks.c.id == trunk_id)

    async def list_trunks(self, number: int, size: int) -> Page[Trunk]:
        return await self._list(Trunk, schema.trunks, [], number, size)

    async def update_trunk(self, trunk_id: str, **changes: Any) -> Trunk | None:
        return await self._change(Trunk, schema.trunks, trunk_id, changes, "", "/")

    async def delete_trunk(self, trunk_id: str) -> Trunk | None:
        return await self._remove(Trunk, schema.trunks, trunk_id)

    # -- phone numbers ---------------------------------------------------------------------
    async def add_number(self, number: PhoneNumber) -> None:
        await self._add(schema.phone_numbers, number, _DUPLICATE_NUMBER, "/phone_number")

    async def get_number(self, number_id: str) -> PhoneNumber | None:
        t = schema.phone_numbers
        return await self._get(PhoneNumber, t, t.c.id == number_id)

    async def number_by_e164(self, e164: str) -> PhoneNumber | None:
        t = schema.phone_numbers
        return await self._get(PhoneNumber, t, t.c.phone_number == e164)

    async def list_numbers(
        self,
        number: int,
        size: int,
        connection_id: str | None = None,
        credential_id: str | None = None,
    ) -> Page[PhoneNumber]:
        t = schema.phone_numbers
        conds: list[ColumnElement[bool]] = []
        if connection_id is not None:
            conds.append(t.c.connection_id == connection_id)
        if credential_id is not None:
            conds.append(t.c.credential_id == credential_id)
        return await self._list(PhoneNumber, t, conds, number, size)

    async def update_number(self, number_id: str, **changes: Any) -> PhoneNumber | None:
        t = schema.phone_numbers
        return await self._change(PhoneNumber, t, number_id, changes, "", "/")

    async def delete_number(self, number_id: str) -> PhoneNumber | None:
        return await self._remove(PhoneNumber, schema.phone_numbers, number_id)

    # -- helpers ---------------------------------------------------------------------------
    async def _add(self, table: Table, record: Trunk | PhoneNumber, clash: str, at: str) -> None:
        values = {f.name: getattr(record, f.name) for f in fields(record)}
        try:
            async with self._begin() as db:
                await db.execute(insert(table).values(**values))
        except IntegrityError:
            raise Conflict(clash, pointer=at) from None

    async def _get(self, cls: type[R], table: Table, cond: ColumnElement[bool]) -> R | None:
        async with self.engine.connect() as db:
            row = (await db.execute(select(table).where(cond))).first()
        return _record(cls, row._mapping) if row else None

    async def _list(
        self,
        cls: type[R],
        table: Table,
        conds: list[ColumnElement[bool]],
        number: int,
        size: int,
    ) -> Page[R]:
        where = and_(*conds) if conds else table.c.id.is_not(None)
        async with self.engine.connect() as db:
            total = (
                await db.execute(select(func.count()).select_from(table).where(where))
            ).scalar_one()
            rows = await db.execute(
                select(table)
                .where(where)
                .order_by(table.c.created_at.desc(), table.c.id)
                .limit(size)
                .offset((number - 1) * size)
            )
            items = [_record(cls, r._mapping) for r in rows.all()]
        return Page(items, int(total), number, size)

    async def _change(
        self,
        cls: type[R],
        table: Table,
        record_id: str,
        changes: dict[str, Any],
        clash: str,
        at: str,
    ) -> R | None:
        key = table.c.id == record_id
        try:
            async with self._begin() as db:
                if changes:
                    await db.execute(update(table).where(key).values(**changes))
                row = (await db.execute(select(table).where(key))).first()
        except IntegrityError:
            clash = clash or "the change names a resource that is gone, or duplicates another"
            raise Conflict(clash, pointer=at) from None
        return _record(cls, row._mapping) if row else None

    async def _remove(self, cls: type[R], table: Table, record_id: str) -> R | None:
        key = table.c.id == record_id
        async with self._begin() as db:
            row = (await db.execute(select(table).where(key))).first()
            if row is not None:
                await db.execute(delete(table).where(key))
        return _record(cls, row._mapping) if row else None


def _record(cls: type[R], data: Any) -> R:
    values = {f.name: data[f.name] for f in fields(cls)}
    if cls is Trunk:
        secret = values["secret"]
        values["secret"] = None if secret is None else bytes(secret)
        values["source_addresses"] = list(values["source_addresses"] or [])
    return cls(**values)
