"""Whose cap a detached session counts against (``gateway/reattach.py``): a credential's own
sessions, oldest let go first; anonymous visitors of one assistant apart by address."""

from __future__ import annotations

from typing import Any

from tests.unit.test_calls_core import invite
from tests.unit.test_session import T0, config, grant, login
from voxgate.gateway.directory import Directory, Peer
from voxgate.gateway.reattach import Detached
from voxgate.gateway.timers import Alarm
from voxgate.rtc import Session, State
from voxgate.rtc.outputs import Output


class Host:
    """What the gateway does with a let-go session's outputs, reduced to noting them."""

    def __init__(self) -> None:
        self.directory: Directory[Peer] = Directory()
        self.timers: Alarm[Peer] = Alarm(lambda _due, _now: None)
        self.authenticate: Any = None
        self.applied: list[tuple[Peer, list[Output]]] = []

    async def apply(self, peer: Peer, outs: list[Output]) -> None:
        self.applied.append((peer, outs))

    def drain(self, peer: Peer) -> None:
        pass


def detached(host: Host, principal: str, address: str) -> Peer:
    s = Session(config(reattach_window=60), address, 1, T0)
    login(s, grant(principal))
    invite(s, "c-" + s.sessid)
    s.lost(T0 + 1, clean=False)
    assert s.state is State.DETACHED
    peer = Peer(None, s)
    host.directory.add(peer)
    host.directory.track(peer, principal, None)
    return peer


async def test_a_credential_keeps_its_newest_and_the_count_follows() -> None:
    host = Host()
    cap = Detached(host, 2)
    peers = [detached(host, "cred:c1", f"198.51.100.{i}") for i in range(3)]
    for peer in peers:
        await cap.noted(peer)
    assert cap.count == 2 and [p for p, _ in host.applied] == [peers[0]]
    assert peers[0].session.state is State.CLOSED  # given up: its calls ended
    other = detached(host, "cred:c2", "198.51.100.9")
    await cap.noted(other)
    assert cap.count == 3 and len(host.applied) == 1  # another credential: its own cap
    cap.drop(peers[1])
    cap.drop(peers[1])  # once
    assert cap.count == 2


async def test_anonymous_visitors_of_one_assistant_count_apart_by_address() -> None:
    host = Host()
    cap = Detached(host, 1)
    a, b = detached(host, "anon:a1", "198.51.100.1"), detached(host, "anon:a1", "198.51.100.2")
    await cap.noted(a)
    await cap.noted(b)
    assert cap.count == 2 and host.applied == []
    again = detached(host, "anon:a1", "198.51.100.1")  # the same address loops
    await cap.noted(again)
    assert cap.count == 2 and [p for p, _ in host.applied] == [a]


async def test_an_anonymous_session_resumed_from_a_new_address_leaves_the_count() -> None:
    """Its key holds its address, which the reattach changes before it is dropped here."""
    host = Host()
    cap = Detached(host, 2)
    visitor = detached(host, "anon:assistant-1", "198.51.100.20")
    await cap.noted(visitor)
    assert cap.count == 1
    visitor.session.address = "203.0.113.5"  # resumed on a socket from another network
    cap.drop(visitor)
    assert cap.count == 0
    others = [detached(host, "anon:assistant-1", "198.51.100.20") for _ in range(3)]
    for peer in others:
        await cap.noted(peer)
    assert cap.count == 2 and [p for p, _ in host.applied] == [others[0]]
