"""A session dials a phone number, on the router's side: one voxgate holds rings its owner;
any other goes out through the caller's connection's trunk once its rules allow it.

The rules are toll fraud's counter: only an authenticated session of a connection with a
trunk (``outbound.trunk_id``) dials out, to a country in ``outbound.whitelisted_destinations``,
within ``outbound.channel_limit`` calls at once and ``outbound.calls_per_minute`` (and the
trunk's own ``concurrent_call_limit``), counted on the bus so every node holds the same
line. Refusals say why with a Q.850 cause the SDK shows, and nothing reaches the carrier.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Protocol

import structlog

from voxgate import metrics
from voxgate.bus.base import Bus, BusUnavailable
from voxgate.domain.errors import NotFound
from voxgate.domain.ids import new_uuid
from voxgate.domain.principals import Principal
from voxgate.domain.records import CallIds, Connection, PhoneNumber, Trunk, TrunkRoute
from voxgate.gateway.links import Link, phone_key
from voxgate.gateway.phones import Router as PhoneRouter
from voxgate.gateway.phones import dial
from voxgate.rtc.outputs import RouteCall
from voxgate.rtc.session import Session
from voxgate.services.dialplan import Dialled, dialled
from voxgate.services.numbering import E164
from voxgate.services.schemas import outbound_settings
from voxgate.services.trunks import Trunks
from voxgate.webhooks.calls import CallInfo

__all__ = ["TrunkLines", "free_slots", "missed_call", "to_number"]

log = structlog.get_logger("voxgate.calls")
DEFAULT_CALLS_PER_MINUTE = 60
SLOT_TTL = 6 * 3600.0  # a call's place in a limit, should its node die without freeing it


class TrunkLines(Protocol):
    """The SIP edge's view of its trunks' registrations (``sip/carriers.py``)."""

    registered: dict[str, bool]  # trunk id -> up, for the trunks that register

    def ready(self, trunk: Trunk) -> bool: ...


class _Sessions(Protocol):
    def session(self, sessid: str) -> Session | None: ...


class Router(PhoneRouter, Protocol):
    @property
    def host(self) -> _Sessions: ...

    trunks: Trunks | None
    lines: TrunkLines | None

    async def connection(self, conn_id: str) -> Connection | None: ...


async def to_number(router: Router, out: RouteCall, link: Link) -> tuple[Principal, str] | None:
    """A number we hold: (its owner's principal, connection) for the router to ring. Any
    other: placed through the trunk here (or refused); None."""
    session = router.host.session(link.caller[0])
    grant = session.grant if session is not None else None
    conn = await router.connection(grant.connection_id) if grant is not None else None
    if grant is None or grant.anonymous or conn is None:
        await router._fail(link, "CALL_REJECTED")  # assistants only, never the network
        return None
    rules = outbound_settings(conn.settings)  # the defaults for connections made before
    number = dialled(out.destination, str(rules.get("localization") or "US"))
    if number is None:
        await router._fail(link, "INVALID_NUMBER_FORMAT")
        return None
    held = await router.store.number_by_e164(number.e164)
    if held is not None:  # on-net: ring its owner as if dialled by name
        if held.credential_id:
            return Principal.credential(held.credential_id), held.connection_id
        return Principal.connection(held.connection_id), held.connection_id
    trunk, cause = await _outbound(router, conn.id, rules, number, link)
    if router.audit is not None and grant.credential_id:
        details = {"to": number.e164, "trunk_id": trunk.id if trunk else None}
        router.audit.record(
            grant.credential_id, "call_to_number", {**details, "refused": cause or None}
        )
    if trunk is None:
        metrics.TRUNK_REFUSED.labels(cause.lower()).inc()
        log.info("call to a number refused", cause=cause, connection_id=conn.id)
        await router._fail(link, cause)
        return None
    route = TrunkRoute(
        trunk.id, trunk.host, trunk.port, trunk.transport, _caller_id(rules, trunk),
        trunk.username, router.trunks.password(trunk) if router.trunks else None,
    )  # fmt: skip
    session = router.host.session(link.caller[0])
    if session is None or link.caller[1] not in session.calls.legs:
        await free_slots(router.bus, link.slots, link.call.id)  # the caller hung up meanwhile
        return None
    await _dial(router, out, link, number.e164, route)
    return None


def _caller_id(rules: dict[str, Any], trunk: Trunk) -> str:
    """The number the carrier is told: the connection's ``ani_override`` (unless it is for
    emergency calls only, which voxgate does not place), else the trunk's; never the caller's
    own text. Empty: the call goes out anonymous."""
    ani = str(rules.get("ani_override") or "")
    if ani and E164.match(ani) and rules.get("ani_override_type") != "emergency":
        return ani
    return trunk.caller_id or ""


async def _outbound(
    router: Router, conn_id: str, rules: dict[str, Any], number: Dialled, link: Link
) -> tuple[Trunk | None, str]:
    """The trunk the call may take, or the cause it may not."""
    trunk_id = rules.get("trunk_id")
    trunk = None
    if trunk_id and router.trunks is not None:
        try:
            trunk = await router.trunks.get(str(trunk_id))
        except NotFound:
            trunk = None
    if trunk is None or not trunk.enabled:
        return None, "NO_ROUTE_DESTINATION"
    if not number.allowed(list(rules.get("whitelisted_destinations") or [])):
        return None, "OUTGOING_CALL_BARRED"
    if router.lines is None or not router.lines.ready(trunk):
        return None, "NETWORK_OUT_OF_ORDER"  # its registration is down: fail now, not in 30 s
    now, call_id = time.time(), link.call.id
    per_minute = int(rules.get("calls_per_minute") or DEFAULT_CALLS_PER_MINUTE)
    limits = [(f"trunk-cpm:{conn_id}", new_uuid(), per_minute, 60.0)]
    if rules.get("channel_limit"):
        limits.append((f"trunk-calls:{conn_id}", call_id, int(rules["channel_limit"]), SLOT_TTL))
    if trunk.concurrent_call_limit:
        limits.append((f"trunk:{trunk.id}", call_id, trunk.concurrent_call_limit, SLOT_TTL))
    taken: list[str] = []  # the limits a call holds until it ends
    for key, member, limit, ttl in limits:
        try:
            room = await router.bus.take_slot(key, member, limit, ttl, now)
        except BusUnavailable:  # nobody can count: no call goes out uncounted
            room, taken = False, [*taken, key]
        if not room:
            await free_slots(router.bus, taken, call_id)
            return None, "NORMAL_CIRCUIT_CONGESTION"
        if ttl == SLOT_TTL:
            taken.append(key)
    link.slots += taken
    return trunk, ""


async def free_slots(bus: Bus, slots: list[str], call_id: str) -> None:
    """A call's places in its limits, given back (a bus that is down: their TTL frees them)."""
    for key in slots:
        with contextlib.suppress(BusUnavailable):
            await bus.free_slot(key, call_id)


async def _dial(router: Router, out: RouteCall, link: Link, e164: str, trunk: TrunkRoute) -> None:
    """The trunk's leg rings here, through this node's SIP edge."""
    key = phone_key()
    link.callee, link.callee_node, link.caller_node = key, router.node_id, router.node_id
    link.call.to, link.call.from_, link.call.trunk = e164, trunk.caller_id, trunk.trunk_id
    router.links[link.caller] = link
    ids = CallIds.for_leg(link.call.id, "outgoing")
    ring = 120.0  # the carrier says when it gives up (and early media may play meanwhile)
    await router._tell(link.caller, lambda c, k, now: c.routed(k, ring, now, e164, ids))
    await router._report(link, "call.initiated", {"state": "ringing"})
    body = {
        "to": list(key),
        "from": list(link.caller),
        "offer": out.offer.to_dict(),
        "link": link.call.to_dict(),
        "user": e164,
        "trunk": trunk,
    }
    await dial(router, router.node_id, body)


async def missed_call(
    router: Router, caller: str, number: PhoneNumber, trunk_id: str, cause: str
) -> None:
    """A carrier's call to one of our numbers that rang nobody (the trunk heard 480): the
    number's connection hears it began and why it ended."""
    call = CallInfo(caller, number.phone_number, {"incoming": number.connection_id}, None,
                    time.time(), trunk=trunk_id)  # fmt: skip
    link = Link(call, phone_key())
    if router.audit is not None and number.credential_id:
        details = {"from": caller, "to": number.phone_number, "trunk_id": trunk_id}
        router.audit.record(number.credential_id, "call_from_number", {**details, "cause": cause})
    await router._report(link, "call.initiated", {"state": "parked"})
    await router._hangup(link, cause)
