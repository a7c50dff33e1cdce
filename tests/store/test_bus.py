"""One suite for both buses: the in-process default and Redis (the real server, own prefix)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from voxgate.bus.base import Bus, BusEvent, Displaced, NodeMessage, Registration, Revoked
from voxgate.bus.local import LocalBus
from voxgate.bus.redis import RedisBus


def reg(principal: str, session: str, node: str, conn: str = "c1", at: float = 0.0) -> Registration:
    return Registration(
        principal,
        conn,
        principal.removeprefix("cred:"),
        "gencredX",
        session,
        node,
        "127.0.0.1",
        1,
        "ua",
        at or time.time(),
    )


@pytest.fixture(params=["local", "redis"])
async def buses(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two nodes' views of one bus (the local bus is one node, so both views are the same)."""
    if request.param == "local":
        bus = LocalBus("n1")
        yield bus, bus
        return
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    a = RedisBus("redis://127.0.0.1:6379/0", node_id="n1", prefix=prefix, node_ttl=1.0)
    b = RedisBus("redis://127.0.0.1:6379/0", node_id="n2", prefix=prefix, node_ttl=1.0)
    await a.start()
    await b.start()
    yield a, b
    await a.close()
    await b.close()


async def test_latest_registration_wins_and_reports_who_it_replaced(buses: tuple[Bus, Bus]) -> None:
    a, b = buses
    assert await a.healthy()
    assert await a.register(reg("cred:x", "s1", a.node_id)) is None
    replaced = await b.register(reg("cred:x", "s2", b.node_id))
    assert replaced is not None and replaced.session_id == "s1"
    current = await a.registration("cred:x")
    assert current is not None and current.session_id == "s2"
    assert [r.session_id for r in await a.registrations_of_connection("c1")] == ["s2"]
    await a.unregister("cred:x", "s1")  # stale: must not remove s2's registration
    assert (await b.registration("cred:x")).session_id == "s2"  # type: ignore[union-attr]
    await b.unregister("cred:x", "s2")
    assert await a.registration("cred:x") is None


async def test_events_reach_every_subscriber(buses: tuple[Bus, Bus]) -> None:
    a, b = buses
    got: list[BusEvent] = []

    async def handler(ev: BusEvent) -> None:
        got.append(ev)

    b.subscribe(handler)
    events: list[BusEvent] = [
        Revoked(("cred:1", "cred:2"), "credential deactivated"),
        Revoked(("cred:3",), "credential expired", expired=True),
        Displaced("s1", reg("cred:x", "s2", "n2")),
        NodeMessage(b.node_id, "relay", {"to": ["s", "c"], "kind": "bye", "params": {}}),
    ]
    for ev in events:
        await a.publish(ev)
    for _ in range(100):
        if len(got) >= len(events):
            break
        await asyncio.sleep(0.02)
    assert got == events


async def test_a_dead_nodes_registrations_vanish() -> None:
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    dying = RedisBus("redis://127.0.0.1:6379/0", node_id="dying", prefix=prefix, node_ttl=1.0)
    watcher = RedisBus("redis://127.0.0.1:6379/0", node_id="watcher", prefix=prefix, node_ttl=1.0)
    await dying.start()
    await watcher.start()
    await dying.register(reg("cred:z", "s9", "dying"))
    assert await watcher.registration("cred:z") is not None
    for task in dying._tasks:  # the process "crashes": heartbeats stop, nothing is cleaned up
        task.cancel()
    await asyncio.sleep(1.5)
    assert await watcher.registration("cred:z") is None
    await watcher.close()
    await dying._redis.aclose()
