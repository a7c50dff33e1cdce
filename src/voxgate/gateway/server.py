"""WebSocket adapter around ``rtc.Session``: sockets, the store, the bus and one loop timer.

Sockets call us back synchronously (``gateway/sockets.py``); each session's messages are handled
in order by at most one task at a time, started when the first message arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import structlog

from voxgate import metrics
from voxgate.bus.base import Bus, BusUnavailable
from voxgate.config import Settings
from voxgate.domain.records import Grant
from voxgate.gateway.anchoring import read_relays_forever
from voxgate.gateway.assistant_calls import assistant_message
from voxgate.gateway.authenticate import Authenticator
from voxgate.gateway.call_reports import CallReportDesk, Reporter
from voxgate.gateway.calls import CallRouter
from voxgate.gateway.directory import Directory, Peer
from voxgate.gateway.events import BusEvents
from voxgate.gateway.handover import Handover
from voxgate.gateway.listen import listen
from voxgate.gateway.presence import Presence, RegistrationRefused
from voxgate.gateway.reattach import Detached
from voxgate.gateway.report import REPORT_INTERVAL, report_forever
from voxgate.gateway.reuse import ReuseResponse
from voxgate.gateway.sockets import Socket
from voxgate.gateway.timers import Alarm
from voxgate.rtc.outputs import (
    AssistantMessage,
    Audit,
    Authenticate,
    Close,
    CloseCode,
    Output,
    Register,
    Relay,
    RouteCall,
    Send,
    Unregister,
)
from voxgate.rtc.session import Session
from voxgate.rtc.states import State
from voxgate.services.audit import AuditLog
from voxgate.services.logins import LoginService
from voxgate.store.base import Store
from voxgate.webhooks import WebhookSender, WebhookSigner

__all__ = ["Gateway"]

log = structlog.get_logger("voxgate.gateway")


class Gateway:
    """The signaling node: sockets in, sessions fed, their outputs carried out.

    Its collaborators are explicit: the settings, the bus (presence and events), the login
    service, the audit log, the store (for call routing) and the webhook signer.
    """

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        logins: LoginService,
        audit: AuditLog,
        store: Store,
        webhook_signer: WebhookSigner,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.logins = logins
        self.audit_log = audit
        self.node_id = bus.node_id
        report_key = logins.control.sealer.derive("call-reports") if settings.call_reports else b""
        self.config = replace(settings.session_config(self.node_id), report_key=report_key)
        self.directory: Directory[Peer] = Directory()
        self.presence = Presence(bus, self.directory, self.node_id)
        self.timers: Alarm[Peer] = Alarm(self._due)
        self._server: asyncio.Server | None = None
        self._background: set[asyncio.Task[Any]] = set()
        targets, refused = settings.webhook_targets(), metrics.WEBHOOKS_REFUSED.inc
        self.webhooks = WebhookSender(webhook_signer, targets, on_refused=refused)
        self.calls = CallRouter(self, store, bus, self.webhooks, logins.control.ice)
        self.calls.audit = audit
        reuse = ReuseResponse(logins.control, self.webhooks, self.calls.connection)
        self.authenticate = Authenticator(
            bus, logins, self.directory, audit, logins.control.ice, self.presence, reuse
        )
        self.handover = Handover(bus, self.directory, self.calls, self.config)
        self.detached = Detached(self, settings.max_detached_per_credential)
        self.reports = (
            CallReportDesk(
                report_key,
                store,
                audit,
                self._reporter,
                max_bytes=settings.call_report_max_bytes,
                recordings=settings.call_recordings,
                bus=bus,
            )
            if settings.call_reports
            else None
        )
        self.per_address: dict[str, int] = {}
        self.events = BusEvents(self)
        bus.subscribe(self.events)
        hooks = getattr(bus, "on_reconnect", None)
        if isinstance(hooks, list):
            hooks.append(self.events.after_outage)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        max_message, proxies = self.settings.max_frame_bytes, self.settings.proxies()
        self._server = await listen(
            host,
            port,
            self.settings,
            lambda _request: Socket(self, max_message, proxies),
            self.reports,
        )
        self.webhooks.start()
        self._spawn(self.calls.sweep_forever(self.settings.reattach_window))
        self._spawn(self.handover.sweep_forever())
        self._spawn(read_relays_forever(self.calls, REPORT_INTERVAL))
        self._spawn(report_forever(self.bus, self.describe))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            sockets = [p.ws for p in self.directory.peers.values() if p.ws is not None]
            transports = [s.transport for s in sockets if s.transport]
            for sock in sockets:
                sock.close(CloseCode.GOING_AWAY, "server shutting down")
            with contextlib.suppress(TimeoutError):  # clients answer the close; or are dropped
                await asyncio.wait_for(
                    asyncio.gather(*(t.wait_disconnected() for t in transports)), 2.0
                )
            for transport in transports:
                transport.disconnect(graceful=False)
        self.timers.close()
        for task in list(self._background):
            task.cancel()
        await self.webhooks.close()

    def describe(self) -> dict[str, Any]:
        """This node for the operator console (``gateway/report.py``)."""
        peers = self.directory.peers.values()
        return {
            "node_id": self.node_id,
            "pid": os.getpid(),  # which process, where several workers make one node
            "at": time.time(),
            "sessions": len(peers),
            "registered": len(self.directory.registered),
            "detached": self.detached.count,
            "calls": self.calls.in_progress(),
            "trunks": dict(self.calls.lines.registered) if self.calls.lines else {},
        }

    # -- the router's view (SessionHost) ---------------------------------------------------
    def session(self, sessid: str) -> Session | None:
        peer = self.directory.peers.get(sessid)
        return peer.session if peer is not None else None

    async def apply_to(self, sessid: str, outs: list[Output]) -> None:
        peer = self.directory.peers.get(sessid)
        if peer is not None:
            await self.apply(peer, outs)

    # -- one socket (SocketEvents) -----------------------------------------------------------
    def opened(self, sock: Socket) -> None:
        address = sock.address
        if self.per_address.get(address, 0) >= self.settings.max_sockets_per_address:
            metrics.LIMIT_HITS.labels("sockets_per_address").inc()
            sock.close(CloseCode.POLICY, "too many connections from this address")
            return
        self.per_address[address] = self.per_address.get(address, 0) + 1
        sock.counted = True
        session = Session(self.config, address, sock.port, time.time())
        peer = Peer(sock, session)
        sock.peer = peer
        self.directory.add(peer)
        self._schedule(peer)
        metrics.CONNECTIONS.inc()

    def received(self, sock: Socket, message: str | bytes) -> None:
        peer = sock.peer
        if not isinstance(peer, Peer) or peer.closing is not None:
            return
        if len(peer.inbox) >= MAX_INBOX:  # handled slower than sent (a login awaiting the store)
            self._close(peer, Close(CloseCode.POLICY, "too many frames"))
            return
        peer.inbox.append(message)
        self.drain(peer)

    def lost(self, sock: Socket) -> None:
        if sock.counted:
            sock.counted = False
            left = self.per_address.get(sock.address, 1) - 1
            if left:
                self.per_address[sock.address] = left
            else:
                self.per_address.pop(sock.address, None)
        if sock.sent_close_code == CloseCode.TOO_BIG:
            metrics.LIMIT_HITS.labels("frame_size").inc()
        peer = sock.peer
        if not isinstance(peer, Peer):
            return
        sock.peer = None
        peer.inbox.clear()
        self._spawn(self._socket_gone(peer, sock))

    async def _socket_gone(self, peer: Peer, sock: Socket) -> None:
        """A network loss detaches a session with a call (``gateway/reattach.py``); a close by
        the client, a session without a call, or any loss with reattach off, ends it."""
        if peer.ws is sock:
            peer.ws = None
        await self.apply(peer, peer.session.lost(time.time(), clean=sock.closed_by_client))

    def drain(self, peer: Peer) -> None:
        if peer.inbox and not peer.busy:
            peer.busy = True
            self._spawn(self._drain(peer))

    async def _drain(self, peer: Peer) -> None:
        """Handle one session's messages in arrival order (logins await the store)."""
        try:
            while peer.inbox and peer.closing is None:
                metrics.FRAMES.inc()
                outs = peer.session.receive(peer.inbox.pop(0), time.time())
                await self.apply(peer, outs)
        finally:
            peer.busy = False

    async def apply(self, peer: Peer, outs: list[Output]) -> None:
        sessid = peer.session.sessid
        for out in outs:
            if isinstance(out, Send):
                self._send(peer, out.frame)
            elif isinstance(out, Authenticate):
                outcome = await self.authenticate(peer, out)
                target = await self.handover.find(out.resume, outcome)
                if (
                    isinstance(outcome, Grant)
                    and target is not None
                    and target is not peer
                    and target.session.can_resume(outcome)
                ):
                    return await self.detached.resume(peer, target, out.request_id, outcome)
                await self.apply(
                    peer, peer.session.login_result(out.request_id, outcome, time.time())
                )
                if isinstance(outcome, Grant) and peer.session.grant is outcome:
                    await self.authenticate.track(peer, outcome, live=peer.closing is None)
            elif isinstance(out, Register):
                await self._register(peer, out)
            elif isinstance(out, Unregister):
                if peer.ws is not None or peer.session.state is not State.CLOSED:
                    await self.presence.release(peer)  # else ended: released as it is forgotten
            elif isinstance(out, Audit):
                self.audit_log.record(out.credential_id, out.kind, out.details)
            elif isinstance(out, RouteCall):
                self._spawn(self.calls.route(sessid, out))  # look-ups and media: off the reader
            elif isinstance(out, Relay):
                await self.calls.relay(sessid, out)
            elif isinstance(out, AssistantMessage):
                self._spawn(assistant_message(self.calls, sessid, out))
            elif isinstance(out, Close):
                self._close(peer, out)
        if peer.ws is None and peer.session.state is State.CLOSED:
            await self._forget(peer)  # a detached session ended: nobody came back, or revoked
            return
        await self.detached.noted(peer)
        await self.handover.remember(peer)
        if self.reports is not None:
            await self.reports.calls_changed(peer)
        self._schedule(peer)

    @staticmethod
    def _close(peer: Peer, out: Close) -> None:
        """The close frame goes out now; the socket waits on the client's answer (or a timeout)
        without holding up the caller (a REST revocation, the timer loop)."""
        peer.closing = out
        if out.code in _LIMIT_CLOSES:
            metrics.LIMIT_HITS.labels(_LIMIT_CLOSES[out.code]).inc()
        if out.code is CloseCode.EXPIRED:
            metrics.EXPIRIES.inc()
        if peer.ws is not None:
            peer.ws.close(out.code, out.reason)

    @staticmethod
    def _send(peer: Peer, frame: dict[str, Any]) -> None:
        if peer.ws is not None:
            peer.ws.send(json.dumps(frame, separators=(",", ":")))

    def let_go(self, sessid: str) -> None:
        peer = self.handover.let_go(sessid)
        if peer is None:
            return
        self.timers.cancel(peer)
        grant, sock, peer.ws = peer.session.grant, peer.ws, None
        self.detached.drop(peer)
        if grant is not None:
            metrics.SESSIONS.labels(grant.method).dec()
        if sock is not None:
            sock.peer = None
            sock.close(CloseCode.RESUMED_ELSEWHERE, "session resumed on another node")

    async def _register(self, peer: Peer, out: Register) -> None:
        try:
            await self.presence.claim(peer, out.grant, out.user_agent)
        except RegistrationRefused as refused:  # first_wins: another login won the race
            reason = f"credential already registered by {refused.holder.user_agent}"
            await self.apply(peer, [Close(CloseCode.REGISTERED_ELSEWHERE, reason)])
        except BusUnavailable as exc:
            log.warning("registration failed: bus unavailable", error=str(exc))
            reason = "presence service unavailable, try again"
            await self.apply(peer, [Close(CloseCode.TRY_AGAIN_LATER, reason)])

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forget(self, peer: Peer) -> None:
        grant = peer.session.grant
        self.timers.cancel(peer)
        if not self.directory.knows(peer):
            return  # already forgotten
        self.directory.forget(peer)
        self.detached.drop(peer)
        if grant is not None:
            metrics.SESSIONS.labels(grant.method).dec()
        reporter = self._reporter(peer.session.sessid, peer)
        if self.reports is not None and reporter is not None and reporter.call_ids:
            self.reports.ended(reporter, time.time())  # no call: no report to wait 15 min for
            await self.reports.note(reporter, in_call=False)
        await self.presence.release(peer, ended=True)
        await self.handover.forget(peer)

    def _reporter(self, sessid: str, peer: Peer | None = None) -> Reporter | None:
        """A session as its call reports need it (``gateway/call_reports.py``)."""
        peer = peer or self.directory.peers.get(sessid)
        grant = peer.session.grant if peer is not None else None
        if peer is None or grant is None:
            return None
        calls = peer.session.calls
        own = frozenset([*calls.legs, *calls.ended])
        return Reporter(sessid, grant.credential_id, grant.connection_id, own)

    # -- timers and bus --------------------------------------------------------------------
    def _schedule(self, peer: Peer) -> None:
        self.timers.schedule(peer, peer.session.next_deadline())

    def _due(self, due: list[Peer], now: float) -> None:
        self._spawn(self._fire(due, now))

    async def _fire(self, due: list[Peer], now: float) -> None:
        for peer in due:
            try:
                await self.apply(peer, peer.session.on_timer(now))
            except Exception:
                log.exception("timer handling failed")


MAX_INBOX = 64  # messages waiting for their session's turn; more is a flood
_LIMIT_CLOSES = {CloseCode.POLICY: "frames_per_second", CloseCode.LOGIN_TIMEOUT: "login_timeout"}
