"""One signaling session as a state machine. No sockets, no asyncio, no clock of its own.

    session = Session(config, address="198.51.100.7", port=51000, connected_at=t0)
    outputs = session.receive(frame, now)        # -> [Send, Close, Authenticate, Register, ...]
    outputs = session.login_result(req_id, grant_or_error, now)
    deadline = session.next_deadline()          # when it wants on_timer(now)

Every input is classified and looked up in ``rtc/states.py``'s table; its answer (a next state
or a refusal) alone decides. A login needs the store, so the session asks (``Authenticate``)
and the adapter answers with ``login_result`` (or the old session's ``resume``). Call legs
live in ``rtc/calls.py``; liveness in ``rtc/liveness.py``; what we say in ``rtc/speaker.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voxgate.domain import ids
from voxgate.domain.errors import LoginFailed, MethodNotFound
from voxgate.domain.records import CallIds, Grant, Registration
from voxgate.rtc import frames
from voxgate.rtc.calls import CALL_METHODS, Calls
from voxgate.rtc.config import SessionConfig
from voxgate.rtc.frames import FrameError, Request, Response
from voxgate.rtc.legs import Leg
from voxgate.rtc.liveness import FrameBudget, Liveness
from voxgate.rtc.logins import parse_login, resumed_session, takes_over, user_agent
from voxgate.rtc.outputs import (
    Audit,
    Authenticate,
    Close,
    CloseCode,
    Offer,
    Output,
    Register,
    Send,
    Unregister,
    refuse,
    reply,
)
from voxgate.rtc.speaker import Speaker
from voxgate.rtc.states import FRAME_INPUTS, Input, Refusal, State, refused, step

__all__ = ["LoginOutcome", "Session", "SessionConfig"]

MAX_HELD = 64  # frames kept for a detached client; a call's answer and bye fit many times
LoginOutcome = Grant | LoginFailed


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
    takeover: bool = False  # this socket's login takes a session over from another tab
    notice_sent: bool = False  # the expiry notice for the current grant went out
    grace_until: float | None = None  # set while DRAINING
    detached_until: float | None = None  # set while DETACHED
    held: list[dict[str, Any]] = field(default_factory=list)  # frames kept while DETACHED
    _pending: frames.Id | None = None  # the login request being verified
    say: Speaker = field(init=False)
    calls: Calls = field(init=False)
    liveness: Liveness = field(init=False)
    budget: FrameBudget = field(init=False)

    def __post_init__(self) -> None:
        cfg, t0 = self.config, self.connected_at
        self.say = Speaker(self.sessid, f"VSDK-{cfg.node_id}-{self.sessid}")
        self.calls = Calls(self.say)
        self.liveness = Liveness(cfg.ping_interval, cfg.idle_timeout, t0)
        self.budget = FrameBudget(cfg.max_frames_per_second, cfg.frame_burst, cfg.frame_burst, t0)

    @classmethod
    def adopted(
        cls, config: SessionConfig, sessid: str, grant: Grant, legs: list[Leg], now: float
    ) -> Session:
        """A session another node held, whose client reconnected here: detached until it
        resumes (the node that held it is gone, or has let it go)."""
        session = cls(config, "", 0, now, sessid=sessid, grant=grant, state=State.DETACHED)
        session.detached_until = now + config.reattach_window
        session.calls.legs = {leg.call_id: leg for leg in legs}
        return session

    @property
    def voice_sdk_id(self) -> str:
        return self.say.voice_sdk_id

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
        self.liveness.heard(now)
        if not self.budget.take(now):
            flooded = self._step(Input.FLOOD) is State.CLOSED
            return [Close(CloseCode.POLICY, "too many frames")] if flooded else []
        frame = frames.parse_frame(data)
        if isinstance(frame, FrameError):
            return [Send(frames.error_frame(frame.id, frame.error))]
        if isinstance(frame, Response):
            return []  # acks of our requests; nothing waits on them
        if frame.method in ("login", "anonymous_login"):
            return self._login(frame, now)
        return self._request(frame, now)

    def _request(self, req: Request, now: float) -> list[Output]:
        method = req.method
        event = FRAME_INPUTS.get(method or "", Input.REQUEST)
        outcome = self._step(event)
        if outcome is Refusal.NO_NEW_CALLS and self.grant is not None:
            return self.calls.invite(req, self.grant, now, refused=True)
        if isinstance(outcome, Refusal):
            return refused(req, outcome)
        if event is Input.PING:
            return reply(req, {"message": "PONG", "sessid": self.sessid})
        if event is Input.GATEWAY_STATE:
            return reply(req, {"params": self.say.reged(self.config), "sessid": self.sessid})
        assert self.grant is not None  # the table lets only logged-in sessions past
        if event is Input.INVITE:
            return self.calls.invite(req, self.grant, now, refused=False)
        if method is None:
            return reply(req, {})  # debug_report_* and other method-less requests
        if method in CALL_METHODS:
            return self._settle(self.calls.request(req, now))
        return refuse(req, MethodNotFound(f"Method not found: {method[:64]}"))

    # -- logins ----------------------------------------------------------------------------
    def _login(self, req: Request, now: float) -> list[Output]:
        if req.id is None:
            return []
        outcome = self._step(Input.LOGIN_AGAIN if self._pending is not None else Input.LOGIN)
        if isinstance(outcome, Refusal):
            return refused(req, outcome)
        self.user_agent = self.user_agent or user_agent(req.params)
        self.takeover = takes_over(req.params)
        login = parse_login(str(req.method), req.params)
        self._pending = req.id
        if isinstance(login, LoginFailed):  # bad shape: refused without asking the store
            return self.login_result(req.id, login, now)
        refresh = self.grant is not None
        resume = None if refresh else resumed_session(req.params)
        return [Authenticate(req.id, login, refresh=refresh, resume=resume)]

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
                details = {"reason": outcome.detail, **self._origin()}
                outs.append(Audit(outcome.subject, kind, details))
            if outcome.final and current is None:
                reason = outcome.detail or "login refused"
                outs += [Send(self.say.punt(reason)), Close(CloseCode.REGISTERED_ELSEWHERE, reason)]
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
        outs = [Send(self.say.logged_in(request_id)), *self._ice(outcome)]
        if current is not None:
            if outcome.credential_id:
                details = {"jti": outcome.jti, "exp": outcome.expires_at, **self._origin()}
                outs.append(Audit(outcome.credential_id, "refreshed", details))
            return outs + self._due_notice(now)
        self.liveness.start(now)
        return [*outs, *self._registered(outcome, [], "login_ok", now)]

    def resume(
        self, request_id: frames.Id, grant: Grant, now: float, *, socket: Session
    ) -> list[Output]:
        """A client came back on a new socket (``socket``: the session that socket opened)
        with our sessid and the same identity: carry on there, with every live call."""
        if self._step(Input.REATTACH) is not State.READY:
            return []
        self.grant, self.notice_sent, self.detached_until = grant, False, None
        self.address, self.port = socket.address, socket.port
        self.user_agent = socket.user_agent or self.user_agent
        self.liveness.start(now)
        held, self.held = self.held, []
        outs: list[Output] = [Send(self.say.logged_in(request_id)), *self._ice(grant)]
        outs += map(Send, held)
        outs += self._registered(grant, self.calls.live_ids, "reattached", now)
        return outs + (self.calls.ringing_again() if socket.takeover else [])

    def can_resume(self, grant: Grant) -> bool:
        """Could a new socket logged in with ``grant`` take this session over?"""
        current = self.grant
        takes = self.state in (State.READY, State.DETACHED) and self.config.reattach_window > 0
        return takes and current is not None and current.principal == grant.principal

    def _registered(
        self, grant: Grant, reattached: list[str], audit: str, now: float
    ) -> list[Output]:
        """clientReady (listing the calls that survived), the registration, the audit."""
        outs: list[Output] = [Send(self.say.client_ready(reattached))]
        if not grant.anonymous:
            outs.append(Register(grant, self.user_agent))
        if grant.credential_id:
            details = {"method": grant.method, "jti": grant.jti, **self._origin()}
            if audit == "reattached":
                details["calls"] = reattached
            outs.append(Audit(grant.credential_id, audit, details))
        return outs + self._due_notice(now)

    # -- time ------------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        if self.state is State.CONNECTED:
            return self.connected_at + self.config.handshake_timeout
        if self.state in (State.LOGGING_IN, State.CLOSED) or self.grant is None:
            return None
        times = [self.calls.next_deadline()]
        if self.state is State.DETACHED:
            times.append(self.detached_until)
        elif self.state is State.DRAINING:
            times += [self.grace_until, *self.liveness.deadlines()]
        else:
            exp = self.grant.expires_at
            if exp is not None:
                times.append(exp if self.notice_sent else exp - self.config.expiry_notice)
            times += self.liveness.deadlines()
        return min((t for t in times if t is not None), default=None)

    def on_timer(self, now: float) -> list[Output]:
        if self.state in (State.CONNECTED, State.LOGGING_IN):
            if now < self.connected_at + self.config.handshake_timeout:
                return []
            if self._step(Input.HANDSHAKE_TIMEOUT) is State.CLOSED:
                return [Close(CloseCode.LOGIN_TIMEOUT, "no login before the handshake timeout")]
            return []
        if self.state is State.CLOSED or self.grant is None:
            return []
        outs = self._settle(self.calls.timeouts(now))
        if self.state is State.DETACHED:
            expired = self.detached_until is not None and now >= self.detached_until
            return outs + self.give_up() if expired else outs
        if self.liveness.silent(now):
            reason = "no traffic within the idle timeout"
            return [*outs, *self.lost(now, clean=False), Close(CloseCode.NO_TRAFFIC, reason)]
        if self.liveness.ping_due(now) and not isinstance(self._step(Input.PING_DUE), Refusal):
            outs.append(Send(self.say.ping()))
        if self.state is State.DRAINING and self.grace_until is not None:
            if now < self.grace_until:
                return outs
            self._step(Input.GRACE_OVER)
            return outs + self._expired_end()
        exp = self.grant.expires_at
        if exp is not None and now >= exp:
            return outs + self.expire(now, exp)
        return outs + self._due_notice(now)

    def expire(self, now: float, at: float | None = None) -> list[Output]:
        """Time ran out (token or credential): end now, or after the grace if a call is up."""
        # a detached session has no client to finish a call with
        detached = self.state is State.DETACHED
        in_call = self.config.expiry_grace > 0 and self.calls.live and not detached
        outcome = self._step(Input.EXPIRED_IN_CALL if in_call else Input.EXPIRED)
        if outcome is State.DRAINING:
            self.grace_until = (at if at is not None else now) + self.config.expiry_grace
            return []
        return self._expired_end() if outcome is State.CLOSED else []

    # -- what the adapter tells us ---------------------------------------------------------
    def revoke(self, reason: str, now: float) -> list[Output]:
        if self._step(Input.REVOKED) is not State.CLOSED:
            return []
        return self._end("voxgate.revoked", reason, CloseCode.REVOKED)

    def displaced(self, by: Registration, now: float) -> list[Output]:
        """Our registration moved to a newer session (``by``); we stay connected, stop ringing."""
        if isinstance(self._step(Input.DISPLACED), Refusal) or self.grant is None:
            return []
        taker = self.say.taker(by)
        body = {"by": taker, "server_time": now}
        outs: list[Output] = [Send(self.say.notice("voxgate.displaced", body))]
        if self.grant.credential_id:
            details = {"by": taker, **self._origin()}
            outs.append(Audit(self.grant.credential_id, "displaced", details))
        return outs

    def lost(self, now: float, *, clean: bool, takeover: bool = False) -> list[Output]:
        """The socket is gone (or frozen). A client that closed it (``clean``) ends its calls (a
        bye to the other side of each). A network loss detaches a session with a call for
        ``reattach_window`` s; one without has nothing to reattach and ends (a login-and-drop
        loop must hold no memory), unless a newer socket takes it over (``takeover``)."""
        window = self.config.reattach_window
        keep = not clean and window > 0 and (takeover or self.calls.live)
        outcome = self._step(Input.SOCKET_LOST if keep else Input.SOCKET_CLOSED)
        if outcome is State.DETACHED:
            self.detached_until = now + window
            self.liveness.stop()
            outs: list[Output] = [Unregister()]
            if self.grant is not None and self.grant.credential_id:
                details = {"calls": self.calls.live_ids, "window": window, **self._origin()}
                outs.append(Audit(self.grant.credential_id, "detached", details))
            return outs
        if outcome is not State.CLOSED:
            return []
        outs = self.calls.hangup_all("NORMAL_CLEARING", tell_client=False)
        if clean or self.grant is None:
            return outs
        cred = self.grant.credential_id  # unregistered now: a frozen socket may linger a while
        return [*outs, Unregister(), *([Audit(cred, "dropped", self._origin())] if cred else [])]

    def incoming_call(
        self, offer: Offer, now: float, call_id: str | None = None, ids: CallIds | None = None
    ) -> tuple[str | None, list[Output]]:
        """Offer a call to this client. Returns (callID, outputs); callID None: not now."""
        if isinstance(self._step(Input.OFFERED), Refusal) or self.grant is None:
            return None, []
        return self.calls.offered(offer, self.grant, call_id, ids)

    @property
    def busy(self) -> bool:
        """Would an offered call be refused? (One call at a time, none while ending.)"""
        return isinstance(step(self.state, Input.OFFERED), Refusal) or self.calls.live

    def on_call(self, event: Callable[[Calls], list[Output]]) -> list[Output]:
        """The adapter tells our call legs something (routed, failed, the other leg's
        answer or bye, an assistant's reply): ``event(self.calls)``, then settled here."""
        if self.state is State.CLOSED:
            return []
        return self._settle(event(self.calls))

    # -- helpers ---------------------------------------------------------------------------
    def _settle(self, outs: list[Output]) -> list[Output]:
        """After a call changed: a draining session ends with its last call, and a detached
        one keeps what its client should hear until it comes back (bounded)."""
        drained = self.state is State.DRAINING and not self.calls.live
        if drained and self._step(Input.CALLS_ENDED) is State.CLOSED:
            return outs + self._expired_end()
        if self.state is not State.DETACHED:
            return outs
        self.held += [o.frame for o in outs if isinstance(o, Send)][: MAX_HELD - len(self.held)]
        return [o for o in outs if not isinstance(o, Send)]

    def _ice(self, grant: Grant) -> list[Output]:  # before any call can need them
        return [] if grant.ice is None else [Send(self.say.ice_servers(grant.ice))]

    def give_up(self) -> list[Output]:
        """Nobody came back in time (or its credential keeps too many detached): calls end."""
        if self._step(Input.DETACH_EXPIRED) is not State.CLOSED:
            return []
        outs = self.calls.hangup_all("RECOVERY_ON_TIMER_EXPIRE", tell_client=False)
        if self.grant is not None and self.grant.credential_id:
            outs.insert(0, Audit(self.grant.credential_id, "detach_expired", self._origin()))
        return outs

    def _expired_end(self) -> list[Output]:
        outs = self._end("voxgate.expired", "token expired", CloseCode.EXPIRED)
        if self.grant is not None and self.grant.credential_id:
            outs.insert(0, Audit(self.grant.credential_id, "expired", {"sessid": self.sessid}))
        return outs

    def _end(self, event: str, reason: str, code: CloseCode) -> list[Output]:
        outs = self.calls.hangup_all("NORMAL_CLEARING", tell_client=True)
        self.state = State.CLOSED
        return [*outs, *map(Send, self.say.ended(event, reason)), Close(code, reason)]

    def _due_notice(self, now: float) -> list[Output]:
        exp = self.grant.expires_at if self.grant else None
        if exp is None or self.notice_sent or now < exp - self.config.expiry_notice:
            return []
        self.notice_sent = True
        return [Send(self.say.expiring(now, exp))]

    def _origin(self) -> dict[str, Any]:  # where this session comes from, for the audit trail
        return {
            "address": self.address,
            "port": self.port,
            "user_agent": self.user_agent,
            "sessid": self.sessid,
        }
