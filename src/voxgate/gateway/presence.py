"""This node's registrations on the bus: claim one (under its credential's registration
policy), release it, and take them all back after a bus outage (Redis may have lost them)."""

from __future__ import annotations

import contextlib
import time
from typing import Generic

from voxgate import metrics
from voxgate.bus.base import Bus, BusUnavailable, Displaced
from voxgate.domain.records import Grant, Registration
from voxgate.gateway.directory import Directory, P

__all__ = ["Presence", "RegistrationRefused"]


class RegistrationRefused(Exception):
    """first_wins, and the credential's registrations are all taken (by ``holder``)."""

    def __init__(self, holder: Registration) -> None:
        super().__init__(holder.user_agent)
        self.holder = holder


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
            policy=grant.admission.policy.value,
            expires_at=grant.expires_at,
        )

    async def claim(self, peer: P, grant: Grant, user_agent: str) -> None:
        """Register; the sessions pushed past the cap hear they were displaced. Raises
        ``RegistrationRefused`` (first_wins lost a race with another login) and
        ``BusUnavailable``: the caller closes the socket."""
        reg = self.registration(peer, grant, user_agent)
        verdict = await self.bus.register(reg, grant.admission)
        if verdict.refused_by is not None:
            raise RegistrationRefused(verdict.refused_by)
        self.directory.registered[peer.session.sessid] = peer
        for gone in verdict.displaced:
            metrics.DISPLACEMENTS.inc()
            await self.bus.publish(Displaced(gone.session_id, reg))

    async def holder(self, grant: Grant, sessid: str | None) -> Registration | None:
        """Who would refuse a new login of ``grant`` (first_wins with the cap reached);
        ``sessid``: a session the login resumes, never its own rival."""
        if grant.anonymous or grant.admission.policy != "first_wins":
            return None
        held = [r for r in await self.bus.registrations(grant.principal) if r.session_id != sessid]
        return held[0] if len(held) >= grant.admission.max_registrations else None

    async def release(self, peer: P) -> None:
        principal = peer.principal
        if principal is None:
            return
        self.directory.registered.pop(peer.session.sessid, None)
        with contextlib.suppress(Exception):  # a bus outage: the key expires with its node
            await self.bus.unregister(principal, peer.session.sessid)

    async def reclaim(self) -> None:
        for peer in list(self.directory.registered.values()):
            grant = peer.session.grant
            if grant is not None:
                reg = self.registration(peer, grant, peer.session.user_agent)
                with contextlib.suppress(BusUnavailable):
                    await self.bus.register(reg, grant.admission)
