"""WebSocket adapter around ``rtc.Session``: sockets, the store, the bus and one loop timer.

Sockets call us back synchronously (``gateway/sockets.py``); each session's messages are handled
in order by at most one task at a time, started when the first message arrives.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import ssl
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog
from picows import ws_create_server

from voxgate import metrics
from voxgate.bus.base import BusEvent, BusUnavailable, Displaced, NodeMessage, Registration, Revoked
from voxgate.config import Settings
from voxgate.domain.errors import LoginFailed
from voxgate.domain.records import Grant
from voxgate.gateway.calls import CallRouter
from voxgate.gateway.sockets import Socket
from voxgate.gateway.timers import DeadlineHeap
from voxgate.rtc.calls import Relay, RouteCall
from voxgate.rtc.session import (
    Audit,
    Authenticate,
    Close,
    LoginOutcome,
    Output,
    Register,
    Send,
    Session,
    SessionConfig,
)
from voxgate.runtime import Runtime
from voxgate.webhooks import WebhookSender, WebhookSigner
from voxgate.webhooks.signing import PURPOSE as WEBHOOK_PURPOSE

__all__ = ["Gateway"]

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
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.node_id = rt.bus.node_id
        self.config = SessionConfig(
            expiry_notice=rt.settings.expiry_notice,
            handshake_timeout=rt.settings.handshake_timeout,
            max_frames_per_second=rt.settings.max_frames_per_second,
            frame_burst=max(4 * rt.settings.max_frames_per_second, 20),
            node_id=self.node_id,
            expiry_grace=rt.settings.expiry_grace,
        )
        self.peers: dict[str, Peer] = {}
        self.by_principal: dict[str, set[Peer]] = {}
        self.jti_addresses: dict[str, set[str]] = {}
        self.timers: DeadlineHeap[Peer] = DeadlineHeap()
        self._server: asyncio.Server | None = None
        self._alarm: asyncio.TimerHandle | None = None  # one loop timer for every session
        self._alarm_at: float | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.calls = CallRouter(self)
        self.webhooks: WebhookSender | None = None
        self.registered: dict[str, Peer] = {}  # principal -> the local session holding it
        self.revoked_at: dict[str, float] = {}  # principal -> when a revocation reached us
        self.per_address: dict[str, int] = {}
        rt.bus.subscribe(self._on_bus)
        hooks = getattr(rt.bus, "on_reconnect", None)
        if isinstance(hooks, list):
            hooks.append(self._after_bus_outage)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def start(self, host: str, port: int) -> None:
        max_message = self.rt.settings.max_frame_bytes
        self._server = await ws_create_server(
            lambda _request: Socket(self, max_message),
            host,
            port,
            websocket_handshake_timeout=self.rt.settings.handshake_timeout,
            max_frame_size=max_message,
            read_buffer_init_size=2048,  # grows on demand; idle sessions stay small
            ssl=_tls_context(self.rt.settings),
            logger_name="gateway.sockets",
            use_aiofastnet=False,  # uvloop accepts in C; aiofastnet does it in Python
            backlog=LISTEN_BACKLOG,
        )
        self.webhooks = WebhookSender(WebhookSigner(self.rt.control.sealer.derive(WEBHOOK_PURPOSE)))
        self.webhooks.start()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            transports = [p.ws.transport for p in self.peers.values() if p.ws.transport]
            for peer in list(self.peers.values()):
                peer.ws.close(1001, "server shutting down")
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
        if self.webhooks is not None:
            await self.webhooks.close()

    # -- one socket (SocketEvents) -----------------------------------------------------------
    def opened(self, sock: Socket) -> None:
        address = sock.address
        if self.per_address.get(address, 0) >= self.rt.settings.max_sockets_per_address:
            metrics.LIMIT_HITS.labels("sockets_per_address").inc()
            sock.close(1008, "too many connections from this address")
            return
        self.per_address[address] = self.per_address.get(address, 0) + 1
        session = Session(self.config, address, sock.port, time.time())
        peer = Peer(sock, session)
        sock.peer = peer
        self.peers[session.sessid] = peer
        self._schedule(peer)
        metrics.CONNECTIONS.inc()

    def received(self, sock: Socket, message: str | bytes) -> None:
        peer = sock.peer
        if not isinstance(peer, Peer) or peer.closing is not None:
            return
        if len(peer.inbox) >= MAX_INBOX:  # handled slower than sent (a login awaiting the store)
            self._close(peer, Close(1008, "too many frames"))
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
        if sock.sent_close_code == 1009:
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
        for out in outs:
            if isinstance(out, Send):
                self._send(peer, out.frame)
            elif isinstance(out, Authenticate):
                outcome = await self._authenticate(peer, out)
                await self.apply(
                    peer, peer.session.login_result(out.request_id, outcome, time.time())
                )
            elif isinstance(out, Register):
                await self._register(peer, out)
            elif isinstance(out, Audit):
                self._audit(out)
            elif isinstance(out, RouteCall):
                self._spawn(self.calls.route(peer, out))  # look-ups and media: off the reader
            elif isinstance(out, Relay):
                await self.calls.relay(peer, out)
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
        peer.ws.close(out.code, out.reason)

    @staticmethod
    def _send(peer: Peer, frame: dict[str, Any]) -> None:
        peer.ws.send(json.dumps(frame, separators=(",", ":")))

    async def _authenticate(self, peer: Peer, req: Authenticate) -> LoginOutcome:
        logins = self.rt.logins
        params, now = req.params, time.time()
        method = (
            "anonymous"
            if req.method == "anonymous_login"
            else "token"
            if params.get("login_token")
            else "password"
        )
        if not req.refresh and method != "anonymous" and not await self.rt.bus.healthy():
            metrics.LOGINS.labels(method, "unavailable").inc()
            return LoginFailed("Presence service unavailable; try again shortly")  # fail closed
        try:
            if req.method == "anonymous_login":
                target = params.get("target_params")
                conv = target.get("conversation_id") if isinstance(target, dict) else None
                grant = await logins.anonymous_login(
                    params.get("target_type"), params.get("target_id"), conv
                )
            elif params.get("login_token"):
                grant = await logins.token_login(params.get("login_token"), now)
            else:
                grant = await logins.password_login(
                    params.get("login"),
                    params.get("passwd") or params.get("password"),
                    peer.session.address,
                    now,
                )
        except LoginFailed as exc:
            metrics.LOGINS.labels(method, "failed").inc()
            return exc
        except Exception as exc:  # store or bus down: fail closed, say so plainly
            log.warning("login check unavailable", error=type(exc).__name__)
            metrics.LOGINS.labels(method, "unavailable").inc()
            return LoginFailed("Login service temporarily unavailable")
        if self.revoked_at.get(grant.principal, 0.0) >= now:
            # a revocation arrived while we checked (maybe against a cached record)
            metrics.LOGINS.labels(method, "failed").inc()
            return LoginFailed("Credential was revoked", subject=grant.credential_id)
        metrics.LOGINS.labels(method, "ok").inc()
        if req.refresh:
            metrics.REFRESHES.inc()
        else:
            metrics.SESSIONS.labels(grant.method).inc()
        self._track(peer, grant.principal, grant.jti, grant.credential_id)
        return grant

    def _track(
        self, peer: Peer, principal: str, jti: str | None, credential_id: str | None
    ) -> None:
        if peer.principal is None:
            peer.principal = principal
            self.by_principal.setdefault(principal, set()).add(peer)
        if jti is None or peer.principal != principal:
            return
        if peer.jti is not None and peer.jti != jti:
            self._drop_jti(peer)
        peer.jti = jti
        holders = self.jti_addresses.setdefault(jti, set())
        address = peer.session.address
        if holders - {address} and credential_id:
            self._audit(
                Audit(
                    credential_id,
                    "token_reuse",
                    {"jti": jti, "addresses": sorted(holders | {address})},
                )
            )
        holders.add(address)

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

    def _note_revoked(self, principals: tuple[str, ...], now: float) -> None:
        creds = [p.removeprefix("cred:") for p in principals if p.startswith("cred:")]
        conns = [p.removeprefix("conn:") for p in principals if p.startswith("conn:")]
        self.rt.logins.invalidate(creds, conns)
        for principal in principals:
            self.revoked_at[principal] = now
        if len(self.revoked_at) > 100_000:
            cutoff = now - 60
            self.revoked_at = {p: t for p, t in self.revoked_at.items() if t > cutoff}

    async def _register(self, peer: Peer, out: Register) -> None:
        reg = self._registration(peer, out.grant, out.user_agent)
        try:
            previous = await self.rt.bus.register(reg)
            self.registered[reg.principal] = peer
            if previous is not None:
                metrics.DISPLACEMENTS.inc()
                await self.rt.bus.publish(Displaced(previous.session_id, reg))
        except BusUnavailable:
            log.warning("registration failed: bus unavailable")
            await self.apply(peer, [Close(1013, "presence service unavailable, try again")])

    async def _after_bus_outage(self) -> None:
        """Redis is back: take our registrations back (it may have lost them) and end every
        session whose credential was revoked while events could not reach us."""
        now = time.time()
        for peer in list(self.registered.values()):
            grant = peer.session.grant
            if grant is not None:
                with contextlib.suppress(BusUnavailable):
                    await self.rt.bus.register(
                        self._registration(peer, grant, peer.session.user_agent)
                    )
        for peer in list(self.peers.values()):
            grant = peer.session.grant
            if grant is None or grant.anonymous:
                continue
            if not await self.rt.logins.still_valid(grant, now):
                reason = "revoked while the bus was unavailable"
                await self.apply(peer, peer.session.revoke(reason, now))

    def _audit(self, out: Audit) -> None:
        self.rt.control.audit_log.record(out.credential_id, out.kind, out.details)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forget(self, peer: Peer) -> None:
        session = peer.session
        with contextlib.suppress(Exception):
            await self.calls.forget(peer)
        session.closed()
        self.timers.cancel(peer)
        self.peers.pop(session.sessid, None)
        if session.grant is not None:
            metrics.SESSIONS.labels(session.grant.method).dec()
        if peer.principal is not None and self.registered.get(peer.principal) is peer:
            del self.registered[peer.principal]
        if peer.principal is not None:
            holders = self.by_principal.get(peer.principal)
            if holders is not None:
                holders.discard(peer)
                if not holders:
                    del self.by_principal[peer.principal]
            with contextlib.suppress(Exception):
                await self.rt.bus.unregister(peer.principal, session.sessid)
        self._drop_jti(peer)

    def _drop_jti(self, peer: Peer) -> None:
        if peer.jti is None:
            return
        others = {
            p.session.address
            for p in self.by_principal.get(peer.principal or "", ())
            if p is not peer and p.jti == peer.jti
        }
        if others:
            self.jti_addresses[peer.jti] = others
        else:
            self.jti_addresses.pop(peer.jti, None)

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
                outs = peer.session.on_timer(now)
                if any(isinstance(o, Close) and o.code == 4002 for o in outs):
                    metrics.EXPIRIES.inc()
                await self.apply(peer, outs)
            except Exception:
                log.exception("timer handling failed")

    async def _on_bus(self, event: BusEvent) -> None:
        now = time.time()
        if isinstance(event, Revoked):
            self._note_revoked(event.principals, now)
            for principal in event.principals:
                for peer in list(self.by_principal.get(principal, ())):
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
            target = self.peers.get(event.session_id)
            if target is not None:
                by = {
                    "user_agent": event.by.user_agent,
                    "address": event.by.address,
                    "port": event.by.port,
                    "at": event.by.registered_at,
                    "node_id": event.by.node_id,
                }
                await self.apply(target, target.session.displaced(by, now))


ALARM_SLACK = 0.05  # a deadline this close to the armed one does not re-arm it
LISTEN_BACKLOG = 4096  # asyncio's default (100) drops SYNs in a reconnect storm: 1 s+ retries
MAX_INBOX = 64  # messages waiting for their session's turn; more is a flood
_LIMIT_CLOSES = {1008: "frames_per_second", 4001: "login_timeout"}


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context
