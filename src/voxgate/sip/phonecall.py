"""One call with a phone as the gateway holds it (``PhoneCall``: the router's ``PhoneLeg``),
and the rtpengine profiles that make each side's media what it takes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from voxgate.domain.records import TrunkRoute
from voxgate.sip.bencode import Encodable
from voxgate.sip.ng import NgClient, NgError
from voxgate.sipleg import InvalidCommand, Leg, outputs
from voxgate.sipleg.causes import status_for_cause

__all__ = [
    "MEDIA",
    "PHONE",
    "TO_BROWSER",
    "TO_PHONE",
    "TO_TRUNK",
    "TRUNK_HEADER",
    "WEBRTC",
    "CallerEvents",
    "Line",
    "PhoneCall",
    "to_carrier",
]

log = structlog.get_logger("voxgate.sip")


class Line(Protocol):
    """The user agent a call belongs to (``sip/phones.py``): its media relay, and what
    carries the leg's outputs."""

    ng: NgClient

    async def apply(self, call: PhoneCall, outs: list[outputs.Output]) -> None: ...


TO_BROWSER: dict[str, Encodable] = {  # a phone's offer, made one a browser takes
    "transport-protocol": "UDP/TLS/RTP/SAVPF",
    "ICE": "force",
    "DTLS": "passive",
    "SDES": ["off"],
    "rtcp-mux": ["offer"],
    "flags": ["generate-mid", "inject-DTMF"],
    # a phone whose codecs no browser speaks (GSM, G.729...): Opus and PCMU are offered too,
    # after its own, and rtpengine transcodes only if the browser takes one of them
    "codec": {"transcode": ["opus", "PCMU"]},
}
TO_PHONE: dict[str, Encodable] = {  # the browser's offer, made one a phone takes
    "transport-protocol": "RTP/AVP",
    "ICE": "remove",
    "DTLS": "off",
    "SDES": ["off"],
    "rtcp-mux": ["demux"],
    "flags": ["strip-extmap", "inject-DTMF"],
    "codec": {"transcode": ["PCMU", "PCMA"]},  # G.711 for a browser that offered Opus alone
}
TO_TRUNK: dict[str, Encodable] = {  # towards a carrier: G.711 only (and its digits)
    **TO_PHONE,
    "codec": {
        "mask": ["all"],
        "except": ["PCMU", "PCMA", "telephone-event"],
        "transcode": ["PCMU", "PCMA"],
    },
}
MEDIA = {"flags": ["inject-DTMF"]}  # on answers too: a browser's digits are played (RFC 4733)


TRUNK_HEADER = "X-Voxgate-Trunk"  # our INVITE goes out to the phone network (Kamailio drops it)


def to_carrier(
    trunk: TrunkRoute, number: str, domain: str
) -> tuple[str, str, tuple[tuple[str, str], ...], tuple[str, str] | None]:
    """What our INVITE to ``number`` through ``trunk`` says: (request URI, From URI, headers,
    the digest credentials for the carrier's challenge). The trunk's caller id is asserted
    (P-Asserted-Identity) as From; without one the call goes out anonymous."""
    source = f"sip:{trunk.caller_id or 'anonymous'}@{domain}"
    headers: tuple[tuple[str, str], ...] = ((TRUNK_HEADER, trunk.trunk_id),)
    if trunk.caller_id:
        headers += (("P-Asserted-Identity", f"<{source}>"),)
    auth = (trunk.username, trunk.password) if trunk.username and trunk.password else None
    return f"sip:{number}{trunk.uri_suffix}", source, headers, auth


CallerEvents = Callable[[str, dict[str, Any]], Awaitable[None]]
"""What the browser's side hears: ("media", {sdp}), ("answer", {sdp}), ("failed", {cause}),
("bye", {cause}), ("info", {dtmf}). The gateway turns them into frames for its session."""
WEBRTC, PHONE = "webrtc", "phone"  # the two parties' names (tags) at rtpengine


class PhoneCall:
    """One call with a phone, as the gateway holds it (``PhoneLeg``): ours to a phone, or a
    phone's to a browser (``inbound``)."""

    def __init__(
        self, phones: Line, leg: Leg, media_id: str, tell: CallerEvents, *, inbound: bool
    ) -> None:
        self.phones = phones
        self.leg = leg
        self.media_id = media_id  # the call's name at rtpengine
        self.tell = tell
        self.inbound = inbound
        self.offer = ""  # what we offered the phone (rtpengine's side)
        self.verified = ""  # a phone's call: the SIP user Kamailio authenticated, if any
        self.trunk = ""  # a carrier's call to one of our numbers: the trunk it came in on
        self.dialled = ""  # ... and the number it dialled (the To user)
        self.relayed = False  # rtpengine holds the call (its offer went through)
        self.answered = False
        self.over = False
        self.cause = "ORIGINATOR_CANCEL"  # a phone's call: why it ended (a CANCEL's Reason)

    @property
    def call_id(self) -> str:
        return self.leg.call_id

    async def hang_up(self, cause: str = "NORMAL_CLEARING") -> None:
        """The browser hung up, declined or gave up: a BYE once answered; before that a
        CANCEL (our call) or, to a calling phone, the cause's status (USER_BUSY: 486)."""
        if self.over:
            return
        self.over = True
        now = time.time()
        if self.inbound:
            status, reason = status_for_cause(cause)
            try:
                outs = self.leg.reject(status, reason, now)
            except InvalidCommand:  # answered already: then it is a hang-up
                outs = self.leg.bye(now, cause)
        else:
            outs = self.leg.bye(now, cause)
        await self.phones.apply(self, outs)

    async def dtmf(self, digit: str, duration: int = 250) -> None:
        """A browser's digit: RFC 4733 events that rtpengine plays into the phone's stream, as
        phones and carriers expect; SIP INFO when the relay cannot (a digit the leg refuses
        now is dropped)."""
        try:
            await self.phones.ng.play_dtmf(self.media_id, digit, WEBRTC, duration_ms=duration)
            return
        except NgError as exc:
            log.info("media relay could not play a digit; sending INFO", error=exc.detail)
        with contextlib.suppress(InvalidCommand, ValueError):
            await self.phones.apply(self, self.leg.info_dtmf(digit, duration, time.time()))

    async def hold(self, held: bool) -> None:
        """The browser held the call (the SDK's ``hold()``): rtpengine stops relaying either
        party, so the hold holds whatever the phone does; ``unhold`` relays again."""
        ng = self.phones.ng
        try:
            for tag in (WEBRTC, PHONE):
                await (ng.block_media if held else ng.unblock_media)(self.media_id, tag)
        except NgError as exc:
            log.warning("media relay could not hold a call", error=exc.detail)

    async def lost(self, cause: str) -> None:
        """The call cannot go on (its media relay lost it): both sides hear ``cause``."""
        answered = self.answered
        await self.hang_up(cause)
        kind = "bye" if answered or self.inbound else "failed"
        await self.tell(kind, {"cause": cause})

    async def answer(self, sdp: str) -> None:
        """The browser answered a call from the phone: rtpengine's side of its answer."""
        try:
            ours = await self.phones.ng.answer(self.media_id, PHONE, WEBRTC, sdp, **MEDIA)
        except NgError as exc:
            log.warning("media relay refused an answer", error=exc.detail)
            await self.phones.apply(self, self.leg.reject(500, "Media Relay Failed", time.time()))
            return
        self.answered = True
        await self.phones.apply(self, self.leg.answer(ours, time.time()))
