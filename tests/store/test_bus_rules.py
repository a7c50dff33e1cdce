"""The bus calls behind the rules that hold on every node: a token held by sessions at two
addresses (token reuse), the calls a session took part in (its call reports), and the sweep
of a dead node's session records. Both buses, as in ``test_bus.py``."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

from tests.store.test_bus import buses, reg
from voxgate.bus.base import Bus, SessionCalls, TokenHold
from voxgate.bus.redis import RedisBus
from voxgate.domain.registrations import TELNYX_RULE, Admission, Policy, Registration

__all__ = ["buses"]  # the fixture, shared with test_bus.py

RING_ALL = Admission(Policy.RING_ALL, 10)


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
