"""What the core hands its adapter, and the typed values the adapter hands back.

Every value that crosses the seam between the sans-I/O core and the gateway is one of these
frozen dataclasses: the adapter never builds or reads a JSON-RPC frame field itself.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from voxgate.domain.errors import VoxgateError
from voxgate.domain.records import Grant
from voxgate.rtc import frames
from voxgate.rtc.frames import Id, Request
from voxgate.rtc.logins import LoginParams

__all__ = [
    "AssistantMessage",
    "Audit",
    "Authenticate",
    "Close",
    "CloseCode",
    "Offer",
    "Output",
    "Register",
    "Relay",
    "RouteCall",
    "Send",
    "Unregister",
    "refuse",
    "reply",
]


class CloseCode(enum.IntEnum):
    """Every WebSocket close code voxgate sends, in one place."""

    GOING_AWAY = 1001  # server shutting down
    PROTOCOL_ERROR = 1002  # a stray continuation frame
    INVALID_DATA = 1007  # a text message that is not UTF-8
    POLICY = 1008  # flood, too many sockets from one address
    TOO_BIG = 1009  # a message over the size limit
    TRY_AGAIN_LATER = 1013  # presence unavailable
    LOGIN_TIMEOUT = 4001
    EXPIRED = 4002
    REVOKED = 4003
    NO_TRAFFIC = 4005  # nothing heard within the idle timeout: treated as a dropped network
    RESUMED_ELSEWHERE = 4006  # the session was reattached on a newer socket
    REGISTERED_ELSEWHERE = 4007  # first_wins: the credential is registered by another device


@dataclass(frozen=True, slots=True)
class Send:
    """A JSON-RPC frame for this session's client, built by the core."""

    frame: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket once the frames before it are out; the client's answer (or the
    close timeout) completes the handshake."""

    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Verify ``login``; answer with ``session.login_result(request_id, ...)``, or, when
    ``resume`` names a session of the same identity that can be reattached, with that
    session's ``resume``."""

    request_id: Id
    login: LoginParams
    refresh: bool
    resume: str | None = None  # the sessid of a reconnecting client's previous session


@dataclass(frozen=True, slots=True)
class Register:
    """Claim the principal's inbound registration. The latest registration wins; the one it
    replaces is told through ``session.displaced`` on whichever node holds it."""

    grant: Grant
    user_agent: str


@dataclass(frozen=True, slots=True)
class Unregister:
    """The session stops taking inbound calls (its socket dropped): a call to its identity
    finds no registration and is answered SUBSCRIBER_ABSENT at once, not rung for nothing."""


@dataclass(frozen=True, slots=True)
class Audit:
    """An entry for the credential's audit trail (written in batches, off the signaling path)."""

    credential_id: str
    kind: str
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RouteCall:
    """Find the callee for this outbound leg: a registration (here or on another node) or an
    assistant; then tell the session with ``call_routed`` or ``call_failed``."""

    call_id: str
    destination: str
    offer: Offer


@dataclass(frozen=True, slots=True)
class Relay:
    """Hand ``kind`` (answer, bye, info, candidate) to the other leg. ``params`` is built by
    the core for the other leg's core; the adapter carries it without reading it."""

    call_id: str
    kind: str
    params: dict[str, Any]

    @property
    def cause(self) -> str:
        """A bye's cause, for webhooks and logs."""
        cause = self.params.get("cause")
        return cause if isinstance(cause, str) else ""


@dataclass(frozen=True, slots=True)
class AssistantMessage:
    """The client wrote ``text`` to the assistant on ``call_id``; answer with
    ``session.assistant_reply(call_id, reply, now)``."""

    call_id: str
    text: str


Output = (
    Send
    | Close
    | Authenticate
    | Register
    | Unregister
    | Audit
    | RouteCall
    | Relay
    | AssistantMessage
)


@dataclass(frozen=True, slots=True)
class Offer:
    """A call offered to a session: what the callee's client is shown in its invite."""

    sdp: str
    caller_name: str = ""
    caller_number: str = ""
    client_state: str | None = None
    custom_headers: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """For the bus, when the callee is on another node."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Offer:
        state = data.get("client_state")
        headers = data.get("custom_headers")
        return cls(
            str(data.get("sdp", "")),
            str(data.get("caller_name", ""))[:128],
            str(data.get("caller_number", ""))[:128],
            state if isinstance(state, str) else None,
            headers if isinstance(headers, list) else [],
        )


def reply(req: Request, result: dict[str, Any]) -> list[Output]:
    """The result for a request; a notification (no id) gets none."""
    return [] if req.id is None else [Send(frames.result_frame(req.id, result))]


def refuse(req: Request, error: VoxgateError) -> list[Output]:
    """The error for a request, with its JSON-RPC code; a notification gets none."""
    return [] if req.id is None else [Send(frames.error_frame(req.id, error))]
