"""One suite for both buses: the in-process default and Redis (the real server, own prefix).

The last tests cover the calls behind the rules that hold on every node: a token held by
sessions at two addresses (token reuse), the calls a session took part in (its call reports
on any node), and the sweep of a dead node's session records."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.bus.base import (
    Bus,
    BusEvent,
    Changed,
    Displaced,
    NodeMessage,
    Registration,
    Revoked,
    SessionCalls,
    TokenHold,
)
from voxgate.bus.local import LocalBus
from voxgate.bus.redis import RedisBus
from voxgate.domain.registrations import TELNYX_RULE, Admission, Policy, Verdict

RING_ALL = Admission(Policy.RING_ALL, 10)


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
    assert await a.register(reg("cred:x", "s1", a.node_id), TELNYX_RULE) == Verdict()
    verdict = await b.register(reg("cred:x", "s2", b.node_id), TELNYX_RULE)
    assert [r.session_id for r in verdict.displaced] == ["s1"]
    assert [r.session_id for r in await a.registrations("cred:x")] == ["s2"]
    assert [r.session_id for r in await a.registrations_of_connection("c1")] == ["s2"]
    await a.unregister("cred:x", "s1")  # stale: must not remove s2's registration
    assert [r.session_id for r in await b.registrations("cred:x")] == ["s2"]
    await b.unregister("cred:x", "s2")
    assert await a.registrations("cred:x") == []
    assert await a.registrations_of_connection("c1") == []


async def test_first_wins_refuses_past_the_cap_and_ring_all_keeps_the_newest(
    buses: tuple[Bus, Bus],
) -> None:
    a, b = buses
    first = Admission(Policy.FIRST_WINS, 2)
    t0 = time.time()
    assert await a.register(reg("cred:f", "s1", a.node_id, at=t0), first) == Verdict()
    assert await b.register(reg("cred:f", "s2", b.node_id, at=t0 + 1), first) == Verdict()
    refused = await b.register(reg("cred:f", "s3", b.node_id, at=t0 + 2), first)
    assert refused.refused_by is not None and refused.refused_by.session_id == "s1"
    # the same session registering again (a reattach) is never its own rival
    assert await a.register(reg("cred:f", "s1", a.node_id, at=t0 + 3), first) == Verdict()
    assert [r.session_id for r in await a.registrations("cred:f")] == ["s2", "s1"]

    everyone = Admission(Policy.RING_ALL, 3)
    for i in range(5):
        verdict = await (a if i % 2 else b).register(
            reg("cred:r", f"r{i}", (a if i % 2 else b).node_id, at=t0 + i), everyone
        )
        assert [r.session_id for r in verdict.displaced] == ([f"r{i - 3}"] if i >= 3 else [])
    assert [r.session_id for r in await b.registrations("cred:r")] == ["r2", "r3", "r4"]


def test_the_lua_script_and_admit_agree_on_random_histories() -> None:
    """The Redis bus runs ``admit`` as Lua; the same random histories give the same verdicts
    and the same registrations on both buses."""
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"

    @settings(max_examples=25, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(list(Policy)),
                st.integers(1, 3),
                st.integers(0, 5),
                st.booleans(),
            ),
            min_size=1,
            max_size=12,
        )
    )
    def check(history: list[tuple[Policy, int, int, bool]]) -> None:
        asyncio.run(_compare(history, prefix + uuid.uuid4().hex[:6] + ":"))

    check()


async def _compare(history: list[tuple[Policy, int, int, bool]], prefix: str) -> None:
    local = LocalBus("n1")
    remote = RedisBus("redis://127.0.0.1:6379/0", node_id="n1", prefix=prefix, node_ttl=5.0)
    await remote.start()
    try:
        t0 = 1_000_000.0
        for step, (policy, cap, session, leave) in enumerate(history):
            if leave:
                for bus in (local, remote):
                    await bus.unregister("cred:h", f"s{session}")
                continue
            new = reg("cred:h", f"s{session}", "n1", at=t0 + step)
            verdicts = [await bus.register(new, Admission(policy, cap)) for bus in (local, remote)]
            assert verdicts[0] == verdicts[1]
            held = [await bus.registrations("cred:h") for bus in (local, remote)]
            assert held[0] == held[1]
    finally:
        await remote.close()


async def test_events_reach_every_subscriber(buses: tuple[Bus, Bus]) -> None:
    a, b = buses
    got: list[BusEvent] = []

    async def handler(ev: BusEvent) -> None:
        got.append(ev)

    b.subscribe(handler)
    events: list[BusEvent] = [
        Revoked(("cred:1", "cred:2"), "credential deactivated"),
        Revoked(("cred:3",), "credential expired", expired=True),
        Revoked((), "token presented from two addresses", jtis=("j1",)),
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
    await dying.register(reg("cred:z", "s9", "dying"), TELNYX_RULE)
    assert await watcher.registrations("cred:z") != []
    for task in dying._tasks:  # the process "crashes": heartbeats stop, nothing is cleaned up
        task.cancel()
    await asyncio.sleep(1.5)
    assert await watcher.registrations("cred:z") == []
    await watcher.close()
    await dying._redis.aclose()


async def test_every_registration_and_node_report_is_listed(buses: tuple[Bus, Bus]) -> None:
    a, b = buses
    await a.register(reg("cred:l1", "s1", a.node_id, conn="cL"), TELNYX_RULE)
    await b.register(reg("cred:l2", "s2", b.node_id, conn="cL"), TELNYX_RULE)
    listed = {(r.principal, r.node_id) for r in await a.all_registrations()}
    assert {("cred:l1", a.node_id), ("cred:l2", b.node_id)} <= listed
    await a.put_node_report({"node_id": a.node_id, "sessions": 3}, ttl=0.5)
    await b.put_node_report({"node_id": b.node_id, "sessions": 4}, ttl=0.5)
    reports = {r["node_id"]: r["sessions"] for r in await a.node_reports()}
    assert reports == {a.node_id: 3, b.node_id: 4}
    await asyncio.sleep(0.7)
    assert await b.node_reports() == []  # a node that stopped reporting drops out


async def test_slots_count_across_nodes_let_go_when_freed_or_expired(
    buses: tuple[Bus, Bus],
) -> None:
    a, b = buses
    now = 1000.0
    assert await a.take_slot("calls:c1", "call-1", 2, 3600, now)
    assert await b.take_slot("calls:c1", "call-2", 2, 3600, now)
    assert not await b.take_slot("calls:c1", "call-3", 2, 3600, now)  # full, from either node
    assert await a.take_slot("calls:c1", "call-1", 2, 3600, now)  # one already in: renewed
    assert await a.take_slot("calls:c2", "call-3", 2, 3600, now)  # another key counts apart
    await a.free_slot("calls:c1", "call-2")
    assert await b.take_slot("calls:c1", "call-3", 2, 3600, now)
    assert await a.take_slot("cpm:c1", "x", 1, 60, now)
    assert not await b.take_slot("cpm:c1", "y", 1, 60, now + 59)
    assert await b.take_slot("cpm:c1", "y", 1, 60, now + 61)  # the minute is over


async def test_script_calls_made_together_go_in_fewer_pipelines_and_survive_a_flush() -> None:
    """Logins arriving together share pipelines (each answered as if alone); a Redis that
    forgot its scripts (restarted, failed over) gets them loaded again, nothing lost."""
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    bus = RedisBus("redis://127.0.0.1:6379/0", node_id="n1", prefix=prefix, node_ttl=5.0)
    await bus.start()
    try:
        rule = Admission(Policy.LATEST_WINS, 1)
        verdicts = await asyncio.gather(
            *(bus.register(reg(f"cred:p{i}", f"s{i}", "n1"), rule) for i in range(50))
        )
        assert verdicts == [Verdict()] * 50
        assert bus.scripts.pipelines < 5  # queued in one loop turn: one pipeline, not 50
        await bus._redis.script_flush()
        sent = bus.scripts.pipelines
        again = await asyncio.gather(
            *(bus.register(reg(f"cred:p{i}", f"t{i}", "n1"), rule) for i in range(5))
        )
        assert all(len(v.displaced) == 1 for v in again)  # each replaced its s<i>
        assert bus.scripts.pipelines > sent + 1  # refused as unknown, loaded, sent again
        assert [r.session_id for r in await bus.registrations("cred:p3")] == ["t3"]
        await asyncio.gather(*(bus.unregister(f"cred:p{i}", f"t{i}") for i in range(50)))
        assert await bus.registrations("cred:p3") == []
    finally:
        await bus.close()


async def test_a_burst_of_events_past_the_connection_pool_is_all_published() -> None:
    """300 logins displacing a registration each publish 300 events at once; redis-py's pool
    holds 100 connections and refuses the next instead of waiting (MaxConnectionsError: the
    logins failed as "bus unavailable"). Events go in the scripts' pipelines instead."""
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    bus = RedisBus("redis://127.0.0.1:6379/0", node_id="n1", prefix=prefix, node_ttl=5.0)
    heard: list[BusEvent] = []

    async def hear(event: BusEvent) -> None:
        heard.append(event)

    bus.subscribe(hear)
    await bus.start()
    try:
        assert bus._redis.connection_pool.max_connections < 300  # the burst outgrows it
        events = [Changed((f"c{i}",), ()) for i in range(300)]
        await asyncio.gather(*(bus.publish(e) for e in events))
        for _ in range(200):
            if len(heard) == len(events):
                break
            await asyncio.sleep(0.02)
        assert sorted(heard, key=str) == sorted(events, key=str)
    finally:
        await bus.close()


async def test_a_redis_that_forgot_this_node_runs_the_reconnect_hooks() -> None:
    """No reconnect, but our heartbeat key is gone (a flush, a lapse while others pruned us,
    a promoted replica without it): the node re-announces itself through its hooks, once."""
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    bus = RedisBus("redis://127.0.0.1:6379/0", node_id="n1", prefix=prefix, node_ttl=1.0)
    ran: list[float] = []

    async def hook() -> None:
        ran.append(time.monotonic())

    bus.on_reconnect.append(hook)
    await bus.start()
    try:
        await asyncio.sleep(0.6)  # a few beats find the key where they left it
        assert ran == []
        await bus._redis.delete(prefix + "node:n1")
        for _ in range(100):
            if ran:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.6)
        assert len(ran) == 1 and bus.recoveries == 1
        assert await bus._redis.exists(prefix + "node:n1")  # and it beats again
    finally:
        await bus.close()


def _with(r: Registration, address: str) -> Registration:
    return replace(r, address=address)


async def test_a_token_held_at_two_addresses_is_reuse_whichever_node_sees_it(
    buses: tuple[Bus, Bus],
) -> None:
    a, b = buses
    until = time.time() + 3600
    token = TokenHold("jti-1", until)
    first = await a.register(_with(reg("cred:t", "s1", a.node_id), "10.0.0.1"), RING_ALL, token)
    assert first.reused == ()
    tab = await b.register(_with(reg("cred:t", "s2", b.node_id), "10.0.0.1"), RING_ALL, token)
    assert tab.reused == ()  # two tabs behind one address are not reuse
    other = await b.register(_with(reg("cred:t", "s3", b.node_id), "10.0.0.2"), RING_ALL, token)
    assert other.reused == ("10.0.0.1", "10.0.0.2")
    # the same session again (a reattach from elsewhere) is never its own rival
    moved = await a.register(_with(reg("cred:t", "s3", a.node_id), "10.0.0.3"), RING_ALL, token)
    assert moved.reused == ("10.0.0.1", "10.0.0.3")  # s1 and s2 still hold it, at .1
    # a detached session (registration withdrawn) still holds its token; an ended one lets go
    await a.unregister("cred:t", "s3")
    again = await b.register(_with(reg("cred:t", "s4", b.node_id), "10.0.0.4"), RING_ALL, token)
    assert again.reused == ("10.0.0.1", "10.0.0.3", "10.0.0.4")
    for session in ("s2", "s3", "s4"):
        await b.unregister("cred:t", session, "jti-1")
    # a refresh: s1 holds a new token, and lets go of the old one
    assert await a.hold_token("s1", "10.0.0.1", TokenHold("jti-2", until, "jti-1")) == []
    alone = await b.register(_with(reg("cred:t", "s5", b.node_id), "10.0.0.9"), RING_ALL, token)
    assert alone.reused == ()
    assert await b.hold_token("s6", "10.0.0.8", TokenHold("jti-2", until)) == [
        "10.0.0.1",
        "10.0.0.8",
    ]
    # refused (first_wins) holds nothing
    first_wins = Admission(Policy.FIRST_WINS, 1)
    await a.register(_with(reg("cred:f", "f1", a.node_id), "10.0.0.1"), first_wins)
    refused = await b.register(
        _with(reg("cred:f", "f2", b.node_id), "10.0.0.2"), first_wins, TokenHold("jti-f", until)
    )
    assert refused.refused_by is not None
    assert await a.hold_token("f3", "10.0.0.3", TokenHold("jti-f", until)) == []


async def test_a_token_is_held_until_it_expires(buses: tuple[Bus, Bus]) -> None:
    a, b = buses
    gone = TokenHold("jti-old", time.time() - 61)  # expired (past the minute of slack)
    await a.register(_with(reg("cred:e", "s1", a.node_id), "10.0.0.1"), TELNYX_RULE, gone)
    live = TokenHold("jti-old", time.time() + 60)
    assert await b.hold_token("s2", "10.0.0.2", live) == []


async def test_a_dead_nodes_tokens_and_session_records_go() -> None:
    """A node killed with sessions holding a token and records of their calls: its tokens
    stop counting with its heartbeat, and its records are left the linger, then dropped."""
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    url = "redis://127.0.0.1:6379/0"
    dying = RedisBus(url, node_id="dying", prefix=prefix, node_ttl=1.0)
    watcher = RedisBus(url, node_id="watcher", prefix=prefix, node_ttl=1.0)
    await dying.start()
    await watcher.start()
    try:
        token = TokenHold("jti-d", time.time() + 3600)
        await dying.register(_with(reg("cred:d", "s1", "dying"), "10.0.0.1"), RING_ALL, token)
        for sessid in ("s1", "s2", "moved"):
            await dying.keep_session(sessid, {"legs": [sessid]}, 86_400)
        await watcher.keep_session("moved", {"legs": ["moved"]}, 86_400)  # adopted since
        await watcher.keep_session("mine", {"legs": ["mine"]}, 86_400)
        assert await watcher.sweep_sessions(0.3) == 0  # every writer is alive
        for task in dying._tasks:  # the process "crashes": no heartbeat, nothing cleaned up
            task.cancel()
        await asyncio.sleep(1.5)
        assert await watcher.hold_token("s9", "10.0.0.2", token) == []
        assert await watcher.sweep_sessions(0.3) == 2
        assert await watcher.session_record("s1") is not None  # its client may still come
        await asyncio.sleep(0.6)
        assert await watcher.session_record("s1") is None
        assert await watcher.session_record("s2") is None
        for sessid in ("moved", "mine"):
            found = await watcher.session_record(sessid)
            assert found is not None and found[1]
        assert await watcher.sweep_sessions(0.3) == 0  # the dead node is done with
    finally:
        await watcher.close()
        await dying._redis.aclose()


async def test_own_records_are_never_swept(buses: tuple[Bus, Bus]) -> None:
    a, b = buses
    await a.keep_session("k1", {"legs": []}, 60)
    assert await b.sweep_sessions(0) == 0
    assert await a.sweep_sessions(0) == 0
    assert await b.session_record("k1") is not None


async def test_a_sessions_calls_are_known_on_every_node_then_forgotten(
    buses: tuple[Bus, Bus],
) -> None:
    a, b = buses
    assert await b.calls_of("s1") is None
    await a.note_calls("s1", SessionCalls("cred-1", "conn-1", frozenset({"c1"})), 60)
    await a.note_calls("s1", SessionCalls("cred-1", "conn-1", frozenset({"c2"})), 60)
    assert await b.calls_of("s1") == SessionCalls("cred-1", "conn-1", frozenset({"c1", "c2"}))
    await b.note_calls("s2", SessionCalls(None, "conn-2", frozenset({"c3"})), 0.3)
    assert await a.calls_of("s2") == SessionCalls(None, "conn-2", frozenset({"c3"}))
    await asyncio.sleep(0.5)
    assert await a.calls_of("s2") is None


async def test_tokens_let_go_do_not_pile_up_in_the_local_bus() -> None:
    """A login-and-drop loop: each login holds its token, each end lets it go. The heap of
    token expiries (a day away) must not keep an entry per login."""
    bus = LocalBus("n1")
    until = time.time() + 86_400
    for i in range(20_000):
        jti = f"jti-{i % 50}"  # tokens reused, as the bench's and a looping client's are
        await bus.hold_token(f"s{i}", "10.0.0.1", TokenHold(jti, until))
        await bus.unregister("cred:x", f"s{i}", jti)
    assert len(bus._token_heap) <= 1024 + 4
    await bus.hold_token("s-live", "10.0.0.1", TokenHold("jti-live", until))
    assert await bus.hold_token("s-other", "10.0.0.2", TokenHold("jti-live", until)) == [
        "10.0.0.1",
        "10.0.0.2",
    ]  # a live token is still held (reuse still seen)
