"""One signaling session as a state machine. No sockets, no asyncio, no clock of its own.

    session = Session(config, address="198.51.100.7", port=51000, now=t0)
    outputs = session.receive(frame, now)        # -> [Send, Close, Authenticate, Register, ...]
    outputs = session.login_result(req_id, grant_or_error, now)
    deadline = session.next_deadline()          # when it wants on_timer(now)

Every input is first classified and looked up in ``rtc/states.py``'s table; the answer (a next
state or a refusal) is the only thing that decides whether it is allowed. Verifying a login
needs the store, so the session asks for it (``Authenticate``) and the adapter answers with
``login_result``. Call legs live in ``rtc/calls.py``; the session decides when they may ring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voxgate.domain import ids
from voxgate.domain.errors import LoginFailed, MethodNotFound, NotAuthenticated, VoxgateError
from voxgate.domain.records import Grant, Registration
from voxgate.rtc import frames
from voxgate.rtc.calls import CALL_METHODS, Calls
from voxgate.rtc.frames import FrameError, Request, Response
from voxgate.rtc.logins import parse_login, user_agent
from voxgate.rtc.outputs import (
    Audit,
    Authenticate,
    Close,
    CloseCode,
    Offer,
    Output,
    Register,
    Send,
)
from voxgate.rtc.states import Input, Refusal, State, step

__all__ = ["LoginOutcome", "Session", "SessionConfig"]

NOTICE_CHANNEL = "voxgate"
LoginOutcome = Grant | LoginFailed
_LOGINS = ("login", "anonymous_login")


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Built by the gateway from ``Settings``, where every default lives."""

    expiry_notice: float
    handshake_timeout: float
    max_frames_per_second: int
    frame_burst: int
    node_id: str
    expiry_grace: float  # seconds a call in progress may outlive the token


@dataclass(slots=True)
class Session:
    config: SessionConfig
    address: str
    port: int
    connected_at: float
    sessid: str = field(default_factory=ids.new_uuid)
    state: State = State.CONNECTED
    grant: Grant | None = None
    user_agent: str = ""
    notice_sent: bool = False  # the expiry notice for the current grant went out
    grace_until: float | None = None  # set while DRAINING
    _pending: frames.Id | None = None  # the login request being verified
    _server_id: int = 1000
    _tokens: float = 0.0
    _tokens_at: float = 0.0
    calls: Calls = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.config.frame_burst)
        self._tokens_at = self.connected_at
        self.calls = Calls(self.sessid, self._next_id)

    @property
    def voice_sdk_id(self) -> str:
        return f"VSDK-{self.config.node_id}-{self.sessid}"

    @property
    def expires_at(self) -> float | None:
        return self.grant.expires_at if self.grant else None

    def _step(self, event: Input) -> State | Refusal:
        """Look ``event`` up in the table; a transition is taken at once."""
        outcome = step(self.state, event)
        if isinstance(outcome, State):
            self.state = outcome
        return outcome

    # -- frames from the client ------------------------------------------------------------
    def receive(self, data: str | bytes | dict[str, Any], now: float) -> list[Output]:
        if self.state is State.CLOSED:
            return []
        if not self._take_token(now):
            self._step(Input.FLOOD)
            return [Close(CloseCode.POLICY, "too many frames")]
        frame = frames.parse_frame(data)
        if isinstance(frame, FrameError):
            return [Send(frames.error_frame(frame.id, frame.error))]
        if isinstance(frame, Response):
            return []  # acks of our requests; nothing waits on them
        return self._request(frame, now)

    def _request(self, req: Request, now: float) -> list[Output]:
        method = req.method
        if method in _LOGINS:
            return self._login(req, now)
        event = {
            "telnyx_rtc.ping": Input.PING,
            "telnyx_rtc.gatewayState": Input.GATEWAY_STATE,
            "telnyx_rtc.invite": Input.INVITE,
        }.get(method or "", Input.REQUEST)
        outcome = self._step(event)
        if outcome is Refusal.NO_NEW_CALLS and self.grant is not None:
            return self.calls.invite(req, self.grant, now, refused=True)
        if isinstance(outcome, Refusal):
            return self._refused(req, outcome)
        if event is Input.PING:
            return self._result(req, {"message": "PONG", "sessid": self.sessid})
        if event is Input.GATEWAY_STATE:
            return self._result(req, {"params": {"state": "REGED"}, "sessid": self.sessid})
        assert self.grant is not None  # the table lets only logged-in sessions past
        if event is Input.INVITE:
            return self.calls.invite(req, self.grant, now, refused=False)
        if method is None:
            return self._result(req, {})  # debug_report_* and other method-less requests
        if method in CALL_METHODS:
            return self._after_calls(self.calls.request(req, now))
        return self._error(req, MethodNotFound(f"Method not found: {method[:64]}"))

    # -- logins ----------------------------------------------------------------------------
    def _login(self, req: Request, now: float) -> list[Output]:
        if req.id is None:
            return []
        outcome = self._step(Input.LOGIN_AGAIN if self._pending is not None else Input.LOGIN)
        if isinstance(outcome, Refusal):
            return self._refused(req, outcome)
        if not self.user_agent:
            self.user_agent = user_agent(req.params)
        login = parse_login(str(req.method), req.params)
        self._pending = req.id
        if isinstance(login, LoginFailed):  # bad shape: refused without asking the store
            return self.login_result(req.id, login, now)
        return [Authenticate(req.id, login, refresh=self.grant is not None)]

    def login_result(
        self, request_id: frames.Id, outcome: LoginOutcome, now: float
    ) -> list[Output]:
        if request_id != self._pending or self.state is State.CLOSED:
            return []
        self._pending = None
        current = self.grant
        if isinstance(outcome, LoginFailed):
            self._step(Input.LOGIN_FAILED)
            outs: list[Output] = [Send(frames.error_frame(request_id, outcome))]
            if outcome.subject:
                kind = "refresh_failed" if current else "login_failed"
                outs.append(
                    Audit(outcome.subject, kind, {"reason": outcome.detail, **self._origin()})
                )
            return outs
        same = current is None or outcome.principal == current.principal
        verdict = self._step(Input.LOGIN_OK if same else Input.LOGIN_OTHER_IDENTITY)
        if verdict is Refusal.OTHER_IDENTITY and current is not None:
            refused = LoginFailed("Login refused: this session belongs to another identity")
            outs = [Send(frames.error_frame(request_id, refused))]
            if current.credential_id:
                details = {"reason": "different identity", **self._origin()}
                outs.append(Audit(current.credential_id, "refresh_refused", details))
            return outs
        if isinstance(verdict, Refusal):
            return []
        self.grant, self.notice_sent, self.grace_until = outcome, False, None
        reply = {"message": "logged in", "sessid": self.sessid}
        outs = [Send(frames.result_frame(request_id, reply, voice_sdk_id=self.voice_sdk_id))]
        if current is not None:
            if outcome.credential_id:
                details = {"jti": outcome.jti, "exp": outcome.expires_at, **self._origin()}
                outs.append(Audit(outcome.credential_id, "refreshed", details))
            return outs + self._due_notice(now)
        ready = frames.request_frame(
            self._next_id(),
            "telnyx_rtc.clientReady",
            {"reattached_sessions": []},
            voice_sdk_id=self.voice_sdk_id,
        )
        outs.append(Send(ready))
        if not outcome.anonymous:
            outs.append(Register(outcome, self.user_agent))
        if outcome.credential_id:
            details = {"method": outcome.method, "jti": outcome.jti, **self._origin()}
            outs.append(Audit(outcome.credential_id, "login_ok", details))
        return outs + self._due_notice(now)

    # -- time ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        if self.state is State.CONNECTED:
            return self.connected_at + self.config.handshake_timeout
        if self.state in (State.LOGGING_IN, State.CLOSED) or self.grant is None:
            return None
        rings = self.calls.next_deadline()
        exp = self.grant.expires_at
        if self.state is State.DRAINING:
            own = self.grace_until
        elif exp is None:
            own = None
        else:
            own = exp if self.notice_sent else min(exp, exp - self.config.expiry_notice)
        return min((t for t in (own, rings) if t is not None), default=None)

    def on_timer(self, now: float) -> list[Output]:
        if self.state in (State.CONNECTED, State.LOGGING_IN):
            if now < self.connected_at + self.config.handshake_timeout:
                return []
            if self._step(Input.HANDSHAKE_TIMEOUT) is State.CLOSED:
                return [Close(CloseCode.LOGIN_TIMEOUT, "no login before the handshake timeout")]
            return []
        if self.state is State.CLOSED or self.grant is None:
            return []
        outs = self._after_calls(self.calls.ring_timeouts(now))
        if self.state is State.DRAINING and self.grace_until is not None:
            if now >= self.grace_until:
                self._step(Input.GRACE_OVER)
                return outs + self._expired_end()
            return outs
        exp = self.grant.expires_at
        if exp is not None and now >= exp:
            return outs + self.expire(now, exp)
        return outs + self._due_notice(now)

    def expire(self, now: float, at: float | None = None) -> list[Output]:
        """Time ran out (token or credential): end now, or after the grace if a call is up."""
        in_call = self.config.expiry_grace > 0 and self.calls.live
        outcome = self._step(Input.EXPIRED_IN_CALL if in_call else Input.EXPIRED)
        if outcome is State.DRAINING:
            self.grace_until = (at if at is not None else now) + self.config.expiry_grace
            return []
        if outcome is State.CLOSED:
            return self._expired_end()
        return []

    # -- what the adapter tells us ---------------------------------------------------------
    def revoke(self, reason: str, now: float) -> list[Output]:
        if self._step(Input.REVOKED) is not State.CLOSED:
            return []
        return self._end("voxgate.revoked", reason, CloseCode.REVOKED)

    def displaced(self, by: Registration, now: float) -> list[Output]:
        """Our registration moved to a newer session (``by``); we stay connected, stop ringing."""
        if isinstance(self._step(Input.DISPLACED), Refusal) or self.grant is None:
            return []
        taker = {
            "user_agent": by.user_agent,
            "address": by.address,
            "port": by.port,
            "at": by.registered_at,
            "node_id": by.node_id,
        }
        outs: list[Output] = [
            Send(self._notice("voxgate.displaced", {"by": taker, "server_time": now}))
        ]
        if self.grant.credential_id:
            details = {"by": taker, **self._origin()}
            outs.append(Audit(self.grant.credential_id, "displaced", details))
        return outs

    def lost(self, now: float) -> list[Output]:
        """The socket is gone: every call ends, the other side of each gets a bye."""
        if self._step(Input.SOCKET_LOST) is not State.CLOSED:
            return []
        return self.calls.hangup_all("NORMAL_CLEARING", tell_client=False)

    def incoming_call(
        self, offer: Offer, now: float, call_id: str | None = None
    ) -> tuple[str | None, list[Output]]:
        """Offer a call to this client. Returns (callID, outputs); callID None: not now."""
        if isinstance(self._step(Input.OFFERED), Refusal) or self.grant is None:
            return None, []
        return self.calls.offered(offer, self.grant, call_id)

    @property
    def busy(self) -> bool:
        """Would an offered call be refused? (One call at a time, none while ending.)"""
        return isinstance(step(self.state, Input.OFFERED), Refusal) or self.calls.live

    def call_routed(
        self, call_id: str, ring_timeout: float, now: float, peer: str = ""
    ) -> list[Output]:
        if self.state is State.CLOSED:
            return []
        return self.calls.routed(call_id, ring_timeout, now, peer)

    def call_failed(self, call_id: str, cause: str, now: float) -> list[Output]:
        if self.state is State.CLOSED:
            return []
        return self._after_calls(self.calls.failed(call_id, cause))

    def relayed(self, call_id: str, kind: str, params: dict[str, Any], now: float) -> list[Output]:
        """The other leg said something; tell our client."""
        if self.state is State.CLOSED:
            return []
        return self._after_calls(self.calls.relayed(call_id, kind, params))

    def assistant_reply(self, call_id: str, text: str, now: float) -> list[Output]:
        if self.state is State.CLOSED:
            return []
        return self.calls.assistant_reply(call_id, text)

    # -- helpers ---------------------------------------------------------------------------
    def _after_calls(self, outs: list[Output]) -> list[Output]:
        """A draining session ends with its last call."""
        drained = self.state is State.DRAINING and not self.calls.live
        if drained and self._step(Input.CALLS_ENDED) is State.CLOSED:
            return outs + self._expired_end()
        return outs

    def _expired_end(self) -> list[Output]:
        outs = self._end("voxgate.expired", "token expired", CloseCode.EXPIRED)
        if self.grant is not None and self.grant.credential_id:
            outs.insert(0, Audit(self.grant.credential_id, "expired", {"sessid": self.sessid}))
        return outs

    def _end(self, event: str, reason: str, code: CloseCode) -> list[Output]:
        outs = self.calls.hangup_all("NORMAL_CLEARING", tell_client=True)
        self.state = State.CLOSED
        return [
            *outs,
            Send(self._notice(event, {"reason": reason})),
            Send(frames.request_frame(self._next_id(), "telnyx_rtc.punt", {"reason": reason})),
            Close(code, reason),
        ]

    def _due_notice(self, now: float) -> list[Output]:
        exp = self.expires_at
        if exp is None or self.notice_sent or now < exp - self.config.expiry_notice:
            return []
        self.notice_sent = True
        expires_in = max(0.0, exp - now)
        body = {"code": 34001, "server_time": now, "expires_at": exp, "expires_in": expires_in}
        return [Send(self._notice("voxgate.token_expiring", body))]

    def _notice(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        params = {
            "eventChannel": NOTICE_CHANNEL,
            "eventType": event,
            "type": event,
            "sessid": self.sessid,
            **data,
        }
        return frames.request_frame(self._next_id(), "telnyx_rtc.event", params)

    def _next_id(self) -> int:
        self._server_id += 1
        return self._server_id

    def _origin(self) -> dict[str, Any]:
        """Where this session comes from, for the audit trail."""
        return dict(
            address=self.address, port=self.port, user_agent=self.user_agent, sessid=self.sessid
        )

    def _refused(self, req: Request, refusal: Refusal) -> list[Output]:
        """The reply to a request the table refuses."""
        if refusal is Refusal.NOT_AUTHENTICATED:
            return self._error(req, NotAuthenticated())
        if refusal is Refusal.LOGIN_IN_PROGRESS:
            return self._error(req, LoginFailed("Another login is in progress"))
        return []

    @staticmethod
    def _result(req: Request, result: dict[str, Any]) -> list[Output]:
        return [] if req.id is None else [Send(frames.result_frame(req.id, result))]

    @staticmethod
    def _error(req: Request, error: VoxgateError) -> list[Output]:
        return [] if req.id is None else [Send(frames.error_frame(req.id, error))]

    def _take_token(self, now: float) -> bool:
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(
            float(self.config.frame_burst),
            self._tokens + elapsed * self.config.max_frames_per_second,
        )
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
