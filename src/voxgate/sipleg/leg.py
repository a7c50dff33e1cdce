"""One call leg of voxgate's B2BUA towards its Kamailio, as a sans-I/O state machine.

```python
leg = Leg(config, ids)                                  # no sockets, no asyncio
outs = leg.invite(sdp, now, target=uri, caller=from_uri)   # UAC: -> [Send(INVITE)]
outs = leg.receive(parse(datagram), now)                # UAS: an INVITE -> [Send(100), Offered]
outs = leg.ringing(now); leg.answer(sdp, now); leg.bye(now); leg.reinvite(sdp, now); ...
deadline = leg.next_deadline()                          # when it wants on_timer(now)
outs = leg.on_timer(now)
```

Each public call classifies what happened as an ``Input``, asks ``states.TABLE`` and does
what that input means (commands, responses and timers here, received requests in
``inbound``, the plumbing in ``core``). A command the table refuses raises
``InvalidCommand``; a request it refuses is answered (481, 491, 500).

The adapter keeps a leg until ``finished`` (after its one ``Failed`` or ``Ended``, its
transactions still absorb retransmissions for up to 64*T1), routes datagrams to it by
Call-ID, and sends each ``Send`` as told.
"""

from __future__ import annotations

from voxgate.sipleg import dtmf
from voxgate.sipleg.causes import (
    DIALOG_TIMEOUT,
    INVITE_TIMEOUT,
    cancel_reason,
    cause_for_status,
)
from voxgate.sipleg.core import InvalidCommand, Purpose
from voxgate.sipleg.dialog import Dialog
from voxgate.sipleg.digest import Challenge, authorization
from voxgate.sipleg.inbound import Inbound
from voxgate.sipleg.messages import Headers, Request, Response
from voxgate.sipleg.outputs import (
    Answered,
    EarlyMedia,
    Ended,
    Failed,
    Output,
    Renegotiated,
    RenegotiationFailed,
    Ringing,
)
from voxgate.sipleg.states import Input, State
from voxgate.sipleg.transactions import ClientTransaction, PendingAck

__all__ = ["InvalidCommand", "Leg"]

E, S = Input, State


class Leg(Inbound):
    """A UAC leg once ``invite`` is called, a UAS leg once it ``receive``s an INVITE."""

    _reinvite_sdp = ""
    _rang = False
    _early_sdp: str | None = None
    _auth: tuple[str, str] | None = None  # (user, password) for a trunk's 401/407
    _auth_tries = 0
    _invite_sdp = ""
    _invite_headers: Headers = ()

    # -- UAC commands ----------------------------------------------------------------------
    def invite(
        self,
        offer_sdp: str,
        now: float,
        *,
        target: str,
        caller: str,
        caller_name: str = "",
        headers: Headers = (),
        auth: tuple[str, str] | None = None,
    ) -> list[Output]:
        """Call ``target`` (a request URI) as ``caller`` through the outbound proxy. Extra
        ``headers`` go into the INVITE and so into each retransmission of it; ``auth`` (user,
        password) answers a 401/407 to it (a carrier's trunk)."""

        def act(_: State, __: State) -> list[Output]:
            self.outbound, self._auth = True, auth
            self._invite_sdp, self._invite_headers = offer_sdp, headers
            self.dialog = Dialog.outgoing(self.config, self.ids, target, caller, caller_name)
            request = self.dialog.invite(self.branch(), offer_sdp, headers)
            sent = self.start(request, Purpose.INVITE, now)
            self._invite = self.clients[(request.branch, "INVITE")]
            return sent

        return self.run(E.DIAL, act, None, now)

    def cancel(self, now: float) -> list[Output]:
        """Hang up before the answer (after it, the same as ``bye``)."""
        act = lambda old, new: self._hang_up(old, new, "NORMAL_CLEARING", now)  # noqa: E731
        return self.run(E.CANCEL, act, None, now)

    def bye(self, now: float, cause: str = "NORMAL_CLEARING") -> list[Output]:
        """Hang up an answered call (before the answer, the same as ``cancel``)."""
        return self.run(E.BYE, lambda old, new: self._hang_up(old, new, cause, now), None, now)

    def reinvite(self, sdp: str, now: float) -> list[Output]:
        """A new offer in the call: hold (``a=sendonly``/``inactive``), resume, new media."""

        def act(_: State, __: State) -> list[Output]:
            self.retry_at, self._reinvite_sdp = None, sdp
            return self._send_reinvite(now)

        return self.run(E.REINVITE, act, None, now)

    def info_dtmf(self, digit: str, duration: int, now: float) -> list[Output]:
        data = dtmf.body(digit, duration)

        def act(_: State, __: State) -> list[Output]:
            assert self.dialog is not None
            info = self.dialog.request("INFO", self.branch(), body=data, content_type=dtmf.TYPES[0])
            return self.start(info, Purpose.INFO, now)

        return self.run(E.SEND_INFO, act, None, now)

    # -- UAS commands ----------------------------------------------------------------------
    def ringing(self, now: float) -> list[Output]:
        return self.run(E.RING, lambda _, __: [self._answer_offer(180, "Ringing", now)], None, now)

    def progress(self, sdp: str, now: float) -> list[Output]:
        """183 with SDP: early media towards the caller."""

        def act(_: State, __: State) -> list[Output]:
            return [self._answer_offer(183, "Session Progress", now, sdp)]

        return self.run(E.RING, act, None, now)

    def answer(self, sdp: str, now: float) -> list[Output]:
        """200 OK with ``sdp`` for the INVITE (or re-INVITE) waiting; resent until its ACK."""

        def act(_: State, __: State) -> list[Output]:
            sent = self._answer_offer(200, "OK", now, sdp)
            assert isinstance(sent.message, Response)
            cfg = self.config
            self.pending_ack = PendingAck.start(
                sent.message, cfg.timers, cfg.transport.reliable, now
            )
            return [sent]

        return self.run(E.ANSWER, act, None, now)

    def reject(self, status: int, reason: str, now: float) -> list[Output]:
        """Refuse the INVITE (or re-INVITE) waiting; ``causes.status_for_cause`` picks one."""
        if not 300 <= status <= 699:
            raise ValueError(f"a rejection is 300-699, not {status}")

        def act(_: State, new: State) -> list[Output]:
            outs: list[Output] = [self._answer_offer(status, reason, now)]
            if new is S.ENDED:
                outs += self.finish(Failed(status, reason, cause_for_status(status), False))
            return outs

        return self.run(E.REJECT, act, None, now)

    # -- input -----------------------------------------------------------------------------
    def receive(self, message: Request | Response, now: float) -> list[Output]:
        if isinstance(message, Response):
            outs = self._response(message, now)
        else:
            outs = self._request(message, now)
        self.prune()
        return outs

    def on_timer(self, now: float) -> list[Output]:
        outs: list[Output] = []
        for tx in list(self.clients.values()):
            if (due := tx.deadline()) is not None and due <= now:
                request, timed_out = tx.on_timer(now)
                outs += [self.send(request)] if request is not None else []
                outs += self._timed_out(tx, now) if timed_out else []
        for server in list(self.servers.values()):
            if (due := server.deadline()) is not None and due <= now:
                resend, _ = server.on_timer(now)  # Timer H: we already said how the call ended
                outs += [self.send(resend)] if resend is not None else []
        if self.pending_ack is not None and self.pending_ack.deadline() <= now:
            response, gave_up = self.pending_ack.on_timer(self.config.timers, now)
            outs += [self.send(response)] if response is not None else []
            if gave_up:
                self.pending_ack = None
                outs += self.run(E.ACK_TIMEOUT, lambda old, new: self._no_ack(old, now), None, now)
        if self.cancel_due is not None and self.cancel_due <= now:
            self.cancel_due = None
            if self._invite is not None:  # give the INVITE up (RFC 3261 9.1)
                self.clients.pop((self._invite.request.branch, "INVITE"), None)
            outs += self.run(E.CANCEL_EXPIRED, lambda _, __: [], None, now)
        if self.retry_at is not None and self.retry_at <= now:
            self.retry_at = None
            outs += self.run(E.RETRY_REINVITE, lambda _, new: self._retry(new, now), None, now)
        self.prune()
        return outs

    # -- responses -------------------------------------------------------------------------
    def _response(self, resp: Response, now: float) -> list[Output]:
        tx = self.clients.get((resp.branch, resp.cseq.method))
        if tx is None:
            return self._late_2xx(resp, now)
        deliver, ack = tx.receive(resp, now)
        outs: list[Output] = [self.send(ack)] if ack is not None else []
        if not deliver:
            return outs
        status, purpose = resp.status, Purpose(tx.purpose)
        if purpose is Purpose.INVITE:
            if status < 200:
                act = lambda _, new: self._provisional(resp, new, now)  # noqa: E731
                return outs + self.run(E.PROVISIONAL, act, None, now)
            if status < 300:
                return outs + self._invite_2xx(resp, E.ACCEPTED, now)
            if status in (401, 407) and (again := self._authenticate(resp, now)):
                return outs + again
            return outs + self.run(E.REFUSED, lambda _, __: self._refused(resp), None, now)
        if purpose is Purpose.REINVITE and status >= 200:
            if status < 300:
                return outs + self._invite_2xx(resp, E.REINVITE_OK, now)
            if status == 491:
                return outs + self.run(E.REINVITE_GLARE, lambda _, __: self._glare(now), None, now)
            if status not in (408, 481):
                failed: list[Output] = [RenegotiationFailed(status, resp.reason)]
                return outs + self.run(E.REINVITE_REFUSED, lambda _, __: failed, None, now)
        if purpose is Purpose.BYE and status >= 200:
            return outs + self.run(E.BYE_DONE, lambda _, __: [], None, now)
        if purpose in (Purpose.REINVITE, Purpose.INFO) and status in (408, 481):
            return outs + self.run(E.DIALOG_LOST, lambda _, __: self._lost(now), None, now)
        return outs

    def _invite_2xx(self, resp: Response, event: Input, now: float) -> list[Output]:
        dialog = self.dialog
        assert dialog is not None
        tag = resp.to_tag or ""
        if (known := dialog.acks.get((resp.cseq.number, tag))) is not None:
            return [self.send(known)]  # the 2xx again: our ACK was lost
        if dialog.remote_tag is not None and tag != dialog.remote_tag:
            return self._drop_fork(resp, now)
        if event is E.ACCEPTED:
            dialog.learn(resp)
        ack: Output = self.send(dialog.ack(resp, self.branch()))  # every 2xx is ACKed

        def act(_: State, new: State) -> list[Output]:
            self.cancel_due, self._cancel_waiting = None, False
            if new is S.ENDING:  # answered after we gave up
                return self._send_bye(now)
            sdp = resp.sdp or ""
            return [Answered(sdp) if event is E.ACCEPTED else Renegotiated(sdp)]

        return [ack, *self.run(event, act, None, now)]

    def _late_2xx(self, resp: Response, now: float) -> list[Output]:
        """A 2xx whose transaction is gone: ACK it again, or ACK and BYE a dialog we never
        wanted (a fork, or an answer after we cancelled)."""
        dialog = self.dialog
        if resp.status // 100 != 2 or resp.cseq.method != "INVITE" or dialog is None:
            return []
        if resp.call_id != dialog.call_id or resp.from_tag != dialog.local_tag:
            return []
        if (ack := dialog.acks.get((resp.cseq.number, resp.to_tag or ""))) is not None:
            return [self.send(ack)]
        return self._drop_fork(resp, now)

    def _drop_fork(self, resp: Response, now: float) -> list[Output]:
        assert self.dialog is not None
        fork = self.dialog.fork(resp)
        ack = fork.ack(resp, self.branch())
        self.dialog.acks[(resp.cseq.number, resp.to_tag or "")] = ack
        bye = fork.request("BYE", self.branch())
        return [self.send(ack), *self.start(bye, Purpose.CLEANUP, now)]

    def _provisional(self, resp: Response, new: State, now: float) -> list[Output]:
        if new is S.CANCELLING:
            return self._send_cancel(now) if self._cancel_waiting else []
        sdp = resp.sdp
        if sdp is not None and sdp != self._early_sdp:
            self._early_sdp = sdp
            return [EarlyMedia(sdp)]
        if resp.status == 180 and sdp is None and not self._rang:
            self._rang = True
            return [Ringing()]
        return []

    def _refused(self, resp: Response) -> list[Output]:
        self.cancel_due = None
        cause = cause_for_status(resp.status)
        return self.finish(Failed(resp.status, resp.reason, cause, True))

    def _authenticate(self, resp: Response, now: float) -> list[Output]:
        """The INVITE again (next CSeq, new branch) with our answer to the challenge; once,
        or again when the carrier says our nonce went stale. Nothing: the call is refused."""
        if self._auth is None or self.state not in (S.CALLING, S.PROCEEDING):
            return []
        proxy = resp.status == 407
        challenge = Challenge.parse(
            resp.get("Proxy-Authenticate" if proxy else "WWW-Authenticate") or ""
        )
        if challenge is None or self._auth_tries >= 3 or (self._auth_tries and not challenge.stale):
            return []
        self._auth_tries += 1
        dialog = self._dialog()
        dialog.local_seq += 1
        user, password = self._auth
        answer = authorization(challenge, "INVITE", dialog.target, user, password, self.ids.token())
        name = "Proxy-Authorization" if proxy else "Authorization"
        request = dialog.invite(
            self.branch(), self._invite_sdp, (*self._invite_headers, (name, answer))
        )
        sent = self.start(request, Purpose.INVITE, now)
        self._invite = self.clients[(request.branch, "INVITE")]
        return sent

    def _timed_out(self, tx: ClientTransaction, now: float) -> list[Output]:
        purpose = Purpose(tx.purpose)
        if purpose is Purpose.INVITE:
            failed = Failed(408, "Request Timeout", INVITE_TIMEOUT, False)
            return self.run(E.NO_RESPONSE, lambda _, __: self.finish(failed), None, now)
        if purpose in (Purpose.REINVITE, Purpose.INFO):
            return self.run(E.DIALOG_LOST, lambda _, __: self._lost(now), None, now)
        if purpose is Purpose.BYE:
            return self.run(E.BYE_DONE, lambda _, __: [], None, now)
        return []

    # -- what several inputs do ------------------------------------------------------------
    def _hang_up(self, old: State, new: State, cause: str, now: float) -> list[Output]:
        if new is S.CANCELLING:
            outs = self.finish(Failed(487, "Request Terminated", "ORIGINATOR_CANCEL", False))
            self.cancel_reason = cancel_reason(cause)
            assert self._invite is not None
            if self._invite.provisional:
                return outs + self._send_cancel(now)
            self._cancel_waiting = True  # RFC 3261 9.1: not before a provisional
            return outs
        outs = self.finish(Ended(cause, False))
        if self._offer is not None:  # a re-INVITE waiting for our answer
            outs.append(self._answer_offer(487, "Request Terminated", now))
        if old is S.ANSWERED:  # RFC 3261 15: no BYE before the ACK of our 2xx (or 64*T1)
            self._bye_after_ack = True
            return outs
        return outs + self._send_bye(now)

    def _no_ack(self, old: State, now: float) -> list[Output]:
        """64*T1 without the ACK of our 2xx: the call is given up with a BYE (13.3.1.4)."""
        if old is S.ENDING:
            return self._send_bye(now)  # the BYE that waited for this ACK
        return self.finish(Ended(DIALOG_TIMEOUT, False)) + self._send_bye(now)

    def _glare(self, now: float) -> list[Output]:
        """491: try again after a random wait, longer for the Call-ID's owner (14.1)."""
        spread = self.ids.fraction()
        self.retry_at = now + (2.1 + 1.9 * spread if self.outbound else 2.0 * spread)
        return []

    def _retry(self, new: State, now: float) -> list[Output]:
        if new is S.REINVITING:
            return self._send_reinvite(now)
        self.retry_at = now + self.config.timers.t1 * 4  # their re-INVITE first: wait again
        return []

    def _send_reinvite(self, now: float) -> list[Output]:
        request = self._dialog().request("INVITE", self.branch(), body=self._reinvite_sdp.encode())
        return self.start(request, Purpose.REINVITE, now)
