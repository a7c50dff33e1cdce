"""The audit trail, written in batches off the request path.

Every mint, login, refresh, displacement, revocation and expiry is recorded, but none of them
waits for its own transaction: events queue here and a background task writes them in one
transaction per batch. ``flush()`` is awaited by readers and at shutdown, so nothing queued is
lost on a clean stop.

A batch the store refuses (Postgres down, or switching over to its standby) goes back to the
head of the queue and is retried, less often while the store stays down; the store skips rows
a lost-but-committed attempt already wrote, so a retry never duplicates. Only two things drop
events, and both are counted (``dropped``) and logged: a queue past ``max_pending`` (memory is
finite; an outage of hours at full login rate) and a shutdown while the store stays down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
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
    def __init__(
        self,
        store: Store,
        *,
        interval: float = 0.05,
        max_batch: int = 1000,
        max_pending: int = 200_000,
        max_backoff: float = 2.0,
        close_wait: float = 5.0,
    ) -> None:
        self.store = store
        self.interval = interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.max_backoff = max_backoff
        self.close_wait = close_wait
        self.dropped = 0  # events never written: a full queue, or the store down at shutdown
        self._overflowing = False
        self._pending: list[AuditEvent] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, credential_id: str, kind: str, details: dict[str, Any]) -> None:
        if len(self._pending) >= self.max_pending:
            self._overflow()
            return
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
            if self._overflowing:  # the count of the whole overflow is known only now
                self._overflowing = False
                log.error("audit queue drained after dropping events", dropped_total=self.dropped)

    async def page(self, cred_id: str, number: int, size: int) -> Page[AuditEvent]:
        """A credential's trail, newest writes included. It outlives a deleted credential; only
        an unknown credential with no trail is a 404."""
        await self.flush()
        page = await self.store.list_audit(cred_id, number, size)
        if page.total == 0 and await self.store.get_credential(cred_id) is None:
            raise NotFound(pointer="/")
        return page

    async def close(self) -> None:
        """Writes what is queued, retrying for ``close_wait`` seconds (a switchover takes a few);
        what the store still refuses then is dropped, counted and logged, never silently."""
        deadline = time.monotonic() + self.close_wait
        delay = self.interval
        while True:
            try:
                await self.flush()
                break
            except Exception:
                if time.monotonic() + delay > deadline:
                    self._drop(len(self._pending), "the store is unavailable at shutdown")
                    self._pending.clear()
                    break
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = self.interval
        while self._pending:
            await asyncio.sleep(delay)
            try:
                await self.flush()
            except Exception:  # logged by flush; ask a store that is down less often
                delay = min(delay * 2, self.max_backoff)
            else:
                delay = self.interval

    def _overflow(self) -> None:
        if self._overflowing:  # logged once per outage, counted every time
            self.dropped += 1
        else:
            self._overflowing = True
            self._drop(1, f"the queue is full ({self.max_pending} events); dropping new ones")

    def _drop(self, count: int, reason: str) -> None:
        self.dropped += count
        log.error("audit events dropped", count=count, dropped_total=self.dropped, reason=reason)
