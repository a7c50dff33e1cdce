"""What the SIP leg tests share: a fake clock, the far side of Kamailio as a scripted peer,
and the real messages captured from Kamailio 5.6 + baresip 1.0 + sipp (tests/golden/sip)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from voxgate.sipleg import Leg, LegConfig, SeededIds, Transport
from voxgate.sipleg.messages import Request, Response, parse
from voxgate.sipleg.outputs import Output, Send

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sip"
OFFER = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\n"
)
ANSWER = OFFER.replace("10.0.0.1", "10.0.0.9").replace("4000", "5000")
HOLD = OFFER + "a=sendonly\r\n"
PROXY_RR = "<sip:10.0.0.2:5060;lr;ftag=abc;did=6e1.8c41>"
PHONE_CONTACT = "<sip:bob@10.0.0.9:5080;transport=udp>"
_BRANCHES = itertools.count(1)  # Kamailio's branches: unique across every phone of a test


def config(transport: Transport = Transport.UDP) -> LegConfig:
    return LegConfig("10.0.0.1", 5070, "10.0.0.2", 5060, transport, "voxgate-test")


def new_leg(transport: Transport = Transport.UDP, seed: int = 1) -> Leg:
    return Leg(config(transport), SeededIds(seed))


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self, dt: float = 0.0) -> float:
        self.now += dt
        return self.now


def sent(outs: list[Output]) -> list[Request | Response]:
    """The messages among the outputs, each checked to survive the wire."""
    messages = [o.message for o in outs if isinstance(o, Send)]
    for m in messages:
        assert parse(bytes(m)) == m
    return messages


def said(outs: list[Output]) -> list[Output]:
    """Everything but the messages: what the leg tells the B2BUA."""
    return [o for o in outs if not isinstance(o, Send)]


def only(outs: list[Output]) -> Request | Response:
    (message,) = sent(outs)
    return message


def request(outs: list[Output], method: str) -> Request:
    found = [m for m in sent(outs) if isinstance(m, Request) and m.method == method]
    assert len(found) == 1, sent(outs)
    return found[0]


def status(outs: list[Output]) -> list[int]:
    return [m.status for m in sent(outs) if isinstance(m, Response)]


def run_timers(leg: Leg, until: float) -> list[tuple[float, list[Output]]]:
    """Fire every deadline up to ``until``, exactly when due: [(when, outputs)]."""
    fired = []
    while (due := leg.next_deadline()) is not None and due <= until:
        fired.append((due, leg.on_timer(due)))
    return fired


@dataclass
class Phone:
    """The far side as Kamailio presents it: responses to our requests, and requests of its
    own in our dialog (two Vias: Kamailio's and the phone's; Record-Route to Kamailio)."""

    tag: str = "ph0ne"
    contact: str = PHONE_CONTACT
    record_route: str = PROXY_RR
    seq: int = 100

    def reply(
        self, req: Request, code: int, reason: str = "", sdp: str = "", *, tag: str | None = None
    ) -> Response:
        to = req.get("To") or ""
        tag = self.tag if tag is None else tag
        if code > 100 and req.to_tag is None and tag:
            to += f";tag={tag}"
        headers = [("Via", v) for v in req.values("Via")]
        headers += [("From", req.get("From") or ""), ("To", to), ("Call-ID", req.call_id)]
        headers.append(("CSeq", req.get("CSeq") or ""))
        if req.method == "INVITE" and 100 < code < 300:
            headers += [("Record-Route", self.record_route), ("Contact", self.contact)]
        if sdp:
            headers.append(("Content-Type", "application/sdp"))
        return Response(code, reason or "Whatever", tuple(headers), sdp.encode())

    def invite(self, sdp: str = OFFER, call_id: str = "call-1@10.0.0.9") -> Request:
        """A first INVITE, as Kamailio relays it to us."""
        headers = (
            ("Record-Route", self.record_route),
            ("Via", f"SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKk{next(_BRANCHES)}"),
            ("Via", "SIP/2.0/UDP 10.0.0.9:5080;rport=5080;branch=z9hG4bKphone1"),
            ("From", f'"Bob" <sip:bob@voxgate.test>;tag={self.tag}'),
            ("To", "<sip:alice@voxgate.test>"),
            ("Call-ID", call_id),
            ("CSeq", f"{self.seq} INVITE"),
            ("Contact", self.contact),
            ("Max-Forwards", "69"),
            ("Content-Type", "application/sdp"),
        )
        self.last = Request("INVITE", "sip:alice@10.0.0.1:5070", headers, sdp.encode())
        return self.last

    def _about_last(self, method: str, to: str) -> Request:
        """CANCEL or ACK for the last INVITE: its Vias (same branch), From, Call-ID, CSeq."""
        invite = self.last
        headers = [("Via", v) for v in invite.values("Via")]
        headers += [("From", invite.get("From") or ""), ("To", to)]
        headers += [("Call-ID", invite.call_id), ("CSeq", f"{invite.cseq.number} {method}")]
        return Request(method, invite.uri, tuple(headers))

    def cancel(self, reason: str = "") -> Request:
        cancel = self._about_last("CANCEL", self.last.get("To") or "")
        if not reason:
            return cancel
        return Request("CANCEL", cancel.uri, (*cancel.headers, ("Reason", reason)))

    def ack_failure(self, leg: Leg) -> Request:
        """The ACK of our non-2xx final to the last INVITE (same branch as the INVITE)."""
        tag = leg.dialog.local_tag  # type: ignore[union-attr]
        return self._about_last("ACK", f"{self.last.get('To')};tag={tag}")

    def in_dialog(
        self,
        leg: Leg,
        method: str,
        body: str = "",
        content_type: str = "application/sdp",
        *,
        seq: int | None = None,
        branch: str | None = None,
    ) -> Request:
        """A request of the phone's in the leg's dialog (it calls the leg's tag ours)."""
        assert leg.dialog is not None
        if seq is None:
            self.seq += 1
            seq = self.seq
        n = next(_BRANCHES)
        ours = leg.dialog.local  # our side's header, with our tag
        theirs = leg.dialog.remote
        headers = [
            ("Via", f"SIP/2.0/UDP 10.0.0.2:5060;branch={branch or f'z9hG4bKk{n}'}"),
            ("Via", f"SIP/2.0/UDP 10.0.0.9:5080;rport=5080;branch=z9hG4bKp{n}"),
            ("From", theirs),
            ("To", ours),
            ("Call-ID", leg.call_id),
            ("CSeq", f"{seq} {method}"),
        ]
        if body:
            headers.append(("Content-Type", content_type))
        return Request(method, "sip:10.0.0.1:5070", tuple(headers), body.encode())

    def ack(self, leg: Leg, seq: int, body: str = "") -> Request:
        return self.in_dialog(leg, "ACK", body, seq=seq)


def golden(name: str, *swaps: tuple[str, str]) -> Request | Response:
    """A captured message, with the capture's ids swapped for the leg's: (old, new) pairs."""
    data = (GOLDEN / name).read_bytes()
    for old, new in swaps:
        data = data.replace(old.encode(), new.encode())
    return parse(data)
