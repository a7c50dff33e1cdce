"""Media anchoring for calls between two WebRTC sessions (``--anchor-media``), on rtpengine.

Without it a browser-to-browser call's media flows peer to peer (or through TURN) and
voxgate never sees it: the unmodified SDK's ``hold()`` only tells the other side, and the
audio goes on. Anchored, each party's ICE and DTLS-SRTP end at rtpengine, which relays
between them: a hold becomes rtpengine's ``block media`` (the audio stops both ways whatever
the other page does), and rtpengine's packet counters show in the console's call view.

The caller's node anchors the call, with its own rtpengine (``gateway/anchoring.py`` says
when): the offer is rewritten before it rings anyone, the answer before the caller hears it;
every end deletes the rtpengine call.
"""

from __future__ import annotations

import structlog

from voxgate.domain.ids import new_uuid
from voxgate.sip.bencode import Encodable
from voxgate.sip.ng import NgClient, NgError

__all__ = ["Anchor"]

log = structlog.get_logger("voxgate.anchor")

CALLER, CALLEE = "caller", "callee"  # the two parties' tags at rtpengine
BROWSER: dict[str, Encodable] = {  # the callee's side; the caller's is its offer's terms
    "transport-protocol": "UDP/TLS/RTP/SAVPF",
    "ICE": "force",
    "DTLS": "passive",
    "SDES": ["off"],
    "rtcp-mux": ["require"],
    "flags": ["generate-mid"],
}


class Anchor:
    """The router's ``MediaAnchor`` (``gateway/anchoring.py``), on this node's rtpengine: an
    offer or answer it refuses is None (logged), and the call fails."""

    def __init__(self, ng: NgClient, node_id: str) -> None:
        self.ng = ng
        self.prefix = f"vx-{node_id}-a-"  # rtpengine call ids: the node's sweep knows them

    def new_id(self) -> str:
        return self.prefix + new_uuid()

    async def offer(self, media_id: str, sdp: str) -> str | None:
        """The caller's offer as the callee receives it: rtpengine's candidates and keys."""
        try:
            return await self.ng.offer(media_id, CALLER, sdp, **BROWSER)
        except NgError as exc:
            log.warning("media relay refused a call to anchor", error=exc.detail)
            return None

    async def answer(self, media_id: str, sdp: str) -> str | None:
        try:
            return await self.ng.answer(media_id, CALLER, CALLEE, sdp)  # the caller's terms
        except NgError as exc:
            log.warning("media relay refused an anchored answer", error=exc.detail)
            return None

    async def hold(self, media_id: str, held: bool) -> None:
        """Either party's hold stops the relay both ways; unhold starts it again."""
        try:
            for tag in (CALLER, CALLEE):
                await (self.ng.block_media if held else self.ng.unblock_media)(media_id, tag)
        except NgError as exc:
            log.warning("media relay could not hold a call", error=exc.detail)

    async def delete(self, media_id: str) -> None:
        try:
            await self.ng.delete(media_id, missing_ok=True)
        except NgError as exc:
            log.warning("media relay could not end a call", error=exc.detail)

    async def counters(self, media_id: str) -> dict[str, int] | None:
        """Packets and bytes rtpengine received from each party; None if it cannot say."""
        try:
            reply = await self.ng.query(media_id)
        except NgError:
            return None
        found: dict[str, int] = {}
        tags = reply.get("tags")
        for tag in (CALLER, CALLEE):
            party = tags.get(tag) if isinstance(tags, dict) else None
            packets = octets = 0
            medias = party.get("medias") if isinstance(party, dict) else None
            for media in medias if isinstance(medias, list) else []:
                streams = media.get("streams") if isinstance(media, dict) else None
                for stream in streams if isinstance(streams, list) else []:
                    stats = stream.get("stats") if isinstance(stream, dict) else None
                    if isinstance(stats, dict):
                        packets += _int(stats.get("packets"))
                        octets += _int(stats.get("bytes"))
            found[f"{tag}_packets"], found[f"{tag}_bytes"] = packets, octets
        return found


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
