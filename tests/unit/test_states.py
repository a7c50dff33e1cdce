"""The session's state table, driven pair by pair through the session's public inputs.

For every (state, input): put a fresh session in that state, produce that input the way the
world would (a frame, a timer, an adapter call), and check the table's answer happened: the
new state, or the refusal's own reply. A pair no input can produce is listed in UNREACHABLE
with the reason, and must be a refusal, so that reaching it by mistake does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.test_session import T0, config, grant, sends, taker
from voxgate.domain.errors import LoginFailed
from voxgate.rtc import Session
from voxgate.rtc.outputs import Close, Offer, Output
from voxgate.rtc.states import TABLE, Input, Refusal, State

S, E, R = State, Input, Refusal
EXP = T0 + 1000


def frame(method: str, params: dict[str, Any] | None = None, req_id: str = "q") -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params or {}}


def login_frame(req_id: str = "L") -> dict[str, Any]:
    return frame("login", {"login_token": "t", "User-Agent": {"data": "UA/1"}}, req_id)


def invite(s: Session, call_id: str, now: float = T0) -> list[Output]:
    params = {"sdp": "v=0", "dialogParams": {"callID": call_id, "destination_number": "bob"}}
    return s.receive(frame("telnyx_rtc.invite", params, "inv-" + call_id), now)


# -- sessions in each state ---------------------------------------------------------------
LIVE = {"ping_interval": 30.0, "idle_timeout": 10_000.0, "reattach_window": 60.0}


def in_state(state: State) -> Session:
    s = Session(config(expiry_grace=60, **LIVE), "198.51.100.1", 1, T0)
    if state is S.CONNECTED:
        return s
    s.receive(login_frame("first"), T0)
    if state is S.LOGGING_IN:
        return s
    s.login_result("first", grant(exp=EXP), T0)
    if state is S.READY:
        return s
    if state is S.DETACHED:  # only a session with a call is kept for its client
        _call_up(s)
        s.lost(T0 + 2, clean=False)
        return s
    if state is S.DRAINING:
        invite(s, "up")
        s.on_call(lambda c: c.routed("up", 30, T0))
        s.on_call(lambda c: c.relayed("up", "answer", {"sdp": "a"}))
        s.on_timer(EXP)
        assert s.state is S.DRAINING
        return s
    s.revoke("gone", T0 + 1)
    return s


# -- each input, produced as the world produces it ----------------------------------------
def _pending(s: Session) -> None:
    if s._pending is None:
        s.receive(login_frame("setup"), T0 + 2)


def _login_result(outcome: Any) -> Callable[[Session], list[Output]]:
    def drive(s: Session) -> list[Output]:
        _pending(s)
        return s.login_result(s._pending or "none", outcome, T0 + 3)

    return drive


def _call_up(s: Session) -> None:
    if s.grant is not None and not s.calls.live:
        invite(s, "c2")
        s.on_call(lambda c: c.routed("c2", 30, T0))


def _expire_in_call(s: Session) -> list[Output]:
    _call_up(s)
    return s.expire(EXP)


def _socket_lost(s: Session) -> list[Output]:
    """A network drop of a session with a call (one without has nothing to reattach: for
    the session that is SOCKET_CLOSED, see test_session)."""
    _call_up(s)
    return s.lost(T0 + 2, clean=False)


def _flood(s: Session) -> list[Output]:
    outs: list[Output] = []
    for _ in range(s.config.frame_burst + 1):
        outs = s.receive(frame("telnyx_rtc.ping"), T0 + 4)
    return outs


def _offered(s: Session) -> list[Output]:
    call_id, outs = s.incoming_call(Offer("v=0", caller_number="alice"), T0 + 5)
    assert (call_id is None) == (outs == [])
    return outs


def _calls_ended(s: Session) -> list[Output]:
    return s.on_call(
        lambda c: c.relayed("up", "bye", {"cause": "NORMAL_CLEARING", "causeCode": 16})
    )


DRIVERS: dict[Input, Callable[[Session], list[Output]]] = {
    E.LOGIN: lambda s: s.receive(login_frame(), T0 + 2),
    E.LOGIN_AGAIN: lambda s: (_pending(s), s.receive(login_frame("again"), T0 + 2))[1],
    E.LOGIN_OK: _login_result(grant(exp=EXP + 500, jti="j2")),
    E.LOGIN_OTHER_IDENTITY: _login_result(grant("cred:someone-else", exp=EXP + 500)),
    E.LOGIN_FAILED: _login_result(LoginFailed("JWT token authentication failed")),
    E.PING: lambda s: s.receive(frame("telnyx_rtc.ping"), T0 + 2),
    E.GATEWAY_STATE: lambda s: s.receive(frame("telnyx_rtc.gatewayState"), T0 + 2),
    E.INVITE: lambda s: invite(s, "c9", T0 + 2),
    E.REQUEST: lambda s: s.receive(frame("telnyx_rtc.info", {"dtmf": "1"}), T0 + 2),
    E.HANDSHAKE_TIMEOUT: lambda s: s.on_timer(T0 + 10),
    E.EXPIRED: lambda s: s.expire(EXP),
    E.EXPIRED_IN_CALL: _expire_in_call,
    E.CALLS_ENDED: _calls_ended,
    E.GRACE_OVER: lambda s: s.on_timer(EXP + 60),
    E.REVOKED: lambda s: s.revoke("credential deactivated", T0 + 2),
    E.DISPLACED: lambda s: s.displaced(taker("Other"), T0),
    E.OFFERED: _offered,
    E.FLOOD: _flood,
    E.PING_DUE: lambda s: s.on_timer(s.liveness.next_ping or T0 + 30),
    E.SOCKET_LOST: _socket_lost,
    E.SOCKET_CLOSED: lambda s: s.lost(T0 + 2, clean=True),
    E.REATTACH: lambda s: s.resume(
        "R", grant(exp=EXP + 500, jti="j3"), T0 + 3, socket=Session(config(), "203.0.113.5", 2, T0)
    ),
    E.DETACH_EXPIRED: lambda s: s.on_timer(s.detached_until or T0 + 10_000),
}

# Pairs no input can produce, and why. Each must be a refusal in the table. (A CLOSED
# session drops frames, timers and login results before classifying them; its row is all
# IGNORE and is checked by effect below.)
_NO_SOCKET = "a detached session has no socket, so no login is pending"
_NO_CALL = "a session not logged in has no call to keep: its lost socket is SOCKET_CLOSED"
UNREACHABLE: dict[tuple[State, Input], str] = {
    (S.CONNECTED, E.SOCKET_LOST): _NO_CALL,
    (S.LOGGING_IN, E.SOCKET_LOST): _NO_CALL,
    (S.CONNECTED, E.LOGIN_AGAIN): "a login being verified means LOGGING_IN or logged in",
    (S.CONNECTED, E.LOGIN_OK): "a login result comes only for a pending login",
    (S.CONNECTED, E.LOGIN_OTHER_IDENTITY): "a login result comes only for a pending login",
    (S.CONNECTED, E.LOGIN_FAILED): "a login result comes only for a pending login",
    (S.CONNECTED, E.EXPIRED_IN_CALL): "no grant, no calls",
    (S.CONNECTED, E.CALLS_ENDED): "only a draining session listens for its last call",
    (S.CONNECTED, E.GRACE_OVER): "only a draining session has a grace",
    (S.LOGGING_IN, E.LOGIN): "a second login while the first is verified is LOGIN_AGAIN",
    (S.LOGGING_IN, E.LOGIN_OTHER_IDENTITY): "there is no identity yet to differ from",
    (S.LOGGING_IN, E.EXPIRED_IN_CALL): "no grant, no calls",
    (S.LOGGING_IN, E.CALLS_ENDED): "only a draining session listens for its last call",
    (S.LOGGING_IN, E.GRACE_OVER): "only a draining session has a grace",
    (S.READY, E.HANDSHAKE_TIMEOUT): "the handshake timer is disarmed once logged in",
    (S.READY, E.CALLS_ENDED): "only a draining session listens for its last call",
    (S.READY, E.GRACE_OVER): "only a draining session has a grace",
    (S.DRAINING, E.HANDSHAKE_TIMEOUT): "the handshake timer is disarmed once logged in",
    (S.DRAINING, E.EXPIRED): "a draining session has a call up: that is EXPIRED_IN_CALL",
    (S.CONNECTED, E.PING_DUE): "no pings before a login (the handshake timer runs)",
    (S.LOGGING_IN, E.PING_DUE): "no pings before a login",
    (S.CONNECTED, E.DETACH_EXPIRED): "only a detached session has a window",
    (S.LOGGING_IN, E.DETACH_EXPIRED): "only a detached session has a window",
    (S.READY, E.DETACH_EXPIRED): "only a detached session has a window",
    (S.DRAINING, E.DETACH_EXPIRED): "only a detached session has a window",
    (S.DETACHED, E.LOGIN_AGAIN): _NO_SOCKET,
    (S.DETACHED, E.LOGIN_OK): _NO_SOCKET,
    (S.DETACHED, E.LOGIN_OTHER_IDENTITY): _NO_SOCKET,
    (S.DETACHED, E.LOGIN_FAILED): _NO_SOCKET,
    (S.DETACHED, E.HANDSHAKE_TIMEOUT): "the handshake timer is disarmed once logged in",
    (S.DETACHED, E.EXPIRED_IN_CALL): "a detached session has no client to finish a call with",
    (S.DETACHED, E.CALLS_ENDED): "only a draining session listens for its last call",
    (S.DETACHED, E.GRACE_OVER): "only a draining session has a grace",
    (S.DETACHED, E.PING_DUE): "a detached session has nobody to ping",
}


def _errors(outs: list[Output]) -> list[tuple[int, str]]:
    return [(f["error"]["code"], f["error"]["message"]) for f in sends(outs) if "error" in f]


def _results(outs: list[Output]) -> list[dict[str, Any]]:
    return [f["result"] for f in sends(outs) if "result" in f]


def _methods(outs: list[Output]) -> list[str]:
    return [f["method"] for f in sends(outs) if "method" in f]


def _closed_with(code: int) -> Callable[[list[Output]], bool]:
    return lambda outs: any(isinstance(o, Close) and o.code == code for o in outs)


# What each refusal looks like from outside.
REFUSED: dict[Refusal, Callable[[list[Output]], bool]] = {
    R.IGNORE: lambda outs: outs == [],
    R.NOT_REACHABLE: lambda outs: outs == [],
    R.NOT_DETACHED: lambda outs: outs == [],
    R.NOT_AUTHENTICATED: lambda outs: [c for c, _ in _errors(outs)] == [-32000],
    R.LOGIN_IN_PROGRESS: lambda outs: _errors(outs) == [(-32001, "Another login is in progress")],
    R.OTHER_IDENTITY: lambda outs: (
        len(_errors(outs)) == 1
        and _errors(outs)[0][0] == -32001
        and "another identity" in _errors(outs)[0][1]
    ),
    R.NO_NEW_CALLS: lambda outs: (
        "CALL_REJECTED"
        in [f["params"].get("cause") for f in sends(outs) if f.get("method") == "telnyx_rtc.bye"]
    ),
}

# What acting on each input looks like (besides the state the table names).
ACTED: dict[Input, Callable[[list[Output]], bool]] = {
    E.LOGIN: lambda outs: type(outs[-1]).__name__ == "Authenticate",
    E.LOGIN_OK: lambda outs: {"message": "logged in"}.items() <= _results(outs)[0].items(),
    E.LOGIN_FAILED: lambda outs: [c for c, _ in _errors(outs)] == [-32001],
    E.PING: lambda outs: _results(outs)[0]["message"] == "PONG",
    E.GATEWAY_STATE: lambda outs: _results(outs)[0]["params"]["state"] == "REGED",
    E.INVITE: lambda outs: (
        _results(outs)[0]["message"] == "CALL CREATED" and type(outs[-1]).__name__ == "RouteCall"
    ),
    E.REQUEST: lambda outs: _results(outs)[0]["message"] == "SENT",
    E.HANDSHAKE_TIMEOUT: _closed_with(4001),
    E.EXPIRED: _closed_with(4002),
    E.EXPIRED_IN_CALL: lambda outs: outs == [],  # the call goes on; the grace timer is set
    E.CALLS_ENDED: _closed_with(4002),
    E.GRACE_OVER: _closed_with(4002),
    E.REVOKED: _closed_with(4003),
    E.DISPLACED: lambda outs: "telnyx_rtc.event" in _methods(outs),
    E.OFFERED: lambda outs: _methods(outs) == ["telnyx_rtc.invite"],
    E.FLOOD: _closed_with(1008),
    E.PING_DUE: lambda outs: "telnyx_rtc.ping" in _methods(outs),
    E.SOCKET_LOST: lambda outs: sends(outs) == [],  # nobody to tell; the other legs get byes
    E.SOCKET_CLOSED: lambda outs: sends(outs) == [],
    E.REATTACH: lambda outs: (
        _results(outs)[0]["message"] == "logged in" and "telnyx_rtc.clientReady" in _methods(outs)
    ),
    E.DETACH_EXPIRED: lambda outs: any(getattr(o, "kind", "") == "detach_expired" for o in outs),
}


@pytest.mark.parametrize("event", list(Input), ids=lambda e: e.value)
@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_every_pair_does_what_the_table_says(
    state: State, event: Input, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = in_state(state)
    seen: list[tuple[State, Input]] = []
    real = Session._step

    def spy(self: Session, what: Input) -> State | Refusal:
        seen.append((self.state, what))
        return real(self, what)

    monkeypatch.setattr(Session, "_step", spy)
    outs = DRIVERS[event](session)
    expected = TABLE[(state, event)]
    if state is S.CLOSED:
        assert expected is R.IGNORE and outs == [] and session.state is S.CLOSED
        return
    if not seen or seen[-1] != (state, event):
        assert (state, event) in UNREACHABLE, f"({state}, {event}) was not produced: {seen}"
        assert isinstance(expected, Refusal), "an unreachable pair must be a refusal"
        return
    assert (state, event) not in UNREACHABLE, "listed as unreachable, but reached"
    if isinstance(expected, Refusal):
        assert session.state is state, "a refusal never changes the state"
        assert REFUSED[expected](outs), outs
    else:
        assert session.state is expected
        assert ACTED[event](outs), outs


def test_the_table_is_complete_and_unreachable_pairs_are_refusals() -> None:
    assert set(TABLE) == {(s, i) for s in State for i in Input}
    assert all(isinstance(TABLE[pair], Refusal) for pair in UNREACHABLE)
    assert set(DRIVERS) == set(Input)
