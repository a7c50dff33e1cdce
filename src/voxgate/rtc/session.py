"""One signaling session as a state machine. No sockets, no asyncio, no clock of its own.

    session = Session(config, address="198.51.100.7", port=51000, now=t0)
    outputs = session.receive(frame, now)        # -> [Send, Close, Authenticate, Register, Audit]
    outputs = session.login_result(req_id, grant_or_error, now)
    deadline = session.next_deadline()          # when it wants on_timer(now)

Verifying a login needs the store, so the session asks for it (``Authenticate``) and the adapter
answers with ``login_result``. Everything the SDK expects on the wire is decided here.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from voxgate.domain.errors import LoginFailed
from voxgate.domain.records import Grant
from voxgate.rtc import frames
from voxgate.rtc.frames import FrameError, Request, Response

__all__ = [
    "Audit",
    "Authenticate",
    "Close",
    "LoginOutcome",
    "Output",
    "Register",
    "Send",
    "Session",
    "SessionConfig",
    "State",
]

NOTICE_CHANNEL = "voxgate"


class State(enum.Enum):
    CONNECTED = "connected"
    AUTHENTICATED = "authenticated"
    READY = "ready"
    CLOSED = "closed"


class CloseCode:
    LOGIN_TIMEOUT = 4001
    EXPIRED = 4002
    REVOKED = 4003
    POLICY = 1008


# -- outputs --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Send:
    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Verify these login params; answer with ``login_result(request_id, ...)``."""

    request_id: frames.Id
    method: str  # "login" | "anonymous_login"
    params: dict[str, Any]
    refresh: bool


@dataclass(frozen=True, slots=True)
class Register:
    """Claim the principal's inbound registration (latest wins)."""

    grant: Grant
    user_agent: str


@dataclass(frozen=True, slots=True)
class Audit:
    credential_id: str
    kind: str
    details: dict[str, Any]


Output = Send | Close | Authenticate | Register | Audit
LoginOutcome = Grant | LoginFailed


@dataclass(frozen=True, slots=True)
class SessionConfig:
    expiry_notice: float = 3600.0
    handshake_timeout: float = 10.0
    max_frames_per_second: int = 50
    frame_burst: int = 200
    node_id: str = "node"


@dataclass(slots=True)
class Session:
    config: SessionConfig
    address: str
    port: int
    now: float
    sessid: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: State = State.CONNECTED
    grant: Grant | None = None
    user_agent: str = ""
    notice_sent: bool = False
    _pending_login: frames.Id | None = None
    _server_id: int = 1000
    _tokens: float = 0.0
    _tokens_at: float = 0.0
    _connected_at: float = 0.0

    def __post_init__(self) -> None:
        self._connected_at = self.now
        self._tokens = float(self.config.frame_burst)
        self._tokens_at = self.now

    @property
    def voice_sdk_id(self) -> str:
        return f"VSDK-{self.config.node_id}-{self.sessid}"

    @property
    def expires_at(self) -> float | None:
        return self.grant.expires_at if self.grant else None

    # -- inputs ----------------------------------------------------------------------------
    def receive(self, data: str | bytes | dict[str, Any], now: float) -> list[Output]:
        if self.state is State.CLOSED:
            return []
        if not self._take_token(now):
            self.state = State.CLOSED
            return [Close(CloseCode.POLICY, "too many frames")]
        frame = frames.parse_frame(data)
        if isinstance(frame, FrameError):
            return [Send(frames.error_frame(frame.id, frame.code, frame.message))]
        if isinstance(frame, Response):
            return []  # acks of our requests; nothing waits on them
        return self._request(frame, now)

    def login_result(
        self, request_id: frames.Id, outcome: LoginOutcome, now: float
    ) -> list[Output]:
        if self.state is State.CLOSED or request_id != self._pending_login:
            return []
        self._pending_login = None
        refresh = self.grant is not None
        if isinstance(outcome, LoginFailed):
            outs: list[Output] = [Send(frames.error_frame(request_id, -32001, outcome.detail))]
            if outcome.subject:
                kind = "refresh_failed" if refresh else "login_failed"
                outs.append(
                    Audit(outcome.subject, kind, {"reason": outcome.detail, **self._origin()})
                )
            return outs
        if refresh:
            return self._refresh(request_id, outcome, now)
        self.grant = outcome
        self.state = State.AUTHENTICATED
        self.notice_sent = False
        outs = [
            Send(
                frames.result_frame(
                    request_id,
                    {"message": "logged in", "sessid": self.sessid},
                    voice_sdk_id=self.voice_sdk_id,
                )
            ),
            Send(
                frames.request_frame(
                    self._next_id(),
                    "telnyx_rtc.clientReady",
                    {"reattached_sessions": []},
                    voice_sdk_id=self.voice_sdk_id,
                )
            ),
        ]
        if not outcome.anonymous:
            outs.append(Register(outcome, self.user_agent))
        if outcome.credential_id:
            outs.append(
                Audit(
                    outcome.credential_id,
                    "login_ok",
                    {"method": outcome.method, "jti": outcome.jti, **self._origin()},
                )
            )
        outs += self._due_notice(now)
        return outs

    def _refresh(self, request_id: frames.Id, grant: Grant, now: float) -> list[Output]:
        current = self.grant
        assert current is not None
        if grant.principal != current.principal:
            outs: list[Output] = [
                Send(
                    frames.error_frame(
                        request_id,
                        -32001,
                        "Login refused: this session belongs to another identity",
                    )
                )
            ]
            if current.credential_id:
                outs.append(
                    Audit(
                        current.credential_id,
                        "refresh_refused",
                        {"reason": "different identity", **self._origin()},
                    )
                )
            return outs
        self.grant = grant
        self.notice_sent = False
        outs = [
            Send(
                frames.result_frame(
                    request_id,
                    {"message": "logged in", "sessid": self.sessid},
                    voice_sdk_id=self.voice_sdk_id,
                )
            )
        ]
        if grant.credential_id:
            outs.append(
                Audit(
                    grant.credential_id,
                    "refreshed",
                    {"jti": grant.jti, "exp": grant.expires_at, **self._origin()},
                )
            )
        return outs + self._due_notice(now)

    def on_timer(self, now: float) -> list[Output]:
        if self.state is State.CLOSED:
            return []
        if self.grant is None:
            if (
                now >= self._connected_at + self.config.handshake_timeout
                and self._pending_login is None
            ):
                self.state = State.CLOSED
                return [Close(CloseCode.LOGIN_TIMEOUT, "no login before the handshake timeout")]
            return []
        exp = self.grant.expires_at
        if exp is not None and now >= exp:
            outs = self._end("voxgate.expired", "token expired", CloseCode.EXPIRED)
            if self.grant.credential_id:
                outs.insert(0, Audit(self.grant.credential_id, "expired", {"sessid": self.sessid}))
            return outs
        return self._due_notice(now)

    def revoke(self, reason: str, now: float) -> list[Output]:
        if self.state is State.CLOSED:
            return []
        return self._end("voxgate.revoked", reason, CloseCode.REVOKED)

    def displaced(self, by: dict[str, Any], now: float) -> list[Output]:
        """Our registration moved to a newer session; we stay connected but stop ringing."""
        if self.state is State.CLOSED or self.grant is None:
            return []
        outs: list[Output] = [
            Send(self._notice("voxgate.displaced", {"by": by, "server_time": now}))
        ]
        if self.grant.credential_id:
            outs.append(Audit(self.grant.credential_id, "displaced", {"by": by, **self._origin()}))
        return outs

    def next_deadline(self) -> float | None:
        if self.state is State.CLOSED:
            return None
        if self.grant is None:
            return self._connected_at + self.config.handshake_timeout
        exp = self.grant.expires_at
        if exp is None:
            return None
        notice_at = exp - self.config.expiry_notice
        return exp if self.notice_sent else min(exp, notice_at)

    def closed(self) -> None:
        self.state = State.CLOSED

    # -- requests --------------------------------------------------------------------------
    def _request(self, req: Request, now: float) -> list[Output]:
        method = req.method
        if method in ("login", "anonymous_login"):
            return self._login(req, method)
        if method == "telnyx_rtc.ping":
            return self._answer(req, {"message": "PONG", "sessid": self.sessid})
        if self.grant is None:
            if req.id is None:
                return []
            return [Send(frames.error_frame(req.id, -32000, "Authentication Required"))]
        if method == "telnyx_rtc.gatewayState":
            self.state = State.READY
            return self._answer(req, {"params": {"state": "REGED"}, "sessid": self.sessid})
        if method is None:
            return self._answer(req, {})  # debug_report_* and other method-less requests
        if req.id is None:
            return []
        return [
            Send(
                frames.error_frame(
                    req.id, frames.METHOD_NOT_FOUND, f"Method not found: {method[:64]}"
                )
            )
        ]

    def _login(self, req: Request, method: str) -> list[Output]:
        if req.id is None:
            return []
        if self._pending_login is not None:
            return [Send(frames.error_frame(req.id, -32001, "Another login is in progress"))]
        ua = req.params.get("User-Agent")
        if isinstance(ua, dict):
            ua = ua.get("data")
        if isinstance(ua, str) and not self.user_agent:
            self.user_agent = ua[:256]
        self._pending_login = req.id
        return [Authenticate(req.id, method, req.params, refresh=self.grant is not None)]

    def _answer(self, req: Request, result: dict[str, Any]) -> list[Output]:
        return [] if req.id is None else [Send(frames.result_frame(req.id, result))]

    # -- helpers ---------------------------------------------------------------------------
    def _due_notice(self, now: float) -> list[Output]:
        exp = self.expires_at
        if exp is None or self.notice_sent or now < exp - self.config.expiry_notice:
            return []
        self.notice_sent = True
        return [
            Send(
                self._notice(
                    "voxgate.token_expiring",
                    {
                        "code": 34001,
                        "server_time": now,
                        "expires_at": exp,
                        "expires_in": max(0.0, exp - now),
                    },
                )
            )
        ]

    def _end(self, event: str, reason: str, code: int) -> list[Output]:
        self.state = State.CLOSED
        return [
            Send(self._notice(event, {"reason": reason})),
            Send(frames.request_frame(self._next_id(), "telnyx_rtc.punt", {"reason": reason})),
            Close(code, reason),
        ]

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
        return {
            "address": self.address,
            "port": self.port,
            "user_agent": self.user_agent,
            "sessid": self.sessid,
        }

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
