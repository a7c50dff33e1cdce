"""Calls between WebRTC sessions and SIP phones, on the router's side.

A phone's side of a call is a leg like a session's, keyed ``("sip:<uuid>", "phone")`` and
held by the node whose SIP edge holds the phone's contact: that node's user agent
(``PhoneLine``, ``sip/phones.py``) carries the call to and from the phone, and the router
relays between the two legs as it does between two sessions, on one node or across the bus.
So a browser on one node calls a phone registered through another node's edge, and back.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from voxgate.bus.base import Bus, BusUnavailable, NodeMessage
from voxgate.domain.ids import new_uuid
from voxgate.domain.records import CallIds, TrunkRoute
from voxgate.domain.registrations import Registration
from voxgate.gateway.assistant_calls import Router as AssistantRouter
from voxgate.gateway.assistant_calls import phone_to_assistant
from voxgate.gateway.destinations import principal_for
from voxgate.gateway.links import LegKey, Link, PhoneLeg, bye, is_phone, leg_key, phone_key
from voxgate.rtc.outputs import Offer, RouteCall
from voxgate.services.audit import AuditLog
from voxgate.webhooks.calls import CallInfo

__all__ = [
    "PhoneLine",
    "Tell",
    "dial",
    "from_phone",
    "is_phone",
    "phone_key",
    "ring_phone",
    "to_phone",
    "to_the_phone",
]

Tell = Callable[[str, dict[str, Any]], Awaitable[None]]
ASSISTANT = "assistant-"  # a SIP user that names an assistant: its id


class PhoneLine(Protocol):
    """The SIP edge's user agent, as the router sees it."""

    async def place(
        self,
        user: str,
        sdp: str,
        caller: str,
        caller_name: str,
        tell: Tell,
        *,
        browser: bool,
        trunk: TrunkRoute | None = None,
    ) -> PhoneLeg | None: ...


class Router(AssistantRouter, Protocol):
    """The call router, as calls with phones (and assistants they call) need it."""

    bus: Bus
    phones: PhoneLine | None
    audit: AuditLog | None  # a credential's calls to and from numbers

    async def offer(self, caller_node: str, body: dict[str, Any]) -> None: ...
    async def _reachable(
        self, regs: list[Registration], caller: str
    ) -> list[Registration] | str: ...
    async def _deliver(
        self, node: str, to: LegKey, frm: LegKey, kind: str, params: dict[str, Any]
    ) -> None: ...


async def _send(router: Router, node: str, kind: str, body: dict[str, Any]) -> None:
    """``body`` to ``node``'s router: here at once, elsewhere over the bus."""
    if node == router.node_id:
        await (dial(router, node, body) if kind == "dial" else router.offer(node, body))
        return
    try:
        await router.bus.publish(NodeMessage(node, kind, {**body, "node": router.node_id}))
    except BusUnavailable:
        frm, to = leg_key(body["from"]), leg_key(body["to"])
        await router._deliver(router.node_id, frm, to, "bye", bye("NORMAL_TEMPORARY_FAILURE"))


async def to_phone(
    router: Router, out: RouteCall, link: Link, reg: Registration, ring: float
) -> None:
    """A session calls a phone: its leg rings here; the node holding the phone's contact
    dials it (``dial``)."""
    key = phone_key()
    link.callee, link.callee_node, link.caller_node = key, reg.node_id, router.node_id
    router.links[link.caller] = link
    ids = CallIds.for_leg(link.call.id, "outgoing")
    await router._tell(link.caller, lambda c, k, now: c.routed(k, ring, now, reg.sip_username, ids))
    await router._report(link, "call.initiated", {"state": "ringing"})
    await ring_phone(router, out.offer, link, key, reg, fork=False)


async def ring_phone(
    router: Router, offer: Offer, link: Link, key: LegKey, reg: Registration, *, fork: bool
) -> None:
    """Have the node holding ``reg``'s contact dial it as the leg ``key`` (one ringing leg of
    a forked call when ``fork``). Kamailio rings every contact of the phone's user. A SIP
    client in a browser (registered over WebSocket) keeps WebRTC media."""
    body = {
        "to": list(key),
        "from": list(link.caller),
        "offer": offer.to_dict(),
        "link": link.call.to_dict(),
        "user": reg.sip_username,
        "browser": reg.transport.lower() in ("ws", "wss"),
        "fork": fork,
    }
    await _send(router, reg.node_id, "dial", body)


async def dial(router: Router, caller_node: str, body: dict[str, Any]) -> None:
    """On the node holding the phone's contact: INVITE it; what the phone says goes to the
    caller's leg, wherever it is."""
    key, caller = leg_key(body["to"]), leg_key(body["from"])
    fork = bool(body.get("fork"))
    link = router.links.get(caller) if caller_node == router.node_id and not fork else None
    if link is None:  # a fork's leg has its own copy, as a session's does (``offer``)
        call = CallInfo.from_dict(dict(body.get("link") or {}), time.time())
        link = Link(call, caller, key, caller_node=caller_node, callee_node=router.node_id,
                    fork=fork)  # fmt: skip
    router.links[key] = link

    async def tell(kind: str, params: dict[str, Any]) -> None:
        if router.links.get(key) is not link:
            return  # the caller is gone already (or another fork won)
        undecided = link.fork and not link.answered  # the caller's side reports on forks
        if kind in ("failed", "bye"):
            router._unlink(link, key)
            cause = str(params.get("cause") or "NORMAL_CLEARING")
            await router._deliver(link.caller_node, link.caller, key, "bye", bye(cause))
            if not undecided:
                await router._hangup(link, cause)
            return
        if kind == "answer" and not link.answered:
            link.answered = True
            if not undecided:
                await router._report(link, "call.answered", {"state": "answered"})
        await router._deliver(link.caller_node, link.caller, key, kind, params)

    if router.phones is None:
        return await tell("failed", {"cause": "NORMAL_TEMPORARY_FAILURE"})
    offer = Offer.from_dict(body["offer"])
    phone = await router.phones.place(
        str(body["user"]), offer.sdp, offer.caller_number, offer.caller_name, tell,
        browser=bool(body.get("browser")), trunk=body.get("trunk"),
    )  # fmt: skip
    link.phone = phone
    if phone is not None and router.links.get(key) is not link:
        await phone.hang_up(link.ended)  # the caller hung up (or another fork won) meanwhile


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


async def from_phone(
    router: Router,
    user: str,
    caller: str,
    caller_name: str,
    sdp: str,
    phone: PhoneLeg,
    verified: bool = False,
) -> Tell | None:
    """Ring ``user``'s WebRTC sessions, on whichever nodes they are, for a phone's call (or
    have the assistant ``user`` answer it): returns how the phone's side speaks to the call
    from then on; None if nobody rings. A ``verified`` caller is one of our credentials: its
    connection hears the call's webhooks as the outgoing leg."""
    connections: dict[str, str] = {}
    if verified:
        _, calling = await principal_for(router.store, caller)
        if calling:
            connections["outgoing"] = calling
    if user.startswith(ASSISTANT):
        return await phone_to_assistant(router, user, caller, sdp, phone, connections)
    principal, connection_id = await principal_for(router.store, user)
    if principal is None:
        return None
    regs = await router._reachable(await router.bus.registrations(principal), "")
    if isinstance(regs, str) or not regs:
        return None
    connections["incoming"] = connection_id
    call = CallInfo(caller, phone.dialled or user, connections, None, time.time())
    call.trunk = phone.trunk or None
    if call.trunk and router.audit is not None and principal.startswith("cred:"):
        details = {"from": caller, "to": call.to, "trunk_id": call.trunk}
        router.audit.record(principal.removeprefix("cred:"), "call_from_number", details)
    key = phone_key()
    legs = [((reg.session_id, new_uuid()), reg.node_id) for reg in regs]
    link = Link(call, key, phone=phone, caller_node=router.node_id)
    forked = link.ring(legs)  # ring_all: every session rings, the first answer wins
    router.links[key] = link
    offer = Offer(sdp, caller_name=caller_name, caller_number=caller)
    if forked or legs[0][1] != router.node_id:
        await router._report(link, "call.initiated", {"state": "ringing"})
    for callee, node in legs:
        body = {"to": list(callee), "from": list(key), "offer": offer.to_dict(),
                "link": call.to_dict(), "fork": forked}  # fmt: skip
        await _send(router, node, "offer", body)

    async def tell(kind: str, params: dict[str, Any]) -> None:
        """The phone hung up (``bye``), or sent a digit (``info``)."""
        if router.links.get(key) is not link:
            return
        if kind == "bye":
            router._unlink(link, key)
            cause = str(params.get("cause") or "NORMAL_CLEARING")
            params = bye(cause)
        for node, other in link.others(key):  # every ringing session, until one answers
            await router._deliver(node, other, key, kind, params)
        if kind == "bye":
            await router._hangup(link, str(params["cause"]))

    return tell
