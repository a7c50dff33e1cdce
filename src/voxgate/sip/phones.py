"""Calls between WebRTC sessions and SIP phones: voxgate's B2BUA side, on the SIP leg core.

A browser's call to a credential whose registration is a SIP contact becomes two legs: the
browser's (the gateway's, as for any call) and a SIP leg (``voxgate.sipleg``) that this
adapter runs towards its Kamailio, which finds the phone in its location table. A phone's
call to a user registered over WebRTC comes the other way: Kamailio hands the INVITE to this
user agent (signed with the deployment's secret) and ``ring`` rings the session. Media goes
through rtpengine: an offer from either side is made one the other side takes (ICE,
DTLS-SRTP and Opus for a browser; RTP/AVP for a phone), and so is its answer.

The adapter only moves datagrams, keeps one timer for the legs' deadlines, and talks to
rtpengine; every SIP decision is the leg's. The gateway sees a call through ``PhoneCall``
(``hang_up``, ``dtmf``, ``answer``), and the phone's side hears it through ``CallerEvents``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from voxgate.domain.ids import new_uuid
from voxgate.domain.records import TrunkRoute
from voxgate.sip.ng import NgClient, NgError
from voxgate.sip.phonecall import (
    MEDIA,
    PHONE,
    TO_BROWSER,
    TO_PHONE,
    TO_TRUNK,
    TRUNK_HEADER,
    WEBRTC,
    CallerEvents,
    PhoneCall,
    to_carrier,
)
from voxgate.sipleg import (
    Leg,
    LegConfig,
    ParseError,
    RandomIds,
    Request,
    Transport,
    outputs,
    parse,
)
from voxgate.sipleg.dtmf import DIGITS
from voxgate.sipleg.messages import header_uri

__all__ = ["Phones", "Ring", "mirrored"]

log = structlog.get_logger("voxgate.sip")

LEG_HEADER = "X-Voxgate-Leg"  # Kamailio takes INVITEs from our user agent only with the secret
CALLER_HEADER = "X-Voxgate-Caller"  # on a phone's call: the SIP user its digest proved
Ring = Callable[[str, str, str, str, "PhoneCall", bool], Awaitable[CallerEvents | None]]
"""The gateway's side of a call from a phone: (callee user, caller number, caller name, the
offer made WebRTC, the phone's call, whether the caller is a credential whose digest Kamailio
checked) -> what the rung browser hears, or None when nobody rings."""
MEDIA_LOST = "NETWORK_OUT_OF_ORDER"  # rtpengine restarted without the call (Q.850 38)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, phones: Phones) -> None:
        self.phones = phones

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.phones.received(data)


class Phones:
    def __init__(
        self,
        leg_port: int,
        proxy: tuple[str, int],
        domain: str,
        secret: str,
        ng: NgClient,
        node_id: str = "",
    ) -> None:
        self.config = LegConfig("127.0.0.1", leg_port, proxy[0], proxy[1], Transport.UDP)
        self.domain = domain
        self.secret = secret
        self.ng = ng
        self.prefix = f"vx-{node_id}-"  # this node's calls at rtpengine (another may share it)
        self.calls: dict[str, PhoneCall] = {}  # by SIP Call-ID
        self.ring: Ring | None = None  # the gateway's, for calls from phones
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadlines: list[tuple[float, str]] = []  # a heap of (deadline, SIP Call-ID)
        self._armed: dict[str, float] = {}  # each call's deadline in the heap
        self._work: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Datagrams(self), local_addr=("127.0.0.1", self.config.local_port)
        )
        self._transport = transport
        await self.sweep()

    async def sweep(self) -> None:
        """Deletes the rtpengine calls a previous run of this node left (it died before it
        could): a shared or external rtpengine would otherwise relay, and hold ports, for
        calls nobody will end."""
        try:
            left = [c for c in await self.ng.list_calls() if c.startswith(self.prefix)]
            for media_id in left:
                await self.ng.delete(media_id, missing_ok=True)
        except NgError as exc:
            log.warning("media relay not swept", error=exc.detail)
            return
        if left:
            log.info("media relay swept of a previous run's calls", calls=len(left))

    async def stop(self) -> None:
        for call in [c for c in self.calls.values() if not c.over]:
            with contextlib.suppress(Exception):  # both sides hear it (limits freed, reported)
                await call.lost("NORMAL_CLEARING")
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()

    async def place(
        self,
        user: str,
        sdp: str,
        caller: str,
        caller_name: str,
        tell: CallerEvents,
        *,
        browser: bool = False,
        trunk: TrunkRoute | None = None,
    ) -> PhoneCall | None:
        """INVITE ``user``'s phones with the browser's ``sdp`` made RTP, or kept WebRTC for a
        ``browser`` (SIP.js, JsSIP: registered over WebSocket); or, with a ``trunk``, the
        number ``user`` through the carrier, in G.711. None (and the caller told why) when
        the media relay cannot take the call."""
        leg, media_id = Leg(self.config, RandomIds()), self.prefix + new_uuid()
        profile = TO_TRUNK if trunk else TO_BROWSER if browser else TO_PHONE
        try:
            offer = await self.ng.offer(media_id, WEBRTC, sdp, **profile)
        except NgError as exc:
            log.warning("media relay refused a call", error=exc.detail)
            await tell("failed", {"cause": "NORMAL_TEMPORARY_FAILURE"})
            return None
        call = PhoneCall(self, leg, media_id, tell, inbound=False)
        call.offer, call.relayed = offer, True
        target, source = f"sip:{user}@{self.domain}", f"sip:{caller or 'anonymous'}@{self.domain}"
        signed: tuple[tuple[str, str], ...] = ((LEG_HEADER, self.secret),)  # never past Kamailio
        auth = None
        if trunk is not None:
            target, source, headers, auth = to_carrier(trunk, user, self.domain)
            signed += headers
        try:
            outs = leg.invite(
                offer, time.time(), target=target, caller=source, caller_name=caller_name,
                headers=signed, auth=auth,
            )  # fmt: skip
        except ValueError as exc:  # a name no SIP header can carry: no relay session is left
            log.warning("a call no INVITE can carry", error=str(exc))
            with contextlib.suppress(NgError):
                await self.ng.delete(media_id)
            await tell("failed", {"cause": "INVALID_NUMBER_FORMAT"})
            return None
        self.calls[call.call_id] = call
        await self.apply(call, outs)
        return call

    # -- the legs' outputs -----------------------------------------------------------------
    async def apply(self, call: PhoneCall, outs: list[outputs.Output]) -> None:
        for out in outs:
            if isinstance(out, outputs.Send):
                if self._transport is not None:
                    self._transport.sendto(out.data, (out.host, out.port))
            elif isinstance(out, outputs.EarlyMedia):
                sdp = await self._to_browser(call, out.sdp)
                if sdp is not None:
                    await call.tell("media", {"sdp": sdp})
            elif isinstance(out, outputs.Answered):
                sdp = await self._to_browser(call, out.sdp)
                if sdp is None:
                    await self.apply(call, call.leg.bye(time.time(), "NORMAL_TEMPORARY_FAILURE"))
                    continue
                call.answered = True
                await call.tell("answer", {"sdp": sdp})
            elif isinstance(out, outputs.Failed | outputs.Ended):
                await self._ended(call, out)
            elif isinstance(out, outputs.OfferWanted):
                await self._renegotiate(call, out.sdp)
            elif isinstance(out, outputs.Offered):
                await self._ring(call, out)
            elif isinstance(out, outputs.Dtmf):  # a phone's digit in an INFO
                await call.tell("info", {"dtmf": out.digit})
        self._arm(call)
        self._schedule()

    async def _to_browser(self, call: PhoneCall, sdp: str) -> str | None:
        try:
            return await self.ng.answer(call.media_id, WEBRTC, PHONE, sdp, **MEDIA)
        except NgError as exc:
            log.warning("media relay refused an answer", error=exc.detail)
            return None

    async def _renegotiate(self, call: PhoneCall, sdp: str) -> None:
        """The phone changed its media (hold, resume): rtpengine's side of the call stays
        as it is, so the answer is our offer again, its direction mirrored (RFC 3264 6.1)."""
        if not sdp or not call.offer:
            await self.apply(call, call.leg.reject(488, "Not Acceptable Here", time.time()))
            return
        await self.apply(call, call.leg.answer(mirrored(call.offer, sdp), time.time()))

    async def _ended(self, call: PhoneCall, out: outputs.Failed | outputs.Ended) -> None:
        with contextlib.suppress(NgError):  # no session outlives its call
            await self.ng.delete(call.media_id, missing_ok=True)
        if call.over:
            return
        call.over = True
        if call.inbound:  # the phone hung up or cancelled (or another device won its fork)
            failed = isinstance(out, outputs.Failed)
            call.cause = "ORIGINATOR_CANCEL" if failed and not out.by_remote else out.cause
            await call.tell("bye", {"cause": call.cause})
            return
        kind = "failed" if isinstance(out, outputs.Failed) else "bye"
        await call.tell(kind, {"cause": out.cause})

    # -- datagrams and the timer -----------------------------------------------------------
    def received(self, data: bytes) -> None:
        if data[:1] == b"{":  # SIP never starts so: rtpengine's report of a digit
            self._digit(data)
            return
        try:
            message = parse(data)
        except ParseError:
            return
        call = self.calls.get(message.call_id)
        if call is None:
            if not isinstance(message, Request) or message.method != "INVITE":
                return  # not a call of ours
            if message.get(LEG_HEADER) != self.secret:
                return  # only Kamailio, with the secret, hands us calls
            leg = Leg(self.config, RandomIds())
            call = PhoneCall(self, leg, self.prefix + new_uuid(), _no_caller, inbound=True)
            call.verified = message.get(CALLER_HEADER) or ""
            call.trunk = message.get(TRUNK_HEADER) or ""
            call.dialled = _user(header_uri(message.get("To") or "")) if call.trunk else ""
        outs = call.leg.receive(message, time.time())
        if call.call_id and call.call_id not in self.calls:
            self.calls[call.call_id] = call
        self._spawn(self.apply(call, outs))

    async def _ring(self, call: PhoneCall, offered: outputs.Offered) -> None:
        """A phone calls a WebRTC session: its offer made WebRTC, the session rung."""
        user = _user(offered.callee)
        try:
            sdp = await self.ng.offer(call.media_id, PHONE, offered.sdp, **TO_BROWSER)
        except NgError as exc:
            log.warning("media relay refused a call", error=exc.detail)
            await self.apply(call, call.leg.reject(503, "Media Relay Failed", time.time()))
            return
        call.relayed = True
        heard = None
        if self.ring is not None:
            caller = _user(offered.caller)
            verified = bool(call.verified) and call.verified == caller
            heard = await self.ring(user, caller, offered.caller_name, sdp, call, verified)
        if call.over:  # the browser declined, or the phone gave up, while it was being rung
            if heard is not None:
                await heard("bye", {"cause": call.cause})  # dropped if it declined
            return
        if heard is None:
            call.over = True
            await self.apply(call, call.leg.reject(480, "Temporarily Unavailable", time.time()))
            return
        call.tell = heard
        if call.answered:  # an assistant answers at once
            return
        with contextlib.suppress(Exception):
            await self.apply(call, call.leg.ringing(time.time()))

    async def check_media(self) -> None:
        """Ends the calls whose session rtpengine no longer holds: it restarted, and its
        sessions lived in its memory only. A relay that does not answer ends nothing: a blip
        of its control socket must not cut calls whose media may still flow."""
        live = [c for c in self.calls.values() if c.relayed and not c.over]
        if not live:
            return
        try:
            held = set(await self.ng.list_calls())
        except NgError:
            return
        for call in live:
            if call.media_id in held or call.over:  # (calls placed meanwhile are not in live)
                continue
            log.error(
                "media relay lost a call; ending it",
                call_id=call.call_id,
                cause=MEDIA_LOST,
                relay=self.ng.address,
            )
            await call.lost(MEDIA_LOST)

    def _digit(self, data: bytes) -> None:
        """rtpengine's report of a digit (``--dtmf-log-dest``): the phone's reaches the
        browser's call; the browser's own (played by rtpengine) are not sent back."""
        try:
            report = json.loads(data)
            media_id, tag, event = report["callid"], report["source_tag"], int(report["event"])
        except (ValueError, KeyError, TypeError):
            return
        call = next((c for c in self.calls.values() if c.media_id == media_id), None)
        if call is None or tag != PHONE or not 0 <= event < len(DIGITS) or call.over:
            return
        self._spawn(call.tell("info", {"dtmf": DIGITS[event]}))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._work.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._work.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("SIP leg failed", error=repr(task.exception()))

    def _arm(self, call: PhoneCall) -> None:
        """Files ``call``'s next deadline in the one heap of every leg's: a SIP event costs
        the same with a thousand calls lingering for retransmissions (a leg stays 32 s after
        its answer, RFC 6026's Timer M) as with none."""
        if call.leg.finished:
            if self.calls.get(call.call_id) is call:
                del self.calls[call.call_id]
            self._armed.pop(call.call_id, None)
            return
        deadline = call.leg.next_deadline()
        if deadline is not None and self._armed.get(call.call_id) != deadline:
            self._armed[call.call_id] = deadline
            heapq.heappush(self._deadlines, (deadline, call.call_id))

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._deadlines:
            loop = asyncio.get_running_loop()
            wait = max(0.0, self._deadlines[0][0] - time.time())
            self._timer = loop.call_at(loop.time() + wait, self._due)

    def _due(self) -> None:
        self._timer = None
        now = time.time()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, call_id = heapq.heappop(self._deadlines)
            if self._armed.get(call_id) != deadline:
                continue  # superseded by a later filing
            del self._armed[call_id]
            call = self.calls.get(call_id)
            if call is None:
                continue
            due = call.leg.next_deadline()
            if due is not None and due <= now:
                self._spawn(self.apply(call, call.leg.on_timer(now)))
            else:
                self._arm(call)
        self._schedule()


_DIRECTIONS = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def mirrored(ours: str, theirs: str) -> str:
    """``ours`` with the direction that answers ``theirs`` (hold: sendonly -> recvonly)."""
    wanted = next((a for a in _DIRECTIONS if f"a={a}" in theirs), "sendrecv")
    answer = _DIRECTIONS.get(wanted, "sendrecv")
    lines = [
        x for x in ours.splitlines() if x not in {f"a={d}" for d in (*_DIRECTIONS, "sendrecv")}
    ]
    return "\r\n".join([*lines, f"a={answer}"]) + "\r\n"


async def _no_caller(kind: str, params: dict[str, Any]) -> None:
    return None


def _user(uri: str) -> str:
    """The user part of a SIP URI (``sip:alice@host;x`` -> ``alice``)."""
    found = re.search(r"sips?:([^@;>]+)@", uri)
    return found.group(1) if found else ""
