"""The call reports' rows, as part of ``SqlStore`` (a mixin: ``store/sql.py`` stays about the
identities, this about what calls sounded like)."""

from __future__ import annotations

import contextlib
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from voxgate.domain.records import CallReport, Page
from voxgate.store import schema

__all__ = ["CallReportRows"]


class CallReportRows:
    engine: AsyncEngine

    def _begin(self) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError  # SqlStore's: one writer at a time on SQLite

    async def add_call_report(self, report: CallReport) -> None:
        values = {f.name: getattr(report, f.name) for f in fields(report)}
        async with self._begin() as db:
            await db.execute(insert(schema.call_reports).values(**values))

    async def list_call_reports(
        self, call_id: str | None, credential_id: str | None, number: int, size: int
    ) -> Page[CallReport]:
        t = schema.call_reports
        cond = and_(
            t.c.call_id == call_id if call_id else t.c.id.is_not(None),
            t.c.credential_id == credential_id if credential_id else t.c.id.is_not(None),
        )
        async with self.engine.connect() as db:
            total = int((await db.execute(select(func.count()).where(cond))).scalar_one())
            rows = await db.execute(
                select(t)
                .where(cond)
                .order_by(t.c.received_at.desc(), t.c.id)
                .limit(size)
                .offset((number - 1) * size)
            )
            items = [_report(r._mapping) for r in rows.all()]
        return Page(items, total, number, size)

    async def call_reports_of(self, call_id: str) -> list[CallReport]:
        t = schema.call_reports
        async with self.engine.connect() as db:
            rows = await db.execute(
                select(t).where(t.c.call_id == call_id).order_by(t.c.received_at)
            )
            return [_report(r._mapping) for r in rows.all()]

    async def get_call_report(self, report_id: str) -> CallReport | None:
        t = schema.call_reports
        async with self.engine.connect() as db:
            row = (await db.execute(select(t).where(t.c.id == report_id))).first()
        return _report(row._mapping) if row else None

    async def delete_call_reports_before(self, when: datetime) -> int:
        t = schema.call_reports
        async with self._begin() as db:
            done = await db.execute(delete(t).where(t.c.received_at < when))
        return int(done.rowcount or 0)


def _report(data: Any) -> CallReport:
    return CallReport(**{f.name: data[f.name] for f in fields(CallReport)})
