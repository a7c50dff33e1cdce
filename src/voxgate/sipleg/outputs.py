"""What a leg hands its adapter. Every value is a frozen dataclass; the adapter reads no SIP.

``Send`` is the only output that touches the network. The others tell the B2BUA what happened
to the call; each leg ends with exactly one ``Failed`` (it was never answered) or ``Ended``
(it was). After that the adapter keeps the leg until ``leg.finished``: its transactions still
absorb retransmissions and carry a BYE to its end.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.sipleg.messages import Request, Response, Transport

__all__ = [
    "Answered",
    "Confirmed",
    "Dtmf",
    "EarlyMedia",
    "Ended",
    "Failed",
    "OfferWanted",
    "Offered",
    "Output",
    "Renegotiated",
    "RenegotiationFailed",
    "Ringing",
    "Send",
]


@dataclass(frozen=True, slots=True)
class Send:
    """Put ``message`` on ``transport`` to ``host:port`` (requests: the outbound proxy;
    responses: the top Via's received/rport, RFC 3261 18.2.2 and RFC 3581)."""

    message: Request | Response
    transport: Transport
    host: str
    port: int

    @property
    def data(self) -> bytes:
        return bytes(self.message)


@dataclass(frozen=True, slots=True)
class Offered:
    """A call came in (UAS): ring the WebRTC side with ``sdp``, then answer with
    ``ringing``/``progress``/``answer``/``reject``."""

    sdp: str
    caller: str  # the From URI
    caller_name: str  # the From display name ("" when none)
    callee: str  # the request URI
    call_id: str


@dataclass(frozen=True, slots=True)
class Ringing:
    """The callee is alerted (180 without SDP). Said once per leg."""


@dataclass(frozen=True, slots=True)
class EarlyMedia:
    """A provisional answer with SDP (usually 183): media flows before the answer."""

    sdp: str


@dataclass(frozen=True, slots=True)
class Answered:
    """The callee answered our INVITE (2xx, already ACKed); ``sdp`` is the answer."""

    sdp: str


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The caller ACKed our 2xx: the call is up on both sides."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The call ended before it was answered. ``status`` is the final status that ended it
    (received when ``by_remote``; ours, or 408 for a timeout, otherwise)."""

    status: int
    reason: str
    cause: str
    by_remote: bool


@dataclass(frozen=True, slots=True)
class Ended:
    """An answered call is over: a BYE in either direction, or a request in it timed out."""

    cause: str
    by_remote: bool


@dataclass(frozen=True, slots=True)
class OfferWanted:
    """The remote re-INVITEd with ``sdp`` (hold, resume, new media): answer with
    ``leg.answer(sdp)`` or refuse with ``leg.reject(488)``. An empty ``sdp`` asks for an
    offer (it is answered in the ACK, surfaced as ``Renegotiated``)."""

    sdp: str


@dataclass(frozen=True, slots=True)
class Renegotiated:
    """Our re-INVITE was answered (or an offer we made in a 2xx was answered in the ACK)."""

    sdp: str


@dataclass(frozen=True, slots=True)
class RenegotiationFailed:
    """Our re-INVITE was refused; the session goes on as it was (RFC 3261 14.1)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A digit the remote sent in an INFO (application/dtmf-relay); ``duration`` in ms."""

    digit: str
    duration: int


Output = (
    Send
    | Offered
    | Ringing
    | EarlyMedia
    | Answered
    | Confirmed
    | Failed
    | Ended
    | OfferWanted
    | Renegotiated
    | RenegotiationFailed
    | Dtmf
)
