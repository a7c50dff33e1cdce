"""Calls from WebRTC sessions to SIP phones, on the router's side: the caller's leg rings, the
SIP edge (``PhoneLine``, ``sip/phones.py``) carries the call to the phone, and what the phone
says comes back as the caller's frames and the call's webhooks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voxgate.bus.base import Bus
from voxgate.domain.ids import new_uuid
from voxgate.domain.records import CallIds
from voxgate.domain.registrations import Registration
from voxgate.gateway.destinations import principal_for
from voxgate.gateway.links import LegKey, Link, PhoneLeg
from voxgate.rtc.calls import Calls
from voxgate.rtc.legs import cause_code
from voxgate.rtc.outputs import Offer, RouteCall
from voxgate.store.base import Store
from voxgate.webhooks.calls import CallInfo

__all__ = ["BrowserLeg", "PhoneLine", "Tell", "from_phone", "to_phone", "to_the_phone"]

Tell = Callable[[str, dict[str, Any]], Awaitable[None]]


class PhoneLine(Protocol):
    """The SIP edge's user agent, as the router sees it."""

    async def place(
        self, user: str, sdp: str, caller: str, caller_name: str, tell: Tell, *, browser: bool
    ) -> PhoneLeg | None: ...


class Router(Protocol):
    links: dict[LegKey, Link]
    node_id: str
    store: Store
    bus: Bus

    async def offer(self, caller_node: str, body: dict[str, Any]) -> None: ...
    async def _reachable(
        self, regs: list[Registration], caller: str
    ) -> list[Registration] | str: ...

    async def _tell(self, leg: LegKey, event: Callable[[Calls, str, float], list[Any]]) -> None: ...
    async def _report(self, link: Link, event_type: str, extra: dict[str, Any]) -> None: ...
    async def _fail(self, link: Link, cause: str) -> None: ...
    async def _hangup(self, link: Link, cause: str) -> None: ...
    def _unlink(self, link: Link, *keys: LegKey) -> None: ...


async def to_phone(
    router: Router, line: PhoneLine, out: RouteCall, link: Link, reg: Registration, ring: float
) -> None:
    """Ring the caller, INVITE the phone; the phone's answers reach the caller as they come.
    A SIP client in a browser (registered over WebSocket) keeps WebRTC media."""
    user = reg.sip_username
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
    browser = reg.transport.lower() in ("ws", "wss")
    phone = await line.place(
        user, offer.sdp, offer.caller_number, offer.caller_name, tell, browser=browser
    )
    link.phone = phone
    if phone is not None and router.links.get(link.caller) is not link:
        await phone.hang_up()  # the caller hung up while we were placing the call


async def to_the_phone(phone: PhoneLeg, kind: str, params: dict[str, Any]) -> None:
    """What the browser's side of a call with a phone says: its answer (a call from the
    phone), its hang-up, its hold and its digits."""
    if kind == "answer":
        await phone.answer(str(params.get("sdp") or ""))
    elif kind == "bye":
        await phone.hang_up(str(params.get("cause") or "NORMAL_CLEARING"))
    elif kind == "hold":
        await phone.hold(params.get("held") is True)
    elif kind == "info" and params.get("dtmf"):
        for digit in str(params["dtmf"])[:32]:
            await phone.dtmf(digit)


class BrowserLeg:
    """A call from a phone, as the phone's side drives the browser it rang."""

    def __init__(self, router: Router, link: Link) -> None:
        self.router = router
        self.link = link

    async def tell(self, kind: str, params: dict[str, Any]) -> None:
        """The phone hung up (``bye``), or sent a digit (``info``)."""
        link, router = self.link, self.router
        callee = link.callee
        if kind == "bye":
            router._unlink(link)
            cause = str(params.get("cause") or "NORMAL_CLEARING")
            params = {"cause": cause, "causeCode": cause_code(cause)}
        if callee is not None:
            await router._tell(callee, lambda c, k, _now: c.relayed(k, kind, params))
        if kind == "bye":
            await router._hangup(link, str(params["cause"]))


async def from_phone(
    router: Router,
    user: str,
    caller: str,
    caller_name: str,
    sdp: str,
    phone: PhoneLeg,
    verified: bool = False,
) -> Tell | None:
    """Ring ``user``'s WebRTC session on this node for a phone's call: what the phone's side
    says to it from then on; None if nobody rings. A ``verified`` caller is one of our
    credentials: its connection hears the call's webhooks as the outgoing leg."""
    principal, connection_id = await principal_for(router.store, user)
    if principal is None:
        return None
    regs = await router._reachable(await router.bus.registrations(principal), "")
    local = [] if isinstance(regs, str) else [r for r in regs if r.node_id == router.node_id]
    if not local:
        return None
    connections = {"incoming": connection_id}
    if verified:
        _, calling = await principal_for(router.store, caller)
        if calling:
            connections["outgoing"] = calling
    call = CallInfo(caller, user, connections, client_state=None, started=time.time())
    phone_key: LegKey = (f"sip:{new_uuid()}", "phone")
    callee: LegKey = (local[0].session_id, new_uuid())
    link = Link(call, phone_key, callee, phone=phone, caller_node=router.node_id,
                callee_node=router.node_id)  # fmt: skip
    router.links[phone_key] = link
    offer = Offer(sdp, caller_name=caller_name, caller_number=caller)
    body = {"to": list(callee), "from": list(phone_key), "offer": offer.to_dict(),
            "link": call.to_dict(), "fork": False}  # fmt: skip
    await router.offer(router.node_id, body)  # the session was free a moment ago (_reachable)
    return BrowserLeg(router, link).tell
