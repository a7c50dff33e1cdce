"""``voxgate serve --workers 2``: two gateway processes on one port behave as one node.

The kernel (SO_REUSEPORT) picks the worker of each new connection, so a test that needs a
session on each worker opens sessions until it has one on each (``dc`` in REGED names the
worker); the chance of twenty in a row on one worker is one in half a million.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.test_cluster import _still_connected
from tests.harness import Voxgate, create_pg_database, drop_pg_database, serve_refused
from tests.rtc.conftest import Api, api_for
from voxgate.client import Client

REDIS = "redis://127.0.0.1:6379/0"
TRIES = 20


def workers_args(redis_url: str, *more: str) -> list[str]:
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    return ["--workers", "2", "--redis-url", redis_url, "--redis-prefix", prefix, *more]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Voxgate, Api]]:
    db = create_pg_database()
    vg = Voxgate(
        tmp_path / "vg", database_url=db, extra_args=workers_args(REDIS, "--node-id", "vg")
    ).start()
    rest = api_for(vg)
    workers(rest)
    yield vg, rest
    vg.stop()
    drop_pg_database(db)


def workers(rest: Api, count: int = 2) -> dict[str, int]:
    """node id -> pid of the live workers, once ``count`` of them report (each reports as it
    starts, then every few seconds; a dead one's last report outlives it a little)."""
    deadline = time.monotonic() + 30
    while True:
        rows = rest.http.get("/sessions").json()["data"]
        alive = {r["node_id"]: r["pid"] for r in rows if _alive(r["pid"])}
        if len(alive) == count:
            return alive
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def away_from(
    vg: Voxgate, rest: Api, cred: dict[str, str], other: Client, **kw: Any
) -> Client:
    """A session of ``cred`` held by another worker than ``other``'s."""
    for _ in range(TRIES):
        client = Client(vg.rtc_url, login_token=rest.token(cred["id"]), **kw)
        await client.connect()
        if client.dc != other.dc:
            return client
        await client.close()
    raise AssertionError(f"{TRIES} sessions in a row on {other.dc}")


async def on_each_worker(vg: Voxgate, rest: Api, cred: dict[str, str]) -> tuple[Client, Client]:
    """Two sessions of ``cred`` (ring_all) held by two different workers."""
    first = Client(vg.rtc_url, login_token=rest.token(cred["id"]), reconnect=False)
    await first.connect()
    return first, await away_from(vg, rest, cred, first, reconnect=False)


async def test_the_workers_are_one_node(node: tuple[Voxgate, Api]) -> None:
    """Two workers, each with a node id of its own under the node's; a call from one to the
    other; a ring_all credential rings on both; its deactivation closes both."""
    vg, rest = node
    found = workers(rest)
    assert len(set(found.values())) == 2 and all(n.startswith("vg-w") for n in found)
    conn = rest.connection()
    cred = rest.credential(conn["id"], registration_policy="ring_all")
    first, second = await on_each_worker(vg, rest, cred)
    assert {first.dc, second.dc} == set(found)
    caller_cred = rest.credential(conn["id"])
    caller = Client(vg.rtc_url, login_token=rest.token(caller_cred["id"]), reconnect=False)
    await caller.connect()
    call = await caller.new_call(cred["sip_username"], sdp="v=0 offer")
    rung = await asyncio.gather(
        first.wait_for("incoming_call", 5), second.wait_for("incoming_call", 5)
    )
    away = second if caller.dc == first.dc else first  # the one on the caller's other worker
    incoming = rung[0 if away is first else 1].data["call"]
    await incoming.answer(sdp="v=0 answer")
    await call.wait_state("active")
    assert call.remote_sdp == "v=0 answer" and caller.dc != away.dc
    await call.hangup()
    await incoming.wait_state("hangup")

    rest.post(f"/telephony_credentials/{cred['id']}/actions/deactivate")
    closed = await asyncio.gather(first.wait_for("closed", 5), second.wait_for("closed", 5))
    assert [e.data["code"] for e in closed] == [4003, 4003]
    await caller.close()


async def test_latest_wins_across_workers(node: tuple[Voxgate, Api]) -> None:
    vg, rest = node
    conn = rest.connection()
    cred = rest.credential(conn["id"])  # latest_wins, the default
    old = Client(vg.rtc_url, login_token=rest.token(cred["id"]), reconnect=False)
    await old.connect()
    for _ in range(TRIES):
        new = Client(vg.rtc_url, login_token=rest.token(cred["id"]), reconnect=False)
        await new.connect()
        notice = await old.wait_for("displaced", 5)
        if new.dc != old.dc:
            break
        old = new  # displaced on the same worker: the newer one is the one to displace
    else:
        raise AssertionError(f"{TRIES} sessions in a row on {old.dc}")
    assert notice.data["by"]["node_id"] == new.dc
    assert rest.registration(conn["id"])["node_id"] == new.dc
    await new.close()


async def test_a_worker_killed_is_restarted_and_its_client_reattaches(
    node: tuple[Voxgate, Api],
) -> None:
    vg, rest = node
    before = workers(rest)
    conn = rest.connection()
    alice_cred, bob_cred = rest.credential(conn["id"]), rest.credential(conn["id"])
    bob = Client(vg.rtc_url, login_token=rest.token(bob_cred["id"]), reconnect=False)
    await bob.connect()
    alice = await away_from(vg, rest, alice_cred, bob, max_backoff=0.5)  # her kill spares Bob
    out = await alice.new_call(bob_cred["sip_username"], sdp="v=0 offer")
    incoming = (await bob.wait_for("incoming_call", 5)).data["call"]
    await incoming.answer(sdp="v=0 answer")
    await out.wait_state("active")
    assert alice.dc is not None
    victim, gone = before[alice.dc], alice.dc
    os.kill(victim, signal.SIGKILL)
    back = await alice.wait_for("reattached", 30)
    assert back.data["calls"] == [out.id] and out.state == "active" == incoming.state
    for _ in range(100):  # REGED, which names the worker, follows the reattached list
        if alice.dc != gone:
            break
        await asyncio.sleep(0.05)
    after = workers(rest)  # restarted: a new process under a new node id
    assert victim not in after.values() and bob.dc in after and alice.dc in after
    assert len(set(after) - set(before)) == 1 and vg.proc is not None and vg.proc.poll() is None
    await _still_connected(out, incoming)  # DTMF crosses, then the hang-up
    await alice.close()
    await bob.close()


async def test_sigterm_drains_every_worker(node: tuple[Voxgate, Api]) -> None:
    vg, rest = node
    pids = set(workers(rest).values())
    cred = rest.credential(registration_policy="ring_all")
    sessions = await on_each_worker(vg, rest, cred)
    vg.stop()  # SIGTERM to the parent
    closed = await asyncio.gather(*(s.wait_for("closed", 15) for s in sessions))
    assert [e.data["code"] for e in closed] == [1001, 1001]
    assert not [p for p in pids if _alive(p)]


def test_kill9_of_the_parent_leaves_no_worker(node: tuple[Voxgate, Api]) -> None:
    vg, rest = node
    pids = set(workers(rest).values())
    vg.stop(kill=True)
    deadline = time.monotonic() + 15  # the warden's grace (5 s) and its SIGKILL
    while [p for p in pids if _alive(p)]:
        assert time.monotonic() < deadline, "a worker outlived its parent"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--workers", "2"], "--workers 2 needs --redis-url"),
        (["--workers", "0"], "--workers must be auto or a number from 1 to 256"),
        (["--workers", "many"], "--workers must be auto or a number from 1 to 256"),
        (workers_args(REDIS, "--role", "api"), "not with --role api"),
        (workers_args(REDIS, "--sip"), "--workers with --sip"),
    ],
)
def test_workers_that_cannot_be_had_are_refused_with_why(
    tmp_path: Path, args: list[str], said: str
) -> None:
    serve_refused(tmp_path, args, said)
