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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from voxgate.domain import ids
from voxgate.domain.errors import LoginFailed
from voxgate.domain.records import Grant
from voxgate.rtc import frames
from voxgate.rtc.calls import (
    CAUSES,
    CallState,
    InvalidTransition,
    Leg,
    Relay,
    RouteCall,
    new_call_id,
)
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


Output = Send | Close | Authenticate | Register | Audit | RouteCall | Relay
LoginOutcome = Grant | LoginFailed


@dataclass(frozen=True, slots=True)
class SessionConfig:
    expiry_notice: float = 3600.0
    handshake_timeout: float = 10.0
    max_frames_per_second: int = 50
    frame_burst: int = 200
    node_id: str = "node"
    expiry_grace: float = 0.0  # seconds a call in progress may outlive the token


@dataclass(slots=True)
class Session:
    config: SessionConfig
    address: str
    port: int
    now: float
    sessid: str = field(default_factory=ids.new_uuid)
    state: State = State.CONNECTED
    grant: Grant | None = None
    user_agent: str = ""
    notice_sent: bool = False
    _pending_login: frames.Id | None = None
    _server_id: int = 1000
    _tokens: float = 0.0
    _tokens_at: float = 0.0
    _connected_at: float = 0.0
    legs: dict[str, Leg] = field(default_factory=dict)
    grace_until: float | None = None

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
        outs = self._ring_timeouts(now)
        exp = self.grant.expires_at
        if exp is not None and now >= exp:
            return outs + self.expire(now, exp)
        return outs + self._due_notice(now)

    def expire(self, now: float, at: float | None = None) -> list[Output]:
        """Time ran out (token or credential): end now, or after the grace if a call is up."""
        if self.state is State.CLOSED or self.grant is None:
            return []
        if self.grace_until is None and self.config.expiry_grace > 0 and self._live_legs():
            self.grace_until = (at if at is not None else now) + self.config.expiry_grace
            return []
        if self.grace_until is not None and now < self.grace_until and self._live_legs():
            return []
        return self._expire()

    def _expire(self) -> list[Output]:
        assert self.grant is not None
        outs = self._end("voxgate.expired", "token expired", CloseCode.EXPIRED)
        if self.grant.credential_id:
            outs.insert(0, Audit(self.grant.credential_id, "expired", {"sessid": self.sessid}))
        return outs

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
        rings = [leg.ring_deadline for leg in self.legs.values() if leg.ring_deadline is not None]
        exp = self.grant.expires_at
        if exp is None:
            return min(rings, default=None)
        if self.grace_until is not None:
            return min([self.grace_until, *rings])
        notice_at = exp - self.config.expiry_notice
        return min([exp if self.notice_sent else min(exp, notice_at), *rings])

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
        handler = self._CALL_METHODS.get(method)
        if handler is not None:
            return handler(self, req, now)
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
        outs = self.hangup_all("NORMAL_CLEARING")
        self.state = State.CLOSED
        return [
            *outs,
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

    # -- calls: what the client asks -------------------------------------------------------
    def _invite(self, req: Request, now: float) -> list[Output]:
        dialog = req.params.get("dialogParams")
        dialog = dialog if isinstance(dialog, dict) else {}
        call_id, sdp = dialog.get("callID"), req.params.get("sdp")
        if (
            not isinstance(call_id, str)
            or not call_id
            or len(call_id) > 128
            or not isinstance(sdp, str)
        ):
            return self._error(
                req, frames.INVALID_PARAMS, "invite needs dialogParams.callID and sdp"
            )
        if call_id in self.legs:
            return self._error(req, frames.INVALID_PARAMS, "callID already in use")
        destination = dialog.get("destination_number")
        destination = destination if isinstance(destination, str) else ""
        leg = Leg(call_id, "outbound", peer=destination[:128])
        self.legs[call_id] = leg
        outs = self._answer(
            req, {"message": "CALL CREATED", "callID": call_id, "sessid": self.sessid}
        )
        assert self.grant is not None
        if self.grace_until is not None:
            return outs + self.call_failed(call_id, "CALL_REJECTED", now)
        if self.grant.anonymous:
            target = self.grant.assistant_id or ""
            if destination not in ("", target, f"assistant:{target}"):
                return outs + self.call_failed(call_id, "CALL_REJECTED", now)
            destination = f"assistant:{target}"
        headers = dialog.get("custom_headers")
        state = dialog.get("clientState")
        return [
            *outs,
            RouteCall(
                call_id,
                destination[:128],
                sdp,
                _text(dialog.get("caller_id_name")) or self.grant.sip_username,
                _text(dialog.get("caller_id_number")) or self.grant.sip_username,
                state if isinstance(state, str) else None,
                headers if isinstance(headers, list) else [],
            ),
        ]

    def _answer_call(self, req: Request, now: float) -> list[Output]:
        call_id, leg = self._leg(req)
        sdp = req.params.get("sdp")
        if leg is None or leg.direction != "inbound" or not isinstance(sdp, str):
            return self._error(
                req, frames.INVALID_PARAMS, "no ringing inbound call with that callID, or no sdp"
            )
        try:
            leg.apply("answered")
        except InvalidTransition as exc:
            return self._error(req, frames.INVALID_PARAMS, str(exc))
        leg.ring_deadline = None
        return [
            *self._answer(
                req, {"message": "CALL ANSWERED", "callID": call_id, "sessid": self.sessid}
            ),
            Relay(call_id, "answer", {"sdp": sdp}),
        ]

    def _bye(self, req: Request, now: float) -> list[Output]:
        call_id, leg = self._leg(req)
        cause = _text(req.params.get("cause")) or "NORMAL_CLEARING"
        code = req.params.get("causeCode")
        code = (
            code if isinstance(code, int) and not isinstance(code, bool) else CAUSES.get(cause, 16)
        )
        outs = self._answer(
            req, {"message": "CALL ENDED", "callID": call_id, "sessid": self.sessid}
        )
        if leg is None:
            return outs
        return outs + self._drop_leg(
            leg, [Relay(leg.call_id, "bye", {"cause": cause, "causeCode": code})]
        )

    def _modify(self, req: Request, now: float) -> list[Output]:
        call_id, leg = self._leg(req)
        action = req.params.get("action")
        if leg is None:
            return self._error(req, frames.INVALID_PARAMS, "no call with that callID")
        if action == "updateMedia":
            return self._error(
                req, frames.METHOD_NOT_FOUND, "ICE restart (updateMedia) is not supported"
            )
        if action == "toggleHold":
            action = "unhold" if leg.state is CallState.HELD else "hold"
        if action not in ("hold", "unhold"):
            return self._error(
                req, frames.INVALID_PARAMS, "action must be hold, unhold or toggleHold"
            )
        try:
            leg.apply(action)
        except InvalidTransition as exc:
            return self._error(req, frames.INVALID_PARAMS, str(exc))
        hold = "held" if leg.state is CallState.HELD else "active"
        return self._answer(
            req, {"callID": call_id, "action": action, "holdState": hold, "sessid": self.sessid}
        )

    def _info(self, req: Request, now: float) -> list[Output]:
        _call_id, leg = self._leg(req)
        outs = self._answer(req, {"message": "SENT", "sessid": self.sessid})
        dtmf, msg = req.params.get("dtmf"), req.params.get("msg")
        if leg is None:
            return outs
        if isinstance(dtmf, str) and 0 < len(dtmf) <= 32:
            outs.append(Relay(leg.call_id, "info", {"dtmf": dtmf}))
        elif isinstance(msg, dict):
            outs.append(Relay(leg.call_id, "info", {"msg": msg}))
        return outs

    def _candidate(self, req: Request, now: float) -> list[Output]:
        _call_id, leg = self._leg(req)
        outs = self._answer(req, {"sessid": self.sessid})
        if leg is None:
            return outs
        keep = ("candidate", "sdpMid", "sdpMLineIndex", "endOfCandidates")
        return [
            *outs,
            Relay(leg.call_id, "candidate", {k: req.params[k] for k in keep if k in req.params}),
        ]

    def _ai_conversation(self, req: Request, now: float) -> list[Output]:
        outs = self._answer(req, {"sessid": self.sessid})
        live = [leg for leg in self.legs.values() if leg.live and leg.peer.startswith("assistant:")]
        if not live:
            return outs
        return [*outs, Relay(live[0].call_id, "ai_conversation", req.params)]

    _CALL_METHODS: ClassVar[dict[str, Callable[[Session, Request, float], list[Output]]]] = {
        "telnyx_rtc.invite": _invite,
        "telnyx_rtc.answer": _answer_call,
        "telnyx_rtc.bye": _bye,
        "telnyx_rtc.modify": _modify,
        "telnyx_rtc.info": _info,
        "telnyx_rtc.candidate": _candidate,
        "telnyx_rtc.endOfCandidates": _candidate,
        "ai_conversation": _ai_conversation,
    }

    # -- calls: what the adapter tells us --------------------------------------------------
    def call_routed(
        self, call_id: str, ring_timeout: float, now: float, peer: str = ""
    ) -> list[Output]:
        leg = self.legs.get(call_id)
        if leg is None or leg.state is not CallState.NEW or self.state is State.CLOSED:
            return []
        leg.apply("routed")
        leg.ring_deadline = now + ring_timeout
        leg.peer = peer or leg.peer
        return [
            Send(frames.request_frame(self._next_id(), "telnyx_rtc.ringing", {"callID": call_id}))
        ]

    def call_failed(self, call_id: str, cause: str, now: float) -> list[Output]:
        leg = self.legs.get(call_id)
        if leg is None or self.state is State.CLOSED:
            return []
        return self._drop_leg(leg, [], bye=(cause, CAUSES.get(cause, 41)))

    @property
    def busy(self) -> bool:
        """One call at a time per session; an expiring or closed session takes none."""
        return self.state is State.CLOSED or bool(self._live_legs()) or self.grace_until is not None

    def incoming_call(
        self, params: dict[str, Any], now: float, call_id: str | None = None
    ) -> tuple[str | None, list[Output]]:
        """Offer a call to this client. Returns (callID, outputs); callID None means busy."""
        assert self.grant is not None
        if self.busy or (call_id is not None and call_id in self.legs):
            return None, []
        call_id = call_id or new_call_id()
        leg = Leg(call_id, "inbound", peer=_text(params.get("caller_id_number")) or "")
        leg.apply("offered")
        self.legs[call_id] = leg
        invite = {
            "callID": call_id,
            "sdp": params["sdp"],
            "caller_id_name": params.get("caller_id_name", ""),
            "caller_id_number": params.get("caller_id_number", ""),
            "callee_id_name": self.grant.sip_username,
            "callee_id_number": self.grant.sip_username,
        }
        for key in ("client_state", "dialogParams"):
            if params.get(key):
                invite[key] = params[key]
        return call_id, [Send(frames.request_frame(self._next_id(), "telnyx_rtc.invite", invite))]

    def relayed(self, call_id: str, kind: str, params: dict[str, Any], now: float) -> list[Output]:
        """The other leg said something; tell our client."""
        leg = self.legs.get(call_id)
        if leg is None or self.state is State.CLOSED:
            return []
        body = {"callID": call_id, **params}
        if kind == "answer":
            try:
                leg.apply("answered")
            except InvalidTransition:
                return []
            leg.ring_deadline = None
            return [Send(frames.request_frame(self._next_id(), "telnyx_rtc.answer", body))]
        if kind == "bye":
            cause = _text(params.get("cause")) or "NORMAL_CLEARING"
            code = params.get("causeCode")
            return self._drop_leg(
                leg, [], bye=(cause, code if isinstance(code, int) else CAUSES.get(cause, 16))
            )
        method = {
            "info": "telnyx_rtc.info",
            "candidate": "telnyx_rtc.candidate",
            "ai_conversation": "ai_conversation",
        }.get(kind)
        if method is None:
            return []
        return [Send(frames.request_frame(self._next_id(), method, body))]

    def hangup_all(self, cause: str) -> list[Output]:
        """Bye to our client and to every other leg: revocation, expiry, socket gone."""
        outs: list[Output] = []
        for leg in list(self.legs.values()):
            code = CAUSES.get(cause, 16)
            outs += self._drop_leg(
                leg,
                [Relay(leg.call_id, "bye", {"cause": cause, "causeCode": code})],
                bye=(cause, code),
            )
        return outs

    # -- calls: helpers --------------------------------------------------------------------
    def _drop_leg(
        self, leg: Leg, outs: list[Output], bye: tuple[str, int] | None = None
    ) -> list[Output]:
        leg.apply("hangup")
        self.legs.pop(leg.call_id, None)
        if bye is not None and self.state is not State.CLOSED:
            params = {"callID": leg.call_id, "cause": bye[0], "causeCode": bye[1]}
            outs = [Send(frames.request_frame(self._next_id(), "telnyx_rtc.bye", params)), *outs]
        if (
            self.grace_until is not None
            and not self._live_legs()
            and self.state is not State.CLOSED
        ):
            outs += self._expire()  # the call that kept an expired session alive just ended
        return outs

    def _ring_timeouts(self, now: float) -> list[Output]:
        outs: list[Output] = []
        for leg in list(self.legs.values()):
            if (
                leg.ring_deadline is not None
                and now >= leg.ring_deadline
                and leg.state is CallState.RINGING
            ):
                cause = ("NO_ANSWER", CAUSES["NO_ANSWER"])
                outs += self._drop_leg(
                    leg,
                    [Relay(leg.call_id, "bye", {"cause": cause[0], "causeCode": cause[1]})],
                    bye=cause,
                )
        return outs

    def _live_legs(self) -> list[Leg]:
        return [leg for leg in self.legs.values() if leg.live]

    def _leg(self, req: Request) -> tuple[str, Leg | None]:
        dialog = req.params.get("dialogParams")
        call_id = dialog.get("callID") if isinstance(dialog, dict) else None
        if not isinstance(call_id, str):
            call_id = req.params.get("callID")
        if not isinstance(call_id, str):
            return "", None
        return call_id, self.legs.get(call_id)

    def _error(self, req: Request, code: int, message: str) -> list[Output]:
        return [] if req.id is None else [Send(frames.error_frame(req.id, code, message))]


def _text(value: object) -> str:
    return value[:128] if isinstance(value, str) else ""
