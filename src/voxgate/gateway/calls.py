"""Call routing for the gateway: find the callee, join the legs, relay, report webhooks.

The sans-I/O sessions own the legs and their states; the router only knows which leg talks to
which, and does the I/O: store look-ups, the bus, assistants' media, webhooks. It sees the
gateway through ``SessionHost`` alone: find a local session, feed it outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from voxgate.auth.turn import IceConfig
from voxgate.bus.base import Bus, BusUnavailable, NodeMessage
from voxgate.domain.ids import new_uuid
from voxgate.domain.records import CallIds, Connection, Registration
from voxgate.domain.registrations import ringing
from voxgate.gateway.anchoring import MediaAnchor, anchor_offer, through_the_relay
from voxgate.gateway.assistant_calls import to_assistant
from voxgate.gateway.destinations import principal_for
from voxgate.gateway.links import LegKey, Link, bye, leg_key
from voxgate.gateway.phones import (
    PhoneLine,
    dial,
    is_phone,
    phone_key,
    ring_phone,
    to_phone,
    to_the_phone,
)
from voxgate.gateway.trunk_calls import TrunkLines, free_slots, to_number
from voxgate.rtc.calls import Calls
from voxgate.rtc.outputs import Offer, Output, Relay, RouteCall
from voxgate.rtc.session import Session
from voxgate.services.audit import AuditLog
from voxgate.services.cache import STALE_AFTER, TtlCache
from voxgate.services.dialplan import looks_like_number
from voxgate.services.trunks import Trunks
from voxgate.store.base import Store
from voxgate.webhooks import WebhookSender
from voxgate.webhooks.calls import CallEvents, CallInfo

__all__ = ["CallRouter", "SessionHost"]

log = structlog.get_logger("voxgate.calls")
LegEvent = Callable[[Calls, str, float], list[Output]]  # (the legs, callID, now) -> outputs
_GONE = {"cause": "RECOVERY_ON_TIMER_EXPIRE", "causeCode": 102}  # the other node never came back
_LOST = {"cause": "LOSE_RACE", "causeCode": 502}  # a forked call was answered by another leg
DEFAULT_RING = 90.0


class SessionHost(Protocol):
    """The gateway as the router sees it."""

    node_id: str

    def session(self, sessid: str) -> Session | None: ...
    async def apply_to(self, sessid: str, outs: list[Output]) -> None: ...


class CallRouter:
    def __init__(
        self, host: SessionHost, store: Store, bus: Bus, webhooks: WebhookSender, ice: IceConfig
    ) -> None:
        self.host, self.store, self.bus, self.ice = host, store, bus, ice
        self.node_id = host.node_id
        self.links: dict[LegKey, Link] = {}
        self._orphaned: dict[LegKey, float] = {}  # legs whose other node died: since when
        self.conversations: dict[str, list[dict[str, Any]]] = {}
        self.connections = TtlCache(store.get_connection, STALE_AFTER, max_entries=10_000)
        self.events = CallEvents(self.connection, webhooks)
        self.phones: PhoneLine | None = None  # the SIP edge's user agent, with --sip
        self.anchor: MediaAnchor | None = None  # rtpengine for browser-to-browser calls too
        self.trunks: Trunks | None = None  # calls to numbers: the control plane's trunks
        self.lines: TrunkLines | None = None  # and the SIP edge's registrations with them
        self.audit: AuditLog | None = None  # a credential's calls to and from numbers

    # -- routing ---------------------------------------------------------------------------
    async def route(self, sessid: str, out: RouteCall) -> None:
        session = self.host.session(sessid)
        grant = session.grant if session else None
        if grant is None:
            return
        call = CallInfo(
            from_=out.offer.caller_number,
            to=out.destination,
            connections={"outgoing": grant.connection_id} if grant.connection_id else {},
            client_state=out.offer.client_state,
            started=time.time(),
        )
        link = Link(call, caller=(sessid, out.call_id))
        try:
            await self._route(out, link, grant.conversation_id)
        except Exception:
            log.exception("call routing failed")
            await self._fail(link, "NORMAL_TEMPORARY_FAILURE")

    async def _route(self, out: RouteCall, link: Link, conversation_id: str | None) -> None:
        dest = out.destination
        if dest.startswith(("assistant:", "assistant-")):
            assistant = await self.store.get_assistant(dest.removeprefix("assistant:"))
            if assistant is None:
                return await self._fail(link, "UNALLOCATED_NUMBER")
            return await to_assistant(self, out, link, assistant, conversation_id)
        principal, connection_id = await principal_for(self.store, dest)
        if principal is None and looks_like_number(dest):  # one of ours, or the trunk's
            principal, connection_id = await to_number(self, out, link) or (None, "")
            if principal is None:
                return
        if principal is None:
            return await self._fail(link, "UNALLOCATED_NUMBER")
        held = await self.bus.registrations(principal)
        conn = await self.connection(connection_id)
        inbound = (conn.settings.get("inbound") or {}) if conn else {}
        timeout = float(inbound.get("timeout_2xx_secs") or DEFAULT_RING)
        rung = ringing([r for r in held if r.session_id != link.caller[0]])
        phones = [r for r in rung if r.sip]  # through the SIP edge holding their contacts
        regs = await self._reachable(held, link.caller[0])
        if phones and (isinstance(regs, str) or not regs):
            link.call.connections["incoming"] = connection_id
            return await to_phone(self, out, link, phones[0], timeout)
        if isinstance(regs, str):
            return await self._fail(link, regs)
        link.caller_node = self.node_id
        legs = [((reg.session_id, new_uuid()), reg.node_id) for reg in regs]  # we choose callIDs
        if phones:  # ring_all: the phones ring too (Kamailio rings each contact of their user)
            legs.append((phone_key(), phones[0].node_id))
        forked = link.ring(legs)
        if connection_id:
            link.call.connections["incoming"] = connection_id
        offer = out.offer if phones else await anchor_offer(self, link, out.offer)
        if offer is None:  # rtpengine refused the call it was to anchor
            return await self._fail(link, "NORMAL_TEMPORARY_FAILURE")
        # The caller must be ringing before a callee can possibly answer.
        self.links[link.caller] = link
        ids = CallIds.for_leg(link.call.id, "outgoing")
        await self._tell(link.caller, lambda c, k, now: c.routed(k, timeout, now, dest, ids))
        for key, node in legs:
            if is_phone(key):
                await ring_phone(self, out.offer, link, key, phones[0], fork=forked)
                continue
            body = {
                "to": list(key),
                "from": list(link.caller),
                "offer": offer.to_dict(),
                "link": link.call.to_dict(),
                "fork": forked,
            }
            if node == self.node_id:
                await self.offer(self.node_id, body)
            else:
                await self.bus.publish(NodeMessage(node, "offer", {**body, "node": self.node_id}))
        if forked or legs[0][1] != self.node_id:
            await self._report(link, "call.initiated", {"state": "ringing"})

    async def _reachable(self, regs: list[Registration], caller: str) -> list[Registration] | str:
        """The registrations a call rings (its identity's policy decides), or why none: the
        cause for the caller. A local one must be connected and free."""
        found, busy = [], False
        for reg in ringing([r for r in regs if r.session_id != caller]):
            if reg.sip:  # a SIP phone: calls across SIP and WebRTC come with the media relay
                continue
            if reg.node_id == self.node_id:
                callee = self.host.session(reg.session_id)
                if callee is None:
                    continue
                if callee.busy:
                    busy = True
                    continue
            found.append(reg)
        return found or ("USER_BUSY" if busy else "SUBSCRIBER_ABSENT")

    async def _fail(self, link: Link, cause: str) -> None:
        await self._tell(link.caller, lambda c, k, now: c.failed(k, cause))
        await self._hangup(link, cause)

    # -- relaying --------------------------------------------------------------------------
    async def offer(self, caller_node: str, body: dict[str, Any]) -> None:
        """Ring a local session for a call placed here or on another node."""
        to, frm = leg_key(body["to"]), leg_key(body["from"])
        callee = self.host.session(to[0])
        meta = dict(body.get("link") or {})
        ids = CallIds.for_leg(str(meta.get("id", "")), "incoming")
        offer = Offer.from_dict(body["offer"])
        call_id, outs = (
            callee.incoming_call(offer, time.time(), call_id=to[1], ids=ids)
            if callee is not None
            else (None, [])
        )
        if call_id is None:
            cause = "SUBSCRIBER_ABSENT" if callee is None else "USER_BUSY"
            return await self._deliver(caller_node, frm, to, "bye", bye(cause))
        fork = bool(body.get("fork"))
        link = self.links.get(frm) if caller_node == self.node_id and not fork else None
        if link is None:
            call = CallInfo.from_dict(meta, time.time())
            link = Link(call, frm, to, caller_node=caller_node, callee_node=self.node_id, fork=fork)
        self.links[to] = link
        await self.host.apply_to(to[0], outs)
        if caller_node == self.node_id and not fork:
            await self._report(link, "call.initiated", {"state": "ringing"})

    async def relay(self, sessid: str, out: Relay) -> None:
        key = (sessid, out.call_id)
        link = self.links.get(key)
        if link is None:
            return
        undecided = link.fork and not link.answered  # the caller's side reports on forks
        if out.kind == "bye":
            self._unlink(link, key)
            if not undecided:
                await self._hangup(link, out.cause)
            if link.assistant is not None:
                await link.assistant.close()
        if link.assistant is not None:
            if out.kind == "hold":
                link.assistant.hold(out.params.get("held") is True)
            if out.kind == "update_media":  # aiortc cannot restart ICE: refused at once
                await self._tell(key, lambda c, k, now: c.relayed(k, "update_media_failed", {}))
            return
        if out.kind == "answer" and not link.answered:
            link.answered = True
            if not undecided:
                await self._report(link, "call.answered", {"state": "answered"})
        if link.media and out.kind == "update_media":  # rtpengine holds the media: refused
            await self._tell(key, lambda c, k, now: c.relayed(k, "update_media_failed", {}))
            return
        if link.media and key == link.caller:
            await through_the_relay(self, link, key, out.kind, out.params)
        for node, other in link.others(key):
            if link.phone is not None and is_phone(other) and node == self.node_id:
                await to_the_phone(link.phone, out.kind, out.params)  # unlinked already on bye
                continue
            await self._deliver(node, other, key, out.kind, out.params)

    async def _deliver(
        self, node: str, to: LegKey, frm: LegKey, kind: str, params: dict[str, Any]
    ) -> None:
        """Hand a leg's message to the other leg, here or on its node."""
        if node and node != self.node_id:
            body = {"to": list(to), "from": list(frm), "kind": kind, "params": params}
            with contextlib.suppress(BusUnavailable):
                await self.bus.publish(NodeMessage(node, "relay", body))
            return
        link = self.links.get(to)
        forked = link is not None and to == link.caller and frm != link.callee
        if forked and link is not None and not await self._from_fork(link, frm, kind, params):
            return
        if link is not None and link.phone is not None and is_phone(to):
            if kind == "bye":
                self._unlink(link, to)
            await to_the_phone(link.phone, kind, params)
            return
        if link is not None and link.media and to == link.caller:
            anchored = await through_the_relay(self, link, frm, kind, params)
            if anchored is None:
                return
            params = anchored
        if link is not None and kind == "bye":
            self._unlink(link, to)
            link.ended = str(params.get("cause") or "NORMAL_CLEARING")
        if link is not None and kind == "answer":
            link.answered = True
        await self._tell(to, lambda c, k, now: c.relayed(k, kind, params))

    async def _from_fork(self, link: Link, frm: LegKey, kind: str, params: dict[str, Any]) -> bool:
        """A ringing leg of a forked call speaks to the caller: the first answer wins and the
        others hear LOSE_RACE; a decline only drops its fork, unless it was the last one.
        Returns whether the caller hears it."""
        if frm not in link.forks:
            return False  # a fork that lost (its bye is on its way): it has nothing to say
        if kind == "answer":
            for node, loser in link.chose(frm):
                await self._deliver(node, loser, link.caller, "bye", _LOST)
            await self._report(link, "call.answered", {"state": "answered"})
            return True
        if kind != "bye":
            return False  # nothing from a leg the caller has not chosen
        del link.forks[frm]
        if link.forks:
            return False
        await self._hangup(link, str(params.get("cause") or "NORMAL_CLEARING"))
        return True

    async def on_node_message(self, msg: NodeMessage) -> None:
        if msg.node_id != self.node_id:
            return
        body = msg.body
        if msg.kind == "offer":
            await self.offer(str(body.get("node", "")), body)
        elif msg.kind == "dial":  # a session elsewhere calls a phone whose contact is here
            await dial(self, str(body.get("node", "")), body)
        elif msg.kind == "relay":
            to, frm = leg_key(body["to"]), leg_key(body["from"])
            await self._deliver(self.node_id, to, frm, str(body["kind"]), dict(body["params"]))
        elif msg.kind == "moved":
            link = self.links.get(leg_key(body["key"]))
            if link is not None:
                link.moved(leg_key(body["moved"]), str(body["node"]))

    def in_progress(self) -> list[dict[str, Any]]:
        """The calls placed from this node, ringing or answered (each once: by its caller's
        node, the one that holds the caller's leg)."""
        return [link.summary() for key, link in self.links.items() if key == link.caller]

    # -- a session moving between nodes ---------------------------------------------------
    def links_of(self, sessid: str) -> list[dict[str, Any]]:
        """The links of a session's legs, for the bus (assistant calls stay with their
        node: their media lives there)."""
        return [
            {"leg": key[1], **link.to_dict()}
            for key, link in self.links.items()
            if key[0] == sessid and link.assistant is None
        ]

    async def adopt(self, sessid: str, links: list[dict[str, Any]]) -> None:
        """A session's legs now live here: take their links, tell the other legs' nodes."""
        now = time.time()
        for data in links:
            key = (sessid, str(data["leg"]))
            link = Link.from_dict(data, now)
            link.moved(key, self.node_id)
            node, other = link.other(key)
            local = self.links.get(other) if other is not None else None
            if local is not None:  # the other leg is here too: one link for both
                local.moved(key, self.node_id)
                link = local
            elif other is not None and node:
                body = {"key": list(other), "moved": list(key), "node": self.node_id}
                with contextlib.suppress(BusUnavailable):
                    await self.bus.publish(NodeMessage(node, "moved", body))
            self.links[key] = link

    async def sweep_forever(self, window: float) -> None:
        while True:
            await asyncio.sleep(max(0.5, window / 4))
            try:
                await self.sweep(time.time(), window)
            except Exception:
                log.exception("call sweep failed")

    async def sweep(self, now: float, window: float) -> None:
        """End the calls whose other leg was on a node that died, once nobody has reattached
        it for ``window`` seconds: the local party hears RECOVERY_ON_TIMER_EXPIRE."""
        dead: dict[str, bool] = {}
        for key, link in list(self.links.items()):
            node, other = link.other(key)
            if other is None or not node or node == self.node_id or self.links.get(key) is not link:
                continue
            if self.host.session(key[0]) is None and not is_phone(key):
                continue
            if node not in dead:
                dead[node] = not await self.bus.node_alive(node)
            if not dead[node]:
                self._orphaned.pop(key, None)
                continue
            since = self._orphaned.setdefault(key, now)
            if now - since >= window:
                del self._orphaned[key]
                await self._deliver(self.node_id, key, other, "bye", _GONE)
                self._unlink(link, key)
                await self._hangup(link, str(_GONE["cause"]))

    def release(self, sessid: str) -> None:
        """Another node took this session over: forget its links, say nothing to anyone."""
        for key in [k for k in self.links if k[0] == sessid]:
            del self.links[key]

    def _unlink(self, link: Link, *keys: LegKey) -> None:
        for key in (link.caller, link.callee, *keys):
            if key is not None and self.links.get(key) is link:
                del self.links[key]

    async def _tell(self, leg: LegKey, event: LegEvent) -> None:
        """Tell a local leg's session something about the call and apply what it answers."""
        session = self.host.session(leg[0])
        if session is not None:
            now = time.time()
            await self.host.apply_to(leg[0], session.on_call(lambda c: event(c, leg[1], now)))

    # -- webhooks --------------------------------------------------------------------------
    async def connection(self, conn_id: str) -> Connection | None:
        return await self.connections.get(conn_id) if conn_id else None

    async def _report(self, link: Link, event_type: str, extra: dict[str, Any]) -> None:
        await self.events.report(link.call, event_type, extra)

    async def _hangup(self, link: Link, cause: str) -> None:
        await free_slots(self.bus, link.slots, link.call.id)  # a trunk call's, in its limits
        await self._report(link, "call.hangup", {"state": "hangup", "hangup_cause": cause.lower()})
