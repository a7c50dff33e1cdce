"""What the bus tells this node, and what it does about it: revocations (whole identities or
single tokens), displacements, changed records, call signals, sessions another node adopted;
and, once Redis is back after an outage, the re-check of everything it may have missed."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

import structlog

from voxgate import metrics
from voxgate.bus.base import BusEvent, Changed, Displaced, NodeMessage, Revoked
from voxgate.domain.principals import Principal
from voxgate.gateway.calls import CallRouter
from voxgate.gateway.directory import Directory, Peer
from voxgate.gateway.handover import Handover
from voxgate.gateway.presence import Presence
from voxgate.rtc.outputs import Output
from voxgate.services.logins import LoginService

__all__ = ["BusEvents", "EventHost"]

log = structlog.get_logger("voxgate.gateway")
RECHECK_RETRIES = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds between re-checks the store refused


class EventHost(Protocol):
    """The gateway as its bus listener sees it."""

    node_id: str
    directory: Directory[Peer]
    logins: LoginService
    calls: CallRouter
    presence: Presence[Peer]
    handover: Handover

    async def apply(self, peer: Peer, outs: list[Output]) -> None: ...
    def let_go(self, sessid: str) -> None: ...


class BusEvents:
    def __init__(self, host: EventHost) -> None:
        self.host = host
        self._retrying: asyncio.Task[None] | None = None  # a re-check the store refused

    async def __call__(self, event: BusEvent) -> None:
        host, now = self.host, time.time()
        if isinstance(event, Revoked):
            if event.jtis:
                await self._refuse_tokens(event.jtis, event.reason, now)
            cred_ids, conn_ids = Principal.ids_of(event.principals)
            host.logins.invalidate(cred_ids, conn_ids)
            host.calls.connections.drop(*conn_ids)
            host.directory.note_revoked(event.principals, now)
            for principal in event.principals:
                for peer in host.directory.of(principal):
                    metrics.REVOCATIONS.inc()
                    outs = (
                        peer.session.expire(now)
                        if event.expired
                        else peer.session.revoke(event.reason, now)
                    )
                    await host.apply(peer, outs)
        elif isinstance(event, Changed):
            host.logins.invalidate(list(event.credential_ids), list(event.connection_ids))
            host.calls.connections.drop(*event.connection_ids)
        elif isinstance(event, NodeMessage) and event.kind == "release":
            if event.node_id == host.node_id:
                host.let_go(str(event.body.get("sessid", "")))
        elif isinstance(event, NodeMessage):
            await host.calls.on_node_message(event)
        elif isinstance(event, Displaced):
            target = host.directory.peers.get(event.session_id)
            if target is not None:
                await host.apply(target, target.session.displaced(event.by, now))

    async def _refuse_tokens(self, jtis: tuple[str, ...], reason: str, now: float) -> None:
        """Single tokens revoked (token reuse): refused from now on, their sessions end."""
        self.host.logins.refuse_tokens(jtis)
        for peer in [p for p in self.host.directory.peers.values() if p.jti in jtis]:
            metrics.REVOCATIONS.inc()
            await self.host.apply(peer, peer.session.revoke(reason, now))

    async def after_outage(self) -> None:
        """Redis is back, or failed over, or forgot us: take our registrations and session
        records back (a restarted Redis or a promoted replica may lack them) and end every
        session whose credential or token was revoked while events could not reach us."""
        host = self.host
        host.calls.connections.clear()
        await host.presence.reclaim()
        for peer in list(host.directory.peers.values()):  # Redis first: needs no store
            if peer.saved:
                peer.saved = ()  # rewritten: the record may be gone with the old master
                await host.handover.remember(peer)
        try:
            await self._recheck()
        except Exception as exc:  # the store may be switching over too: again, not inline
            log.warning("re-check after the bus came back failed", error=type(exc).__name__)
            if self._retrying is None or self._retrying.done():
                self._retrying = asyncio.create_task(self._recheck_later())

    async def _recheck_later(self) -> None:
        for delay in RECHECK_RETRIES:
            await asyncio.sleep(delay)
            try:
                await self._recheck()
                return
            except Exception as exc:
                log.warning("re-check after the bus came back failed", error=type(exc).__name__)
        log.error("live sessions not re-checked against revocations: the store is unavailable")

    async def _recheck(self) -> None:
        host, now = self.host, time.time()
        revoked_jtis = await host.logins.after_missed_events()
        for peer in list(host.directory.peers.values()):
            grant = peer.session.grant
            if grant is None or grant.anonymous or peer.closing is not None:
                continue
            if peer.jti in revoked_jtis or not await host.logins.still_valid(grant, now):
                reason = "revoked while the bus was unavailable"
                await host.apply(peer, peer.session.revoke(reason, now))
