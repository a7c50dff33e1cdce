"""Calls from WebRTC sessions to SIP phones, on the router's side: the caller's leg rings, the
SIP edge (``PhoneLine``, ``sip/phones.py``) carries the call to the phone, and what the phone
says comes back as the caller's frames and the call's webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voxgate.domain.records import CallIds
from voxgate.gateway.links import LegKey, Link, PhoneLeg
from voxgate.rtc.calls import Calls
from voxgate.rtc.legs import cause_code
from voxgate.rtc.outputs import RouteCall

__all__ = ["PhoneLine", "to_phone", "to_the_phone"]

Tell = Callable[[str, dict[str, Any]], Awaitable[None]]


class PhoneLine(Protocol):
    """The SIP edge's user agent, as the router sees it."""

    async def place(
        self, user: str, sdp: str, caller: str, caller_name: str, tell: Tell
    ) -> PhoneLeg | None: ...


class Router(Protocol):
    links: dict[LegKey, Link]

    async def _tell(self, leg: LegKey, event: Callable[[Calls, str, float], list[Any]]) -> None: ...
    async def _report(self, link: Link, event_type: str, extra: dict[str, Any]) -> None: ...
    async def _fail(self, link: Link, cause: str) -> None: ...
    async def _hangup(self, link: Link, cause: str) -> None: ...
    def _unlink(self, link: Link, *keys: LegKey) -> None: ...


async def to_phone(
    router: Router, line: PhoneLine, out: RouteCall, link: Link, user: str, ring: float
) -> None:
    """Ring the caller, INVITE the phone; the phone's answers reach the caller as they come."""
    router.links[link.caller] = link
    ids = CallIds.for_leg(link.call.id, "outgoing")
    await router._tell(link.caller, lambda c, k, now: c.routed(k, ring, now, user, ids))
    await router._report(link, "call.initiated", {"state": "ringing"})

    async def tell(kind: str, params: dict[str, Any]) -> None:
        if router.links.get(link.caller) is not link:
            return  # the caller is gone already
        if kind == "failed":
            router._unlink(link)
            await router._fail(link, str(params.get("cause") or "NORMAL_TEMPORARY_FAILURE"))
            return
        if kind == "bye":
            router._unlink(link)
            cause = str(params.get("cause") or "NORMAL_CLEARING")
            bye = {"cause": cause, "causeCode": cause_code(cause)}
            await router._tell(link.caller, lambda c, k, _now: c.relayed(k, "bye", bye))
            await router._hangup(link, cause)
            return
        if kind == "answer":
            link.answered = True
        await router._tell(link.caller, lambda c, k, _now: c.relayed(k, kind, params))
        if kind == "answer":
            await router._report(link, "call.answered", {"state": "answered"})

    offer = out.offer
    phone = await line.place(user, offer.sdp, offer.caller_number, offer.caller_name, tell)
    link.phone = phone
    if phone is not None and router.links.get(link.caller) is not link:
        await phone.hang_up()  # the caller hung up while we were placing the call


async def to_the_phone(phone: PhoneLeg, kind: str, params: dict[str, Any]) -> None:
    """What the browser's side of a call to a phone says: its hang-up and its digits."""
    if kind == "bye":
        await phone.hang_up()
    elif kind == "info" and params.get("dtmf"):
        for digit in str(params["dtmf"])[:32]:
            await phone.dtmf(digit)
