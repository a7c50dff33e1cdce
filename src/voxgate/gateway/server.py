"""WebSocket adapter around ``rtc.Session``: sockets, the store, the bus and one loop timer.

Sockets call us back synchronously (``gateway/sockets.py``); each session's messages are handled
in order by at most one task at a time, started when the first message arrives.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from picows import ws_create_server

from voxgate import metrics
from voxgate.bus.base import Bus, BusEvent, BusUnavailable, Displaced, NodeMessage, Revoked
from voxgate.config import Settings
from voxgate.domain.principals import Principal
from voxgate.domain.records import Grant, Registration
from voxgate.gateway.authenticate import Authenticator
from voxgate.gateway.calls import CallRouter
from voxgate.gateway.directory import Directory
from voxgate.gateway.sockets import Socket, tls_context
from voxgate.gateway.timers import DeadlineHeap
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
)
from voxgate.rtc.session import Session, SessionConfig
from voxgate.services.audit import AuditLog
from voxgate.services.logins import LoginService
from voxgate.store.base import Store
from voxgate.webhooks import WebhookSender, WebhookSigner

__all__ = ["Gateway", "session_config"]

log = structlog.get_logger("voxgate.gateway")


@dataclass(eq=False, slots=True)
class Peer:
    ws: Socket
    session: Session
    principal: str | None = None
    jti: str | None = None
    closing: Close | None = field(default=None)
    inbox: collections.deque[str | bytes] = field(default_factory=collections.deque)
    busy: bool = False


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
        self.config = session_config(settings, self.node_id)
        self.directory: Directory[Peer] = Directory()
        self.authenticate = Authenticator(bus, logins, self.directory, audit)
        self.timers: DeadlineHeap[Peer] = DeadlineHeap()
        self._server: asyncio.Server | None = None
        self._alarm: asyncio.TimerHandle | None = None  # one loop timer for every session
        self._alarm_at: float | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.webhooks = WebhookSender(webhook_signer)
        self.calls = CallRouter(self, store, bus, self.webhooks)
        self.per_address: dict[str, int] = {}
        bus.subscribe(self._on_bus)
        hooks = getattr(bus, "on_reconnect", None)
        if isinstance(hooks, list):
            hooks.append(self._after_bus_outage)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        max_message = self.settings.max_frame_bytes
        self._server = await ws_create_server(
            lambda _request: Socket(self, max_message),
            host,
            port,
            websocket_handshake_timeout=self.settings.handshake_timeout,
            max_frame_size=max_message,
            read_buffer_init_size=2048,  # grows on demand; idle sessions stay small
            ssl=tls_context(self.settings.tls_cert, self.settings.tls_key),
            logger_name="gateway.sockets",
            use_aiofastnet=False,  # uvloop accepts in C; aiofastnet does it in Python
            backlog=LISTEN_BACKLOG,
        )
        self.webhooks.start()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            peers = list(self.directory.peers.values())
            transports = [p.ws.transport for p in peers if p.ws.transport]
            for peer in peers:
                peer.ws.close(CloseCode.GOING_AWAY, "server shutting down")
            with contextlib.suppress(TimeoutError):  # clients answer the close; or are dropped
                await asyncio.wait_for(
                    asyncio.gather(*(t.wait_disconnected() for t in transports)), 2.0
                )
            for transport in transports:
                transport.disconnect(graceful=False)
        if self._alarm is not None:
            self._alarm.cancel()
        for task in list(self._background):
            task.cancel()
        await self.webhooks.close()

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
        if not peer.busy:
            peer.busy = True
            self._spawn(self._drain(peer))

    def lost(self, sock: Socket) -> None:
        peer = sock.peer
        if not isinstance(peer, Peer):
            return
        sock.peer = None
        if sock.sent_close_code == CloseCode.TOO_BIG:
            metrics.LIMIT_HITS.labels("frame_size").inc()
        left = self.per_address.get(sock.address, 1) - 1
        if left:
            self.per_address[sock.address] = left
        else:
            self.per_address.pop(sock.address, None)
        peer.inbox.clear()
        self._spawn(self._forget(peer))

    async def _drain(self, peer: Peer) -> None:
        """Handle one session's messages in arrival order (logins await the store)."""
        try:
            while peer.inbox and peer.closing is None:
                metrics.FRAMES.inc()
                outs = peer.session.receive(peer.inbox.popleft(), time.time())
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
                await self.apply(
                    peer, peer.session.login_result(out.request_id, outcome, time.time())
                )
            elif isinstance(out, Register):
                await self._register(peer, out)
            elif isinstance(out, Audit):
                self.audit_log.record(out.credential_id, out.kind, out.details)
            elif isinstance(out, RouteCall):
                self._spawn(self.calls.route(sessid, out))  # look-ups and media: off the reader
            elif isinstance(out, Relay):
                await self.calls.relay(sessid, out)
            elif isinstance(out, AssistantMessage):
                self._spawn(self.calls.assistant_message(sessid, out))
            elif isinstance(out, Close):
                self._close(peer, out)
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
        peer.ws.close(out.code, out.reason)

    @staticmethod
    def _send(peer: Peer, frame: dict[str, Any]) -> None:
        peer.ws.send(json.dumps(frame, separators=(",", ":")))

    def _registration(self, peer: Peer, grant: Grant, user_agent: str) -> Registration:
        return Registration(
            principal=grant.principal,
            connection_id=grant.connection_id,
            credential_id=grant.credential_id,
            sip_username=grant.sip_username,
            session_id=peer.session.sessid,
            node_id=self.node_id,
            address=peer.session.address,
            port=peer.session.port,
            user_agent=user_agent,
            registered_at=time.time(),
        )

    async def _register(self, peer: Peer, out: Register) -> None:
        reg = self._registration(peer, out.grant, out.user_agent)
        try:
            previous = await self.bus.register(reg)
            self.directory.registered[reg.principal] = peer
            if previous is not None:
                metrics.DISPLACEMENTS.inc()
                await self.bus.publish(Displaced(previous.session_id, reg))
        except BusUnavailable:
            log.warning("registration failed: bus unavailable")
            reason = "presence service unavailable, try again"
            await self.apply(peer, [Close(CloseCode.TRY_AGAIN_LATER, reason)])

    async def _after_bus_outage(self) -> None:
        """Redis is back: take our registrations back (it may have lost them) and end every
        session whose credential was revoked while events could not reach us."""
        now = time.time()
        for peer in list(self.directory.registered.values()):
            grant = peer.session.grant
            if grant is not None:
                with contextlib.suppress(BusUnavailable):
                    await self.bus.register(
                        self._registration(peer, grant, peer.session.user_agent)
                    )
        for peer in list(self.directory.peers.values()):
            grant = peer.session.grant
            if grant is None or grant.anonymous:
                continue
            if not await self.logins.still_valid(grant, now):
                reason = "revoked while the bus was unavailable"
                await self.apply(peer, peer.session.revoke(reason, now))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forget(self, peer: Peer) -> None:
        session = peer.session
        grant = session.grant
        with contextlib.suppress(Exception):
            await self.apply(peer, session.lost(time.time()))  # the other legs get a bye
        self.timers.cancel(peer)
        self.directory.forget(peer)
        if grant is not None:
            metrics.SESSIONS.labels(grant.method).dec()
        if peer.principal is not None:
            with contextlib.suppress(Exception):
                await self.bus.unregister(peer.principal, session.sessid)

    # -- timers and bus --------------------------------------------------------------------
    def _schedule(self, peer: Peer) -> None:
        deadline = None if peer.closing is not None else peer.session.next_deadline()
        self.timers.schedule(peer, deadline)
        if deadline is not None and (
            self._alarm_at is None or deadline < self._alarm_at - ALARM_SLACK
        ):
            self._set_alarm(deadline)

    def _set_alarm(self, at: float) -> None:
        """One ``call_later`` for the earliest deadline: re-arming is a handle swap, no task.

        A deadline that moves later (a login ends the handshake wait) leaves the alarm where it
        was; it then fires, finds nothing due and re-arms for the next live deadline.
        """
        if self._alarm is not None:
            self._alarm.cancel()
        self._alarm_at = at
        delay = max(0.0, at - time.time())
        self._alarm = asyncio.get_running_loop().call_later(delay, self._on_alarm)

    def _on_alarm(self) -> None:
        self._alarm = self._alarm_at = None
        now = time.time()
        due = self.timers.pop_due(now)
        if due:
            self._spawn(self._fire(due, now))
        earliest = self.timers.earliest()
        if earliest is not None:
            self._set_alarm(earliest)

    async def _fire(self, due: list[Peer], now: float) -> None:
        for peer in due:
            try:
                await self.apply(peer, peer.session.on_timer(now))
            except Exception:
                log.exception("timer handling failed")

    async def _on_bus(self, event: BusEvent) -> None:
        now = time.time()
        if isinstance(event, Revoked):
            self.logins.invalidate(*Principal.ids_of(event.principals))
            self.directory.note_revoked(event.principals, now)
            for principal in event.principals:
                for peer in self.directory.of(principal):
                    metrics.REVOCATIONS.inc()
                    outs = (
                        peer.session.expire(now)
                        if event.expired
                        else peer.session.revoke(event.reason, now)
                    )
                    await self.apply(peer, outs)
        elif isinstance(event, NodeMessage):
            await self.calls.on_node_message(event)
        elif isinstance(event, Displaced):
            target = self.directory.peers.get(event.session_id)
            if target is not None:
                await self.apply(target, target.session.displaced(event.by, now))


ALARM_SLACK = 0.05  # a deadline this close to the armed one does not re-arm it
LISTEN_BACKLOG = 4096  # asyncio's default (100) drops SYNs in a reconnect storm: 1 s+ retries
MAX_INBOX = 64  # messages waiting for their session's turn; more is a flood
_LIMIT_CLOSES = {CloseCode.POLICY: "frames_per_second", CloseCode.LOGIN_TIMEOUT: "login_timeout"}


def session_config(settings: Settings, node_id: str) -> SessionConfig:
    """The core's limits and timers, from ``Settings`` (where every default lives)."""
    return SessionConfig(
        expiry_notice=settings.expiry_notice,
        handshake_timeout=settings.handshake_timeout,
        max_frames_per_second=settings.max_frames_per_second,
        frame_burst=max(4 * settings.max_frames_per_second, 20),
        node_id=node_id,
        expiry_grace=settings.expiry_grace,
    )
