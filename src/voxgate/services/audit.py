"""The audit trail, written in batches off the request path.

Every mint, login, refresh, displacement, revocation and expiry is recorded, but none of them
waits for its own transaction: events queue here and a background task writes them in one
transaction per batch. ``flush()`` is awaited by readers and at shutdown, so nothing queued is
lost on a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from voxgate.domain import ids
from voxgate.domain.errors import NotFound
from voxgate.domain.records import AuditEvent, Page
from voxgate.domain.timeutil import utcnow
from voxgate.store.base import Store

__all__ = ["AuditLog"]

log = structlog.get_logger("voxgate.audit")


class AuditLog:
    def __init__(self, store: Store, *, interval: float = 0.05, max_batch: int = 1000) -> None:
        self.store = store
        self.interval = interval
        self.max_batch = max_batch
        self._pending: list[AuditEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def record(self, credential_id: str, kind: str, details: dict[str, Any]) -> None:
        self._pending.append(
            AuditEvent(ids.new_time_uuid(), credential_id, kind, utcnow(), details)
        )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def flush(self) -> None:
        async with self._lock:
            while self._pending:
                batch, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
                try:
                    await self.store.add_audits(batch)
                except Exception as exc:  # store down: keep the events and try again later
                    self._pending[:0] = batch
                    log.warning(
                        "audit write failed", error=type(exc).__name__, queued=len(self._pending)
                    )
                    raise

    async def page(self, cred_id: str, number: int, size: int) -> Page[AuditEvent]:
        """A credential's trail, newest writes included. It outlives a deleted credential; only
        an unknown credential with no trail is a 404."""
        await self.flush()
        page = await self.store.list_audit(cred_id, number, size)
        if page.total == 0 and await self.store.get_credential(cred_id) is None:
            raise NotFound(pointer="/")
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):
                await self.flush()
