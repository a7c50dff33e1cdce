"""RFC 3261 section 17 transactions, sans-I/O: messages and time in, messages out.

A leg keeps its transactions by (top Via branch, method) and asks them first: a
retransmission, a retransmitted response, a stray 100 stop here; whatever a transaction
``delivers`` goes on to the leg's table. Over UDP they retransmit (Timers A, E, G); over TCP
they do not, but still give up (Timers B, F, H). After a final response they linger to absorb
retransmissions (Timers D, I, J, K). 2xx to INVITE follow RFC 6026: the client transaction
passes every 2xx up (the leg ACKs each one), the server transaction leaves retransmitting the
2xx to the leg (``PendingAck``).

Each returns its deadline; ``on_timer`` handles what is due. A late call is not caught up
retransmission by retransmission: the next one is scheduled from ``now``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from voxgate.sipleg.config import Timers
from voxgate.sipleg.messages import Request, Response

__all__ = ["ClientTransaction", "PendingAck", "ServerTransaction", "TxState", "failure_ack"]


class TxState(enum.Enum):
    TRYING = "trying"  # sent or received, no response yet (INVITE client: "calling")
    PROCEEDING = "proceeding"  # a provisional response
    ACCEPTED = "accepted"  # INVITE with a 2xx (RFC 6026)
    COMPLETED = "completed"  # a final response; lingering for retransmissions
    CONFIRMED = "confirmed"  # INVITE server: the ACK for a non-2xx arrived
    TERMINATED = "terminated"


def _earliest(*times: float | None) -> float | None:
    due = [t for t in times if t is not None]
    return min(due) if due else None


class _Timed:
    """Three timers every transaction has: retransmit, give up, stop lingering."""

    def __init__(self, timers: Timers, reliable: bool) -> None:
        self.timers = timers
        self.reliable = reliable
        self.state = TxState.TRYING
        self.interval = timers.t1
        self.retransmit_at: float | None = None
        self.timeout_at: float | None = None
        self.end_at: float | None = None

    def deadline(self) -> float | None:
        if self.state is TxState.TERMINATED:
            return None
        return _earliest(self.retransmit_at, self.timeout_at, self.end_at)

    @property
    def done(self) -> bool:
        return self.state is TxState.TERMINATED

    def _linger(self, state: TxState, now: float, unreliable_wait: float) -> None:
        """Into ``state`` with retransmissions off; over TCP nothing lingers (wait 0)."""
        self.retransmit_at = self.timeout_at = None
        if self.reliable:
            self.state, self.end_at = TxState.TERMINATED, None
        else:
            self.state, self.end_at = state, now + unreliable_wait

    def _fire(self, now: float) -> tuple[bool, bool]:
        """(retransmit now?, timed out?) for the timers due at ``now``."""
        if self.end_at is not None and now >= self.end_at:
            self.state, self.end_at = TxState.TERMINATED, None
            return False, False
        if self.timeout_at is not None and now >= self.timeout_at:
            self.state = TxState.TERMINATED
            self.retransmit_at = self.timeout_at = None
            return False, True
        if self.retransmit_at is not None and now >= self.retransmit_at:
            return True, False
        return False, False


class ClientTransaction(_Timed):
    """A request we sent: INVITE (17.1.1, Timers A B D) or any other (17.1.2, Timers E F K)."""

    def __init__(self, request: Request, purpose: str, timers: Timers, reliable: bool, now: float):
        super().__init__(timers, reliable)
        self.request = request
        self.purpose = purpose  # what the leg sent it for (see ``leg.Purpose``)
        self.invite = request.method == "INVITE"
        self.ack: Request | None = None  # INVITE: the ACK for a non-2xx final
        self.provisional = False  # a 1xx arrived (a CANCEL may be sent, RFC 3261 9.1)
        self.final: Response | None = None
        self.timeout_at = now + timers.transaction
        if not reliable:
            self.retransmit_at = now + timers.t1

    def receive(self, response: Response, now: float) -> tuple[bool, Request | None]:
        """(pass it to the leg?, an ACK to send)."""
        status, state = response.status, self.state
        if state in (TxState.TRYING, TxState.PROCEEDING):
            if status < 200:
                self.provisional = True
                self.state = TxState.PROCEEDING
                if self.invite:  # Timer A and Timer B stop: the INVITE may ring for minutes
                    self.retransmit_at = self.timeout_at = None
                return True, None
            self.final = response
            if self.invite and status < 300:  # RFC 6026 Timer M: keep passing 2xx up
                self.state, self.end_at = TxState.ACCEPTED, now + self.timers.transaction
                self.retransmit_at = self.timeout_at = None
                return True, None
            if self.invite:
                self.ack = failure_ack(self.request, response)
                self._linger(TxState.COMPLETED, now, 32.0)  # Timer D
                return True, self.ack
            self._linger(TxState.COMPLETED, now, self.timers.t4)  # Timer K
            return True, None
        if self.invite and 200 <= status < 300:
            return True, None  # a 2xx again, another fork's, or one after a failure: ACK it
        if state is TxState.COMPLETED and self.ack is not None and status >= 300:
            return False, self.ack  # the final came again: our ACK was lost
        return False, None

    def on_timer(self, now: float) -> tuple[Request | None, bool]:
        """(a retransmission to send, timed out?)."""
        retransmit, timed_out = self._fire(now)
        if not retransmit:
            return None, timed_out
        if self.invite:
            self.interval *= 2  # Timer A doubles without a cap; Timer B ends it
        elif self.state is TxState.PROCEEDING:
            self.interval = self.timers.t2
        else:
            self.interval = min(2 * self.interval, self.timers.t2)
        self.retransmit_at = now + self.interval
        return self.request, False


class ServerTransaction(_Timed):
    """A request we received: INVITE (17.2.1, Timers G H I) or any other (17.2.2, Timer J)."""

    def __init__(self, request: Request, timers: Timers, reliable: bool):
        super().__init__(timers, reliable)
        self.request = request
        self.invite = request.method == "INVITE"
        self.last: Response | None = None

    def respond(self, response: Response, now: float) -> Response:
        self.last = response
        status = response.status
        if status < 200:
            self.state = TxState.PROCEEDING
        elif self.invite and status < 300:  # RFC 6026 Timer L; the leg retransmits the 2xx
            self.state, self.end_at = TxState.ACCEPTED, now + self.timers.transaction
        elif self.invite:
            self.state = TxState.COMPLETED
            self.timeout_at = now + self.timers.transaction  # Timer H
            if not self.reliable:
                self.interval, self.retransmit_at = self.timers.t1, now + self.timers.t1  # G
        else:
            self._linger(TxState.COMPLETED, now, self.timers.transaction)  # Timer J
        return response

    def retransmitted(self) -> Response | None:
        """The request came again: our last response, to send again (if any)."""
        if self.state in (TxState.TRYING, TxState.PROCEEDING, TxState.COMPLETED):
            return self.last
        return None  # ACCEPTED: absorbed (RFC 6026); the leg's PendingAck retransmits the 2xx

    def acked(self, now: float) -> None:
        """The ACK for our non-2xx final: stop retransmitting it, linger for Timer I."""
        if self.state is TxState.COMPLETED:
            self._linger(TxState.CONFIRMED, now, self.timers.t4)

    def on_timer(self, now: float) -> tuple[Response | None, bool]:
        """(a retransmission to send, timed out?). Timed out: Timer H, no ACK ever came."""
        retransmit, timed_out = self._fire(now)
        if not retransmit:
            return None, timed_out
        self.interval = min(2 * self.interval, self.timers.t2)
        self.retransmit_at = now + self.interval
        return self.last, False


@dataclass(slots=True)
class PendingAck:
    """Our 2xx to an INVITE, waiting for its ACK: resent at T1, 2*T1, ... capped at T2 over UDP
    (RFC 3261 13.3.1.4), never over TCP; after 64*T1 without an ACK the call is given up."""

    response: Response
    cseq: int
    interval: float
    retransmit_at: float | None
    give_up_at: float

    @classmethod
    def start(cls, response: Response, timers: Timers, reliable: bool, now: float) -> PendingAck:
        again = None if reliable else now + timers.t1
        return cls(response, response.cseq.number, timers.t1, again, now + timers.transaction)

    def deadline(self) -> float:
        return self.give_up_at if self.retransmit_at is None else self.retransmit_at

    def on_timer(self, timers: Timers, now: float) -> tuple[Response | None, bool]:
        """(the 2xx to send again, given up?)."""
        if now >= self.give_up_at:
            return None, True
        if self.retransmit_at is None or now < self.retransmit_at:
            return None, False
        self.interval = min(2 * self.interval, timers.t2)
        self.retransmit_at = min(now + self.interval, self.give_up_at)
        return self.response, False


def failure_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final, part of the INVITE's transaction (RFC 3261 17.1.1.3): the
    INVITE's request URI, top Via, From, Call-ID, CSeq number and Route; the response's To."""
    headers = (
        ("Via", invite.values("Via")[0]),
        ("From", invite.get("From") or ""),
        ("To", response.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} ACK"),
        *[("Route", route) for route in invite.values("Route")],
        ("Max-Forwards", "70"),
    )
    return Request("ACK", invite.uri, headers)
