"""A session's life as one table: every (state, input) pair has a next state or a refusal.

The session classifies what happened (a frame, a timer, an adapter call) as an ``Input``, looks
the pair up here, and acts on the answer; nothing else decides whether something is allowed.
The call legs inside a session have their own, smaller table (``rtc/legs.py``).
"""

from __future__ import annotations

import enum

__all__ = ["TABLE", "Input", "Refusal", "State", "step"]


class State(enum.Enum):
    CONNECTED = "connected"  # socket open, nobody logged in
    LOGGING_IN = "logging_in"  # the first login is being verified
    READY = "ready"  # logged in: registered, may call and be called
    DRAINING = "draining"  # time ran out, a call in progress may finish (expiry grace)
    CLOSED = "closed"


class Input(enum.Enum):
    LOGIN = "login"  # login / anonymous_login, none being verified
    LOGIN_AGAIN = "login_again"  # a login while another is being verified
    LOGIN_OK = "login_ok"  # the adapter verified a login of this session's identity
    LOGIN_OTHER_IDENTITY = "login_other_identity"  # verified, but for someone else
    LOGIN_FAILED = "login_failed"
    PING = "ping"
    GATEWAY_STATE = "gateway_state"
    INVITE = "invite"  # the client dials
    REQUEST = "request"  # any other request: call control, unknown or method-less
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    EXPIRED = "expired"  # token or credential time ran out, no call to finish
    EXPIRED_IN_CALL = "expired_in_call"  # ... with a call up and a grace configured
    CALLS_ENDED = "calls_ended"  # the last call ended
    GRACE_OVER = "grace_over"
    REVOKED = "revoked"
    DISPLACED = "displaced"  # our registration moved to a newer session
    OFFERED = "offered"  # someone calls this session
    FLOOD = "flood"  # frames beyond the rate limit
    SOCKET_LOST = "socket_lost"


class Refusal(enum.Enum):
    """What a refused pair does. Each is answered the same way wherever it occurs."""

    IGNORE = "ignore"  # nothing to say (a late timer, an event for a session that is done)
    NOT_AUTHENTICATED = "not_authenticated"  # JSON-RPC -32000: the SDK logs in again
    LOGIN_IN_PROGRESS = "login_in_progress"  # -32001 to the second login
    OTHER_IDENTITY = "other_identity"  # -32001: a refresh must keep the identity
    NO_NEW_CALLS = "no_new_calls"  # the invite is ended with CALL_REJECTED
    NOT_REACHABLE = "not_reachable"  # an offered call is refused (the router says absent)


S, E, R = State, Input, Refusal
Outcome = State | Refusal

_ENDS: dict[Input, Outcome] = {E.REVOKED: S.CLOSED, E.FLOOD: S.CLOSED, E.SOCKET_LOST: S.CLOSED}
_LOGGED_OUT: dict[Input, Outcome] = {
    E.LOGIN_AGAIN: R.LOGIN_IN_PROGRESS,
    E.LOGIN_OK: R.IGNORE,
    E.LOGIN_OTHER_IDENTITY: R.IGNORE,
    E.LOGIN_FAILED: R.IGNORE,
    E.GATEWAY_STATE: R.NOT_AUTHENTICATED,
    E.INVITE: R.NOT_AUTHENTICATED,
    E.REQUEST: R.NOT_AUTHENTICATED,
    E.EXPIRED: R.IGNORE,
    E.EXPIRED_IN_CALL: R.IGNORE,
    E.CALLS_ENDED: R.IGNORE,
    E.GRACE_OVER: R.IGNORE,
    E.DISPLACED: R.IGNORE,
    E.OFFERED: R.NOT_REACHABLE,
    **_ENDS,
}
_LOGGED_IN: dict[Input, Outcome] = {
    E.LOGIN_AGAIN: R.LOGIN_IN_PROGRESS,
    E.LOGIN_OTHER_IDENTITY: R.OTHER_IDENTITY,
    E.HANDSHAKE_TIMEOUT: R.IGNORE,
    **_ENDS,
}

TABLE: dict[tuple[State, Input], Outcome] = {
    **{(S.CONNECTED, i): o for i, o in _LOGGED_OUT.items()},
    (S.CONNECTED, E.LOGIN): S.LOGGING_IN,
    (S.CONNECTED, E.PING): S.CONNECTED,
    (S.CONNECTED, E.HANDSHAKE_TIMEOUT): S.CLOSED,
    **{(S.LOGGING_IN, i): o for i, o in _LOGGED_OUT.items()},
    (S.LOGGING_IN, E.LOGIN): R.LOGIN_IN_PROGRESS,
    (S.LOGGING_IN, E.LOGIN_OK): S.READY,
    (S.LOGGING_IN, E.LOGIN_FAILED): S.CONNECTED,
    (S.LOGGING_IN, E.PING): S.LOGGING_IN,
    (S.LOGGING_IN, E.HANDSHAKE_TIMEOUT): R.IGNORE,  # the store is slow, not the client
    **{(S.READY, i): o for i, o in _LOGGED_IN.items()},
    (S.READY, E.LOGIN): S.READY,  # a refresh: verified while the session goes on
    (S.READY, E.LOGIN_OK): S.READY,
    (S.READY, E.LOGIN_FAILED): S.READY,  # the old token still holds
    (S.READY, E.PING): S.READY,
    (S.READY, E.GATEWAY_STATE): S.READY,
    (S.READY, E.INVITE): S.READY,
    (S.READY, E.REQUEST): S.READY,
    (S.READY, E.EXPIRED): S.CLOSED,
    (S.READY, E.EXPIRED_IN_CALL): S.DRAINING,
    (S.READY, E.CALLS_ENDED): S.READY,
    (S.READY, E.GRACE_OVER): R.IGNORE,
    (S.READY, E.DISPLACED): S.READY,
    (S.READY, E.OFFERED): S.READY,
    **{(S.DRAINING, i): o for i, o in _LOGGED_IN.items()},
    (S.DRAINING, E.LOGIN): S.DRAINING,
    (S.DRAINING, E.LOGIN_OK): S.READY,  # a fresh token rescues the session
    (S.DRAINING, E.LOGIN_FAILED): S.DRAINING,
    (S.DRAINING, E.PING): S.DRAINING,
    (S.DRAINING, E.GATEWAY_STATE): S.DRAINING,
    (S.DRAINING, E.INVITE): R.NO_NEW_CALLS,
    (S.DRAINING, E.REQUEST): S.DRAINING,
    (S.DRAINING, E.EXPIRED): R.IGNORE,  # already counting down the grace
    (S.DRAINING, E.EXPIRED_IN_CALL): R.IGNORE,
    (S.DRAINING, E.CALLS_ENDED): S.CLOSED,
    (S.DRAINING, E.GRACE_OVER): S.CLOSED,
    (S.DRAINING, E.DISPLACED): S.DRAINING,
    (S.DRAINING, E.OFFERED): R.NOT_REACHABLE,
    **{(S.CLOSED, i): R.IGNORE for i in Input},
}


def step(state: State, event: Input) -> Outcome:
    return TABLE[(state, event)]
