"""The plumbing under a leg: its transactions, timers, sends, and the one way the table is
consulted. ``leg.Leg`` adds what each input does; nothing here knows a call's meaning."""

from __future__ import annotations

import enum
from collections.abc import Callable

from voxgate.sipleg.causes import DIALOG_TIMEOUT
from voxgate.sipleg.config import Ids, LegConfig, RandomIds
from voxgate.sipleg.dialog import Dialog, cancel_for, reply_to, response_to
from voxgate.sipleg.messages import Headers, Request, Response
from voxgate.sipleg.outputs import Ended, Failed, Output, Send
from voxgate.sipleg.states import Input, Refusal, State, step
from voxgate.sipleg.transactions import ClientTransaction, PendingAck, ServerTransaction

__all__ = ["Action", "InvalidCommand", "LegCore", "Purpose"]

Action = Callable[[State, State], list[Output]]  # (from, to) -> outputs
_REFUSALS = {
    Refusal.NO_DIALOG: (481, "Call/Transaction Does Not Exist"),
    Refusal.PENDING: (491, "Request Pending"),
    Refusal.RETRY_LATER: (500, "Server Internal Error"),
}


class InvalidCommand(Exception):
    """The B2BUA asked for something the leg's state does not allow (answer twice, ...)."""


class Purpose(enum.Enum):
    """Why a client transaction was started: what its responses and timeout mean."""

    INVITE = "invite"
    REINVITE = "reinvite"
    BYE = "bye"
    CANCEL = "cancel"
    INFO = "info"
    CLEANUP = "cleanup"  # the BYE for a forked or late 2xx: nobody waits for its answer


class LegCore:
    def __init__(self, config: LegConfig, ids: Ids | None = None) -> None:
        self.config = config
        self.ids: Ids = ids or RandomIds()
        self.state = State.IDLE
        self.dialog: Dialog | None = None
        self.clients: dict[tuple[str, str], ClientTransaction] = {}
        self.servers: dict[tuple[str, str], ServerTransaction] = {}
        self.pending_ack: PendingAck | None = None  # our 2xx, until its ACK
        self.cancel_due: float | None = None  # 64*T1 after our CANCEL (RFC 3261 9.1)
        self.cancel_reason = ""  # our CANCEL's Reason header (RFC 3326), if any
        self.retry_at: float | None = None  # a re-INVITE to try again after a 491
        self.outbound = False  # we sent the INVITE (and chose the Call-ID)
        self._invite: ClientTransaction | None = None  # our first INVITE
        self._offer: ServerTransaction | None = None  # an INVITE or re-INVITE we must answer
        self._cancel_waiting = False  # cancel() came before any provisional (RFC 3261 9.1)
        self._bye_after_ack = False  # bye() came while our first 2xx waited for its ACK (15)
        self._offer_in_2xx = False  # the INVITE had no SDP: our 2xx offers, its ACK answers
        self._over = False  # the terminal output was said

    # -- what the adapter reads ----------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.dialog.call_id if self.dialog is not None else ""

    def next_deadline(self) -> float | None:
        due = [tx.deadline() for tx in (*self.clients.values(), *self.servers.values())]
        due += [self.cancel_due, self.retry_at]
        if self.pending_ack is not None:
            due.append(self.pending_ack.deadline())
        present = [d for d in due if d is not None]
        return min(present) if present else None

    @property
    def finished(self) -> bool:
        """Over, and nothing left to retransmit or absorb: the adapter may forget the leg."""
        return self.state is State.ENDED and self.next_deadline() is None

    # -- the table -------------------------------------------------------------------------
    def run(
        self, event: Input, act: Action, tx: ServerTransaction | None, now: float
    ) -> list[Output]:
        """Look ``event`` up for the current state: refuse it, or move and ``act``."""
        outcome = step(self.state, event)
        if isinstance(outcome, Refusal):
            return self.refuse(outcome, event, tx, now)
        before, self.state = self.state, outcome
        return act(before, outcome)

    def refuse(
        self, refusal: Refusal, event: Input, tx: ServerTransaction | None, now: float
    ) -> list[Output]:
        if refusal is Refusal.INVALID:
            raise InvalidCommand(f"{event.value} is not allowed in state {self.state.value}")
        if refusal is Refusal.IGNORE or tx is None or tx.request.method == "ACK":
            return []
        status, reason = _REFUSALS[refusal]
        extra: Headers = ()
        if refusal is Refusal.RETRY_LATER:  # a random 0-10 s (RFC 3261 14.2)
            extra = (("Retry-After", str(int(self.ids.fraction() * 10))),)
        return [self.respond(tx, status, reason, now, extra=extra)]

    def finish(self, output: Failed | Ended) -> list[Output]:
        """The leg's one terminal output; said once."""
        if self._over:
            return []
        self._over = True
        return [output]

    # -- sending ---------------------------------------------------------------------------
    def branch(self) -> str:
        return "z9hG4bK" + self.ids.token()

    def send(self, message: Request | Response) -> Send:
        """A request goes to the outbound proxy, a response where its top Via says."""
        cfg = self.config
        if isinstance(message, Request):
            return Send(message, cfg.transport, cfg.proxy_host, cfg.proxy_port)
        return Send(message, cfg.transport, *reply_to(message))

    def start(self, request: Request, purpose: Purpose, now: float) -> list[Output]:
        """Send ``request`` in a new client transaction."""
        tx = ClientTransaction(
            request, purpose.value, self.config.timers, self.config.transport.reliable, now
        )
        self.clients[(request.branch, request.method)] = tx
        return [self.send(request)]

    def respond(
        self,
        tx: ServerTransaction,
        status: int,
        reason: str,
        now: float,
        body: bytes = b"",
        extra: Headers = (),
    ) -> Send:
        tag = self.dialog.local_tag if self.dialog is not None else None
        response = response_to(self.config, tx.request, status, reason, tag, body, extra)
        return self.send(tx.respond(response, now))

    def prune(self) -> None:
        """Forget the transactions that are over."""
        self.clients = {k: tx for k, tx in self.clients.items() if not tx.done}
        self.servers = {k: tx for k, tx in self.servers.items() if not tx.done}

    # -- what several inputs do ------------------------------------------------------------
    def _send_cancel(self, now: float) -> list[Output]:
        assert self._invite is not None
        self._cancel_waiting = False
        self.cancel_due = now + self.config.timers.transaction
        cancel = cancel_for(self._invite.request, self.cancel_reason)
        return self.start(cancel, Purpose.CANCEL, now)

    def _send_bye(self, now: float) -> list[Output]:
        self.pending_ack, self._bye_after_ack = None, False
        return self.start(self._dialog().request("BYE", self.branch()), Purpose.BYE, now)

    def _lost(self, now: float) -> list[Output]:
        """A request in the call timed out or found no dialog (408/481): end it (12.2.1.2)."""
        return self.finish(Ended(DIALOG_TIMEOUT, False)) + self._send_bye(now)

    def _answer_offer(self, status: int, reason: str, now: float, sdp: str = "") -> Send:
        """A response to the INVITE (or re-INVITE) waiting; a final one closes it."""
        assert self._offer is not None
        tx = self._offer
        if status >= 200:
            self._offer = None
        return self.respond(tx, status, reason, now, body=sdp.encode())

    def _dialog(self) -> Dialog:
        assert self.dialog is not None
        return self.dialog
