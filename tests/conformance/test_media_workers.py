"""A call in real browsers survives the kill -9 of the worker that holds its caller.

One node, ``--workers 2``, on a private redis-server and a SQLite file (the namespace keeps
media on loopback, where the machine's Postgres and Redis are out of reach). Both pages dial the
node's one port; the kernel picks their workers. The worker whose report lists the call holds
Alice's leg (a call is reported by its caller's node): it is killed, restarted by the parent,
and Alice's SDK reconnects to the same port and reattaches the call on whichever worker takes it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.cluster.test_workers import workers
from tests.conformance.test_media import OpenPage, _call_between_pages
from tests.conformance.test_media_cluster import call_went_on
from tests.harness import Voxgate
from tests.rtc.conftest import api_for

pytestmark = pytest.mark.media


def test_a_page_keeps_its_call_when_its_worker_is_killed(
    tmp_path: Path, private_redis: tuple[str, object], open_page: OpenPage
) -> None:
    vg = Voxgate(
        tmp_path / "vg",
        extra_args=["--workers", "2", "--redis-url", private_redis[0], "--node-id", "vg"],
    ).start()
    try:
        rest = api_for(vg)
        before = workers(rest)
        alice, bob, alice_cred = _call_between_pages(vg, open_page)
        deadline = time.monotonic() + 15
        while True:  # each worker reports every few seconds
            rows = rest.http.get("/sessions").json()["data"]
            holding = [r for r in rows if r["calls"] == 1 and r["node_id"] in before]
            if holding:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.2)
        victim = holding[0]["pid"]
        os.kill(victim, signal.SIGKILL)
        call_went_on(alice, bob, rest, alice_cred["id"])
        after = workers(rest)  # the parent started a new worker in its place
        assert victim not in after.values() and len(set(after) - set(before)) == 1
    finally:
        vg.stop()
