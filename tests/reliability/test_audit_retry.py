"""The audit queue across a store outage (Postgres behind a proxy we cut): events recorded
while the store is down are retried until it is back, never lost; only a queue past its bound
or a shutdown with the store still down drops events, and those are counted and logged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from tests.reliability.test_store_down import CuttableProxy
from voxgate.services.audit import AuditLog
from voxgate.store.sql import SqlStore, open_store


@pytest.fixture
async def proxied(pg_url: str) -> AsyncIterator[tuple[SqlStore, CuttableProxy]]:
    proxy = CuttableProxy()
    store = await open_store(pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}"))
    yield store, proxy
    proxy.restore()
    await store.close()


async def trail(store: SqlStore, cred_id: str) -> list[str]:
    return [e.kind for e in (await store.list_audit(cred_id, 1, 1000)).items]


async def test_events_recorded_while_the_store_is_down_are_written_when_it_is_back(
    proxied: tuple[SqlStore, CuttableProxy],
) -> None:
    store, proxy = proxied
    audit = AuditLog(store, interval=0.02, max_backoff=0.2)
    audit.record("cred-retry", "before", {})
    await audit.flush()
    proxy.cut()
    with capture_logs() as logs:
        for i in range(50):
            audit.record("cred-retry", f"during-{i}", {})
        deadline = time.monotonic() + 30
        while sum(e["event"] == "audit write failed" for e in logs) < 3:  # retried, kept
            assert time.monotonic() < deadline, logs
            await asyncio.sleep(0.05)
    assert audit.pending == 50 and audit.dropped == 0
    proxy.restore()
    deadline = time.monotonic() + 30
    while audit.pending:  # the background task gets there by itself
        assert time.monotonic() < deadline, "the queue was not written after the store came back"
        await asyncio.sleep(0.05)
    kinds = await trail(store, "cred-retry")
    assert sorted(kinds) == sorted(["before", *(f"during-{i}" for i in range(50))])
    await audit.close()


async def test_a_full_queue_and_a_shutdown_while_down_drop_counted_and_logged(
    proxied: tuple[SqlStore, CuttableProxy],
) -> None:
    store, proxy = proxied
    audit = AuditLog(store, interval=0.02, max_backoff=0.2, max_pending=10, close_wait=0.5)
    proxy.cut()
    with capture_logs() as logs:
        for i in range(14):
            audit.record("cred-full", f"e{i}", {})
        assert audit.pending == 10 and audit.dropped == 4
        full = [e for e in logs if e["event"] == "audit events dropped"]
        assert len(full) == 1 and "queue is full" in full[0]["reason"]  # once, not per event
        await audit.close()  # the store stays down past close_wait
    assert audit.pending == 0 and audit.dropped == 14
    shutdown = [e for e in logs if e["event"] == "audit events dropped"][-1]
    assert shutdown["count"] == 10 and shutdown["dropped_total"] == 14
    assert "shutdown" in shutdown["reason"]
