"""This node's registrations on the bus: claim one (the latest wins), release it, and take
them all back after a bus outage (Redis may have lost them)."""

from __future__ import annotations

import contextlib
import time
from typing import Generic

from voxgate import metrics
from voxgate.bus.base import Bus, BusUnavailable, Displaced
from voxgate.domain.records import Grant, Registration
from voxgate.gateway.directory import Directory, P

__all__ = ["Presence"]


class Presence(Generic[P]):
    def __init__(self, bus: Bus, directory: Directory[P], node_id: str) -> None:
        self.bus = bus
        self.directory = directory
        self.node_id = node_id

    def registration(self, peer: P, grant: Grant, user_agent: str) -> Registration:
        session = peer.session
        return Registration(
            principal=grant.principal,
            connection_id=grant.connection_id,
            credential_id=grant.credential_id,
            sip_username=grant.sip_username,
            session_id=session.sessid,
            node_id=self.node_id,
            address=session.address,
            port=session.port,
            user_agent=user_agent,
            registered_at=time.time(),
        )

    async def claim(self, peer: P, grant: Grant, user_agent: str) -> None:
        """Take the principal's registration; the session that held it hears it was displaced.
        Raises ``BusUnavailable``: the caller closes the socket (the client retries)."""
        reg = self.registration(peer, grant, user_agent)
        previous = await self.bus.register(reg)
        self.directory.registered[reg.principal] = peer
        if previous is not None:
            metrics.DISPLACEMENTS.inc()
            await self.bus.publish(Displaced(previous.session_id, reg))

    async def release(self, peer: P) -> None:
        principal = peer.principal
        if principal is None:
            return
        if self.directory.registered.get(principal) is peer:
            del self.directory.registered[principal]
        with contextlib.suppress(Exception):  # a bus outage: the key expires with its node
            await self.bus.unregister(principal, peer.session.sessid)

    async def reclaim(self) -> None:
        for peer in list(self.directory.registered.values()):
            grant = peer.session.grant
            if grant is not None:
                with contextlib.suppress(BusUnavailable):
                    await self.bus.register(self.registration(peer, grant, peer.session.user_agent))
