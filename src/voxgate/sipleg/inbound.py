"""What a leg does with the requests it receives: the INVITE that creates a UAS leg, CANCEL,
ACK, and the requests inside the call (re-INVITE, BYE, INFO, OPTIONS, anything else).

A request first meets its transaction (a retransmission is answered again and stops there)
and the dialog's checks (RFC 3261 12.2.2: Call-ID and tags, CSeq order); what is left is an
``Input`` for the table.
"""

from __future__ import annotations

import sipmessage

from voxgate.sipleg import dtmf
from voxgate.sipleg.causes import cause_for_cancel
from voxgate.sipleg.core import LegCore
from voxgate.sipleg.dialog import Dialog
from voxgate.sipleg.messages import Request, header_uri, split_list
from voxgate.sipleg.outputs import (
    Confirmed,
    Dtmf,
    Ended,
    Failed,
    Offered,
    OfferWanted,
    Output,
    Renegotiated,
)
from voxgate.sipleg.states import Input, State
from voxgate.sipleg.transactions import ServerTransaction

__all__ = ["Inbound"]

E, S = Input, State
_ALLOW = (("Allow", "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"),)
_IN_DIALOG = {"INVITE": E.REOFFER, "BYE": E.HANGUP, "INFO": E.INFO}


class Inbound(LegCore):
    """The request half of a leg (``leg.Leg`` adds commands, responses and timers)."""

    def _request(self, req: Request, now: float) -> list[Output]:
        method = req.method
        if method == "ACK":
            return self._ack(req, now)
        key = (req.branch, method)
        if (tx := self.servers.get(key)) is not None:  # a retransmission
            again = tx.retransmitted()
            return [self.send(again)] if again is not None else []
        tx = self.servers[key] = ServerTransaction(
            req, self.config.timers, self.config.transport.reliable
        )
        if self.state is S.IDLE and method == "INVITE" and req.to_tag is None:
            return self._offered(req, tx, now)
        if method == "CANCEL":
            return self._cancelled(req, tx, now)
        problem = self._not_ours(req)
        if problem is not None:
            return [self.respond(tx, *problem, now)]
        event = _IN_DIALOG.get(method, E.OTHER_REQUEST)
        return self.run(event, lambda old, new: self._in_dialog(event, tx, old, new, now), tx, now)

    def _not_ours(self, req: Request) -> tuple[int, str] | None:
        """Why a request cannot belong to this dialog (RFC 3261 12.2.2), or None."""
        dialog = self.dialog
        if dialog is None or req.call_id != dialog.call_id or req.to_tag != dialog.local_tag:
            if req.method == "INVITE" and req.to_tag is None and dialog is not None:
                return 482, "Loop Detected"  # the same call reached us twice
            return 481, "Call/Transaction Does Not Exist"
        seq = req.cseq.number
        if dialog.remote_seq is not None and seq <= dialog.remote_seq:
            return 500, "Server Internal Error"  # out of order
        dialog.remote_seq = seq
        return None

    def _offered(self, invite: Request, tx: ServerTransaction, now: float) -> list[Output]:
        unsupported = [o for line in invite.values("Require") for o in split_list(line)]
        event = E.BAD_OFFER if unsupported else E.OFFER

        def act(_: State, new: State) -> list[Output]:
            self.dialog = Dialog.incoming(self.config, self.ids, invite)
            if new is S.ENDED:  # RFC 3261 8.2.2.3: we support no extension
                extra = (("Unsupported", ", ".join(unsupported)),)
                sent = self.respond(tx, 420, "Bad Extension", now, extra=extra)
                return [sent, *self.finish(Failed(420, "Bad Extension", "INTERWORKING", False))]
            self._offer, self._offer_in_2xx = tx, invite.sdp is None
            caller = invite.get("From") or ""
            name = sipmessage.Address.parse(caller).name
            offered = Offered(
                invite.sdp or "", header_uri(caller), name, invite.uri, invite.call_id
            )
            return [self.respond(tx, 100, "Trying", now), offered]

        return self.run(event, act, tx, now)

    def _cancelled(self, cancel: Request, tx: ServerTransaction, now: float) -> list[Output]:
        invite = self.servers.get((cancel.branch, "INVITE"))
        if invite is None or invite.request.call_id != cancel.call_id:
            return [self.respond(tx, 481, "Call/Transaction Does Not Exist", now)]
        if invite is not self._offer:  # already answered: the CANCEL does nothing (9.2)
            return [self.respond(tx, 200, "OK", now)]

        def act(_: State, new: State) -> list[Output]:
            outs: list[Output] = [self.respond(tx, 200, "OK", now)]
            outs.append(self._answer_offer(487, "Request Terminated", now))
            if new is S.ENDED:
                cause = cause_for_cancel(cancel.get("Reason"))
                outs += self.finish(Failed(487, "Request Terminated", cause, True))
            return outs

        return self.run(E.CANCELLED, act, tx, now)

    def _ack(self, ack: Request, now: float) -> list[Output]:
        tx = self.servers.get((ack.branch, "INVITE"))
        if tx is not None and tx.last is not None and tx.last.status >= 300:
            tx.acked(now)  # the ACK of a non-2xx belongs to its transaction
            return []
        pending, dialog = self.pending_ack, self.dialog
        if pending is None or dialog is None or ack.to_tag != dialog.local_tag:
            return []  # a retransmitted ACK, or a stray one
        if ack.call_id != dialog.call_id or ack.cseq.number != pending.cseq:
            return []

        def act(old: State, new: State) -> list[Output]:
            self.pending_ack = None
            outs: list[Output] = []
            if self._offer_in_2xx:
                self._offer_in_2xx = False
                outs.append(Renegotiated(ack.sdp or ""))
            if old is S.ANSWERED:
                outs.append(Confirmed())
            if new is S.ENDING and self._bye_after_ack:
                outs += self._send_bye(now)
            return outs

        return self.run(E.ACK, act, None, now)

    def _in_dialog(
        self, event: Input, tx: ServerTransaction, old: State, new: State, now: float
    ) -> list[Output]:
        req = tx.request
        if event is E.REOFFER:
            self._offer, self._offer_in_2xx = tx, req.sdp is None
            return [self.respond(tx, 100, "Trying", now), OfferWanted(req.sdp or "")]
        if event is E.INFO:
            return self._info(tx, now)
        if event is E.OTHER_REQUEST:
            if req.method == "OPTIONS":
                return [self.respond(tx, 200, "OK", now, extra=_ALLOW)]
            return [self.respond(tx, 405, "Method Not Allowed", now, extra=_ALLOW)]
        # HANGUP: a BYE. Whatever still waits for our answer is over (RFC 3261 15.1.2).
        outs: list[Output] = [self.respond(tx, 200, "OK", now)]
        if self._offer is not None:
            outs.append(self._answer_offer(487, "Request Terminated", now))
        if new is S.ENDED:
            self.pending_ack = None
            if old is S.EARLY:
                outs += self.finish(Failed(487, "Request Terminated", "ORIGINATOR_CANCEL", True))
            outs += self.finish(Ended("NORMAL_CLEARING", True))
        return outs

    def _info(self, tx: ServerTransaction, now: float) -> list[Output]:
        req = tx.request
        if req.body and req.content_type not in dtmf.TYPES:
            accept = (("Accept", ", ".join(dtmf.TYPES)),)
            return [self.respond(tx, 415, "Unsupported Media Type", now, extra=accept)]
        outs: list[Output] = [self.respond(tx, 200, "OK", now)]
        if (digit := dtmf.read(req.content_type, req.body)) is not None:
            outs.append(Dtmf(*digit))
        return outs
