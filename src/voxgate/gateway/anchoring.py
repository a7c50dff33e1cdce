"""When the router anchors a browser-to-browser call's media (``--anchor-media``), on the
caller's node: the offer through the relay before anyone rings, the answer before the caller
hears it, a hold as the relay's block, a hang-up as the end of the relay's call, and the
relay's packet counters for the console. The relay itself is ``sip/anchor.py`` (rtpengine),
behind ``MediaAnchor``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

import structlog

from voxgate.gateway.links import LegKey, Link, bye
from voxgate.rtc.calls import Calls
from voxgate.rtc.outputs import Offer

__all__ = ["MediaAnchor", "anchor_offer", "read_relays_forever", "through_the_relay"]

log = structlog.get_logger("voxgate.calls")


class MediaAnchor(Protocol):
    def new_id(self) -> str: ...
    async def offer(self, media_id: str, sdp: str) -> str | None: ...
    async def answer(self, media_id: str, sdp: str) -> str | None: ...
    async def hold(self, media_id: str, held: bool) -> None: ...
    async def delete(self, media_id: str) -> None: ...
    async def counters(self, media_id: str) -> dict[str, int] | None: ...


class Router(Protocol):
    anchor: MediaAnchor | None
    links: dict[LegKey, Link]

    async def _tell(self, leg: LegKey, event: Callable[[Calls, str, float], list[Any]]) -> None: ...
    async def _deliver(
        self, node: str, to: LegKey, frm: LegKey, kind: str, params: dict[str, Any]
    ) -> None: ...
    async def _hangup(self, link: Link, cause: str) -> None: ...
    def _unlink(self, link: Link, *keys: LegKey) -> None: ...


async def anchor_offer(router: Router, link: Link, offer: Offer) -> Offer | None:
    """The offer the callees receive: the relay's, when the router anchors; None if the
    relay refused it."""
    if router.anchor is None:
        return offer
    media = router.anchor.new_id()
    sdp = await router.anchor.offer(media, offer.sdp)
    if sdp is None:
        return None
    link.media = media
    return replace(offer, sdp=sdp)


async def through_the_relay(
    router: Router, link: Link, frm: LegKey, kind: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    """What a party of an anchored call says, as the relay must hear it first: the callee's
    answer becomes the relay's (None if refused: the call ends on both sides), a hold blocks
    the relay both ways, a hang-up ends its call."""
    anchor = router.anchor
    if anchor is None:
        return params
    if kind == "hold":
        await anchor.hold(link.media, params.get("held") is True)
    elif kind == "bye":
        await anchor.delete(link.media)
    elif kind == "answer":
        sdp = await anchor.answer(link.media, str(params.get("sdp") or ""))
        if sdp is not None:
            return {**params, "sdp": sdp}
        failed = bye("NORMAL_TEMPORARY_FAILURE")
        router._unlink(link, link.caller)
        await anchor.delete(link.media)
        await router._deliver(link.callee_node, frm, link.caller, "bye", failed)
        await router._tell(link.caller, lambda c, k, now: c.relayed(k, "bye", failed))
        await router._hangup(link, "NORMAL_TEMPORARY_FAILURE")
        return None
    return params


async def read_relays_forever(router: Router, interval: float) -> None:
    """The packet counters of the anchored calls placed here, for the console's call view,
    read as often as the node reports (nothing to read without ``--anchor-media``)."""
    while True:
        await asyncio.sleep(interval)
        if router.anchor is None:
            continue
        try:
            for key, link in list(router.links.items()):
                if link.media and key == link.caller:
                    link.relay = await router.anchor.counters(link.media)
        except Exception:
            log.exception("reading the relay's counters failed")
