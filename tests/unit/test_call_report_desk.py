"""The call report desk's time rule: a session's reports are taken for a while after it ended,
then refused as expired (the clock is the only thing faked here: 15 minutes cannot be waited)."""

from __future__ import annotations

import time
from pathlib import Path

from voxgate.domain.callquality import report_id
from voxgate.gateway.call_reports import GRACE, MAX_ENDED, CallReportDesk, Reporter
from voxgate.gateway.front_door import HttpRequest
from voxgate.services.audit import AuditLog
from voxgate.store.sql import open_store

KEY = b"k" * 32


async def test_reports_of_an_ended_session_expire_after_the_grace(tmp_path: Path) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/d.db")
    audit = AuditLog(store)
    desk = CallReportDesk(
        KEY, store, audit, lambda _sessid: None, max_bytes=10_000, recordings=False
    )
    body = b'{"summary": {"callId": "c1"}, "stats": []}'
    headers = {"x-call-report-id": report_id(KEY, "s1"), "x-call-id": "c1"}
    request = HttpRequest("POST", "/call_report", headers, "127.0.0.1", body)
    desk.ended(Reporter("s1", "cred-1", "conn-1", frozenset({"c1"})), time.time())
    assert (await desk.handle(request)).status == 201  # just ended: still taken
    desk.ended(Reporter("s1", "cred-1", "conn-1", frozenset({"c1"})), time.time() - GRACE - 1)
    late = await desk.handle(request)
    assert late.status == 403 and "expired" in late.body["errors"][0]["detail"]
    assert (await store.list_call_reports("c1", None, 1, 10)).total == 1
    await audit.close()
    await store.close()


async def test_ended_sessions_are_bounded_and_dropped_oldest_first(tmp_path: Path) -> None:
    """Many more ended sessions than the cap, all within the grace (storms): the map stays at
    the cap and keeps the newest. Each end is O(1): the old O(n) rebuild past the cap took
    minutes for this loop (over the test's time limit)."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/d.db")
    desk = CallReportDesk(
        KEY, store, AuditLog(store), lambda _sessid: None, max_bytes=10_000, recordings=False
    )
    now = time.time()
    total = MAX_ENDED + 20_000
    for i in range(total):
        desk.ended(Reporter(f"s{i}", "cred", "conn", frozenset({f"c{i}"})), now + i * 0.001)
    assert len(desk._ended) == MAX_ENDED
    assert "s0" not in desk._ended and f"s{total - 1}" in desk._ended
    assert next(iter(desk._ended)) == f"s{total - MAX_ENDED}"
    desk.ended(Reporter("last", "cred", "conn", frozenset({"c"})), now + GRACE + total)
    assert list(desk._ended) == ["last"]  # every earlier one's grace is over
    await store.close()


async def test_a_session_that_never_had_a_call_is_not_kept(tmp_path: Path) -> None:
    """No call, no report can be taken: remembering it would only let a login-and-drop loop
    hold memory for the grace (15 minutes)."""
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/d.db")
    desk = CallReportDesk(
        KEY, store, AuditLog(store), lambda _sessid: None, max_bytes=10_000, recordings=False
    )
    desk.ended(Reporter("s1", "cred", "conn", frozenset()), time.time())
    assert desk._ended == {}
    body = b'{"summary": {"callId": "c1"}, "stats": []}'
    headers = {"x-call-report-id": report_id(KEY, "s1"), "x-call-id": "c1"}
    refused = await desk.handle(HttpRequest("POST", "/call_report", headers, "127.0.0.1", body))
    assert refused.status == 403
    await store.close()
