"""A session's life as one table: every (state, input) pair has a next state or a refusal.

The session classifies what happened (a frame, a timer, an adapter call) as an ``Input``, looks
the pair up here, and acts on the answer; nothing else decides whether something is allowed.
The call legs inside a session have their own, smaller table (``rtc/legs.py``).
"""

from __future__ import annotations

import enum

from voxgate.domain.errors import LoginFailed, NotAuthenticated
from voxgate.rtc.frames import Request
from voxgate.rtc.outputs import Output, refuse

__all__ = ["FRAME_INPUTS", "TABLE", "Input", "Refusal", "State", "refused", "step"]


class State(enum.Enum):
    CONNECTED = "connected"  # socket open, nobody logged in
    LOGGING_IN = "logging_in"  # the first login is being verified
    READY = "ready"  # logged in: registered, may call and be called
    DRAINING = "draining"  # time ran out, a call in progress may finish (expiry grace)
    DETACHED = "detached"  # the socket dropped; calls wait for the client to reattach
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
    PING_DUE = "ping_due"  # time to show the client we are alive
    SOCKET_LOST = "socket_lost"  # the network dropped or froze the socket of a call
    # the client closed it, reattach is off, or it had no call (nothing to reattach)
    SOCKET_CLOSED = "socket_closed"
    REATTACH = "reattach"  # a new socket logged in as this session, with its sessid
    DETACH_EXPIRED = "detach_expired"  # nobody came back in time (or the cap let it go)


# The requests that are inputs of their own; any other is a REQUEST.
FRAME_INPUTS = {
    "telnyx_rtc.ping": Input.PING,
    "telnyx_rtc.gatewayState": Input.GATEWAY_STATE,
    "telnyx_rtc.invite": Input.INVITE,
}


class Refusal(enum.Enum):
    """What a refused pair does. Each is answered the same way wherever it occurs."""

    IGNORE = "ignore"  # nothing to say (a late timer, an event for a session that is done)
    NOT_AUTHENTICATED = "not_authenticated"  # JSON-RPC -32000: the SDK logs in again
    LOGIN_IN_PROGRESS = "login_in_progress"  # -32001 to the second login
    OTHER_IDENTITY = "other_identity"  # -32001: a refresh must keep the identity
    NO_NEW_CALLS = "no_new_calls"  # the invite is ended with CALL_REJECTED
    NOT_REACHABLE = "not_reachable"  # an offered call is refused (the router says absent)
    NOT_DETACHED = "not_detached"  # nothing to reattach: the new socket logs in afresh


S, E, R = State, Input, Refusal
Outcome = State | Refusal
_NO_AUTH, _IGNORE, _BUSY = R.NOT_AUTHENTICATED, R.IGNORE, R.LOGIN_IN_PROGRESS
_OTHER, _NO_CALLS, _ABSENT = R.OTHER_IDENTITY, R.NO_NEW_CALLS, R.NOT_REACHABLE
_NO_RESUME = R.NOT_DETACHED
_COLUMNS = (S.CONNECTED, S.LOGGING_IN, S.READY, S.DRAINING, S.DETACHED)

# One row per input, one column per live state. A CLOSED session ignores everything.
# - LOGIN when logged in is a refresh: verified while the session goes on; if it fails, the
#   old token still holds; if it succeeds, even a draining session is rescued.
# - HANDSHAKE_TIMEOUT while LOGGING_IN: the store is slow, not the client.
# - EXPIRED while DRAINING: the grace is already counting down.
# - DISPLACED: the session stays connected (it may still dial out) but no longer rings.
# - SOCKET_LOST is a network loss with a call to keep; without one it is SOCKET_CLOSED.
# - DETACHED has no socket: frames cannot arrive; what the other legs say is held for the
#   client and delivered when it reattaches.
# fmt: off
_GRID: dict[Input, tuple[Outcome, Outcome, Outcome, Outcome, Outcome]] = {
    #                        CONNECTED     LOGGING_IN    READY       DRAINING    DETACHED
    E.LOGIN:                (S.LOGGING_IN, _BUSY,        S.READY,    S.DRAINING, _IGNORE),
    E.LOGIN_AGAIN:          (_BUSY,        _BUSY,        _BUSY,      _BUSY,      _IGNORE),
    E.LOGIN_OK:             (_IGNORE,      S.READY,      S.READY,    S.READY,    _IGNORE),
    E.LOGIN_OTHER_IDENTITY: (_IGNORE,      _IGNORE,      _OTHER,     _OTHER,     _IGNORE),
    E.LOGIN_FAILED:         (_IGNORE,      S.CONNECTED,  S.READY,    S.DRAINING, _IGNORE),
    E.PING:                 (S.CONNECTED,  S.LOGGING_IN, S.READY,    S.DRAINING, _IGNORE),
    E.GATEWAY_STATE:        (_NO_AUTH,     _NO_AUTH,     S.READY,    S.DRAINING, _IGNORE),
    E.INVITE:               (_NO_AUTH,     _NO_AUTH,     S.READY,    _NO_CALLS,  _IGNORE),
    E.REQUEST:              (_NO_AUTH,     _NO_AUTH,     S.READY,    S.DRAINING, _IGNORE),
    E.HANDSHAKE_TIMEOUT:    (S.CLOSED,     _IGNORE,      _IGNORE,    _IGNORE,    _IGNORE),
    E.EXPIRED:              (_IGNORE,      _IGNORE,      S.CLOSED,   _IGNORE,    S.CLOSED),
    E.EXPIRED_IN_CALL:      (_IGNORE,      _IGNORE,      S.DRAINING, _IGNORE,    _IGNORE),
    E.CALLS_ENDED:          (_IGNORE,      _IGNORE,      _IGNORE,    S.CLOSED,   _IGNORE),
    E.GRACE_OVER:           (_IGNORE,      _IGNORE,      _IGNORE,    S.CLOSED,   _IGNORE),
    E.REVOKED:              (S.CLOSED,     S.CLOSED,     S.CLOSED,   S.CLOSED,   S.CLOSED),
    E.DISPLACED:            (_IGNORE,      _IGNORE,      S.READY,    S.DRAINING, _IGNORE),
    E.OFFERED:              (_ABSENT,      _ABSENT,      S.READY,    _ABSENT,    _ABSENT),
    E.FLOOD:                (S.CLOSED,     S.CLOSED,     S.CLOSED,   S.CLOSED,   _IGNORE),
    E.PING_DUE:             (_IGNORE,      _IGNORE,      S.READY,    S.DRAINING, _IGNORE),
    E.SOCKET_LOST:          (_IGNORE,      _IGNORE,      S.DETACHED, S.CLOSED,   _IGNORE),
    E.SOCKET_CLOSED:        (S.CLOSED,     S.CLOSED,     S.CLOSED,   S.CLOSED,   _IGNORE),
    E.REATTACH:             (_NO_RESUME,   _NO_RESUME,   _NO_RESUME, _NO_RESUME, S.READY),
    E.DETACH_EXPIRED:       (_IGNORE,      _IGNORE,      _IGNORE,    _IGNORE,    S.CLOSED),
}
# fmt: on

TABLE: dict[tuple[State, Input], Outcome] = {
    **{
        (state, event): out
        for event, row in _GRID.items()
        for state, out in zip(_COLUMNS, row, strict=True)
    },
    **{(S.CLOSED, event): R.IGNORE for event in Input},
}


def step(state: State, event: Input) -> Outcome:
    return TABLE[(state, event)]


def refused(req: Request, refusal: Refusal) -> list[Output]:
    """The reply to a request the table refuses (the others are answered by nothing)."""
    if refusal is Refusal.NOT_AUTHENTICATED:
        return refuse(req, NotAuthenticated())
    if refusal is Refusal.LOGIN_IN_PROGRESS:
        return refuse(req, LoginFailed("Another login is in progress"))
    return []
