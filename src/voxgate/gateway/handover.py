"""Sessions that outlive their node. While a session has calls, its legs and their links are
kept on the bus; a client that reconnects to another node (the first one died, or a load
balancer moved it) is adopted there, and the node that held it, if alive, lets it go.

Only cluster mode needs this; on the in-process bus it costs a dict entry per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import asdict

from voxgate.bus.base import Bus, BusUnavailable, NodeMessage
from voxgate.domain.errors import LoginFailed
from voxgate.domain.records import Grant
from voxgate.gateway.calls import CallRouter
from voxgate.gateway.directory import Directory, Peer
from voxgate.rtc.config import SessionConfig
from voxgate.rtc.legs import Leg
from voxgate.rtc.session import Session

__all__ = ["RECORD_TTL", "Handover"]

RECORD_TTL = 86_400.0  # a record lives while its calls do; this only bounds a forgotten one
SWEEP_INTERVAL = 5.0  # seconds between looks for dead nodes' records (the heartbeat's TTL)


class Handover:
    def __init__(
        self, bus: Bus, directory: Directory[Peer], router: CallRouter, config: SessionConfig
    ) -> None:
        self.bus = bus
        self.directory = directory
        self.router = router
        self.config = config

    async def remember(self, peer: Peer) -> None:
        """After any change to a session's legs: keep the record current (or drop it)."""
        session = peer.session
        legs = _signature(session.calls.legs.values())
        if legs == peer.saved or self.config.reattach_window <= 0:
            return
        peer.saved = legs
        if not legs:
            await self.bus.drop_session(session.sessid)
            return
        grant = asdict(session.grant) if session.grant is not None else None
        record = {
            "grant": grant,
            "legs": [leg.to_dict() for leg in session.calls.legs.values()],
            "links": self.router.links_of(session.sessid),
        }
        await self.bus.keep_session(session.sessid, record, RECORD_TTL)

    async def forget(self, peer: Peer) -> None:
        if peer.saved:
            await self.bus.drop_session(peer.session.sessid)

    async def sweep_forever(self) -> None:
        """A node killed with its sessions' records on the bus cannot drop them: every node
        looks for dead nodes' records now and then, and leaves each the reattach window (its
        client may still come back for it) instead of the record's day."""
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            with contextlib.suppress(BusUnavailable):  # the next round tries again
                await self.bus.sweep_sessions(self.config.reattach_window)

    async def find(self, sessid: str | None, outcome: Grant | LoginFailed) -> Peer | None:
        """The session a reconnecting client asks to resume: held here, or adopted from the
        bus when another node held it."""
        if not sessid:
            return None
        here = self.directory.peers.get(sessid)
        if here is not None or not isinstance(outcome, Grant):
            return here
        if self.config.reattach_window <= 0:
            return None
        return await self.adopt(sessid, outcome)

    async def adopt(self, sessid: str, grant: Grant) -> Peer | None:
        """The session ``sessid`` from the bus, if ``grant`` is its identity: detached here,
        ready to resume. Its old node, if still alive, is told to let it go."""
        found = await self.bus.session_record(sessid)
        if found is None:
            return None
        record, alive = found
        saved = record.get("grant")
        if not isinstance(saved, dict) or saved.get("principal") != grant.principal:
            return None
        node = str(record.get("node", ""))
        if alive and node != self.bus.node_id:
            try:
                await self.bus.publish(NodeMessage(node, "release", {"sessid": sessid}))
            except BusUnavailable:
                return None
        legs = [Leg.from_dict(leg) for leg in record.get("legs") or []]
        session = Session.adopted(self.config, sessid, Grant(**saved), legs, time.time())
        peer = Peer(None, session)
        peer.saved = ()  # rewritten under this node, so a sweep after its old node died spares it
        self.directory.add(peer)
        self.directory.track(peer, grant.principal, None)
        peer.jti = saved.get("jti")  # held under its old node: let go when it holds the new one
        await self.router.adopt(sessid, list(record.get("links") or []))
        return peer

    def let_go(self, sessid: str) -> Peer | None:
        """Another node adopted ``sessid``: forget it here without a word to anyone (its
        calls go on there). Returns the peer whose socket, if any, is to be closed."""
        peer = self.directory.peers.get(sessid)
        if peer is None:
            return None
        self.router.release(sessid)
        self.directory.forget(peer)  # its registration on the bus is the new node's now
        return peer


def _signature(legs: Iterable[Leg]) -> tuple[tuple[str, str], ...]:
    """What a record depends on: the legs and their states (a change rewrites it)."""
    return tuple((leg.call_id, leg.state.value) for leg in legs)
