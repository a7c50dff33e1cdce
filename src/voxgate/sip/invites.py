"""Who may call whom over SIP, decided by voxgate for Kamailio.

An INVITE to ``sip:<sip_username>@<domain>`` reaches that identity's SIP contacts when the
caller is one of ours and proved it (digest), or when the callee's connection admits calls from
outside (``sip_uri_calling_preference``):

| preference | no credentials, From one of our users | from anyone else |
| --- | --- | --- |
| ``disabled`` (default) | challenged (407) | refused (403) |
| ``internal`` (and the seed's ``enabled``) | challenged (407) | challenged (407): ours only |
| ``unrestricted`` | challenged (407) | admitted (flood limits per source address) |

A callee registered only over WebRTC is reached through voxgate's own user agent
(``sip/phones.py``), which rings its session with the media made WebRTC by rtpengine; one
with phones and WebRTC sessions ringing together (``ring_all``) gets both: Kamailio forks to
its phones and to our agent, and cancels the losers once one answers. ``sip:<assistant
id>@<domain>`` (ids start ``assistant-``) reaches that AI assistant, for our own phones only.

A number is the phone network's: a carrier's INVITE to one of our numbers is taken from a
trunk's source addresses only and rings the number's owner; our own phones (digest first)
reach our numbers, never a trunk.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from voxgate.bus.base import Bus, BusUnavailable
from voxgate.domain.records import PhoneNumber
from voxgate.domain.registrations import ringing
from voxgate.metrics import TRUNK_REFUSED
from voxgate.services.dialplan import looks_like_number
from voxgate.sip.carriers import Carriers
from voxgate.sip.identity import Identities, SipIdentity
from voxgate.sip.registrar import Verdict

__all__ = ["FORK", "TO_VOXGATE", "InvitePolicy", "Missed"]

log = structlog.get_logger("voxgate.sip")
Missed = Callable[[str, PhoneNumber, str, str], Awaitable[None]]
"""(caller number, the number called, the trunk's id, the cause): a carrier's call that rang
nobody, for the number's connection's webhooks."""

OPEN = "unrestricted"
TO_VOXGATE = "voxgate"  # the callee's registrations are WebRTC sessions: relay to our agent
FORK = "fork"  # its phones and its WebRTC sessions (through our agent) ring side by side
CHALLENGE = Verdict(407, "Proxy Authentication Required")
FORBIDDEN = Verdict(403, "Forbidden")
ASSISTANT = "assistant-"  # sip:assistant-<id>@domain: that assistant answers


class InvitePolicy:
    def __init__(self, identities: Identities, bus: Bus, carriers: Carriers | None = None) -> None:
        self.identities = identities
        self.bus = bus
        self.carriers = carriers or Carriers(identities.store)
        self.missed: Missed | None = None  # the gateway's: webhooks for a number's lost call

    async def decide(
        self,
        caller: str,
        callee: str,
        authenticated: bool,
        now: float,
        source: str = "",
        to_user: str = "",
    ) -> Verdict:
        """``caller``: the digest user when ``authenticated``, else the From user (unproven).
        200: Kamailio looks the callee's contacts up and relays."""
        if not authenticated and _numeric(callee, to_user):
            if await self.identities.get(caller) is not None:
                return CHALLENGE  # one of our phones dialling a number: prove it first
            return await self._from_trunk(caller, callee, to_user, source, now)
        if authenticated:
            ident = await self.identities.get(caller)
            if ident is None or ident.refusal(now) is not None:
                return FORBIDDEN
            if looks_like_number(callee) and await self.identities.get(callee) is None:
                return await self._to_number(callee, now)
        if callee.startswith(ASSISTANT):  # our phones only: an assistant costs its owner
            if not authenticated:
                return CHALLENGE if await self.identities.get(caller) else FORBIDDEN
            found = await self.identities.store.get_assistant(callee)
            return Verdict(200, TO_VOXGATE) if found else Verdict(404, "Not Found")
        target = await self.identities.get(callee)
        if not authenticated:
            ours = await self.identities.get(caller) is not None
            preference = target.sip_uri_calling if target is not None else "disabled"
            if ours or preference == "internal" or preference == "enabled":
                return CHALLENGE
            if preference != OPEN or target is None:
                return Verdict(403, "SIP URI calling is disabled")
        if target is None:
            return Verdict(404, "Not Found")
        return await self._ring(target, now)

    async def _ring(self, target: SipIdentity, now: float) -> Verdict:
        """Who rings for a call to ``target``: its phones, its sessions (our agent), both."""
        if target.refusal(now) is not None:
            return Verdict(480, "Temporarily Unavailable")
        try:
            rung = ringing(await self.bus.registrations(target.principal))
        except BusUnavailable:
            return Verdict(503, "Presence service unavailable")
        if not rung:
            return Verdict(480, "Temporarily Unavailable")
        phones = sum(1 for r in rung if r.sip)
        if not phones:
            return Verdict(200, TO_VOXGATE)  # voxgate's user agent rings the WebRTC session
        return Verdict(200, FORK if phones < len(rung) else "")

    async def _from_trunk(
        self, caller: str, callee: str, to_user: str, source: str, now: float
    ) -> Verdict:
        """A carrier calls one of our numbers: from a trunk's address only (else 403, the
        toll-fraud probe's answer, counted); the number's owner rings by its policy. The
        verdict names it for Kamailio (``<verdict>:<user>:<trunk id>``)."""
        trunk = await self.carriers.trunk_from(source)
        if trunk is None:
            TRUNK_REFUSED.labels("not_a_trunk").inc()
            log.warning("a call to a number from an address no trunk has", source=source)
            return FORBIDDEN
        number = await self.carriers.inbound(trunk, callee, to_user)
        if number is None:
            TRUNK_REFUSED.labels("unknown_number").inc()
            return Verdict(404, "Not Found")
        user, verdict = await self._owner(number, now)
        if verdict.status != 200:
            if self.missed is not None and user:
                await self.missed(caller, number, trunk.id, "SUBSCRIBER_ABSENT")
            return verdict
        return Verdict(200, f"{verdict.body or 'phones'}:{user}:{trunk.id}")

    async def _to_number(self, dialled: str, now: float) -> Verdict:
        """One of our phones dials a number: one we hold rings its owner; the phone network
        is reached from WebRTC sessions only (a phone's call is not bridged to a trunk)."""
        number = await self.carriers.held(dialled)
        if number is None:
            return Verdict(403, "Calls to numbers go out from WebRTC sessions only")
        user, verdict = await self._owner(number, now)
        return (
            Verdict(200, f"{verdict.body or 'phones'}:{user}:")
            if verdict.status == 200
            else verdict
        )

    async def _owner(self, number: PhoneNumber, now: float) -> tuple[str, Verdict]:
        """The SIP user a number rings (its credential's, or its connection's) and who rings."""
        if number.credential_id:
            cred = await self.identities.store.get_credential(number.credential_id)
            user = cred.sip_username if cred is not None else ""
        else:
            conn = await self.identities.store.get_connection(number.connection_id)
            user = conn.user_name if conn is not None else ""
        target = await self.identities.get(user)
        return user, (await self._ring(target, now) if target else Verdict(404, "Not Found"))


def _numeric(*users: str) -> bool:
    """A number (or a carrier's registration id with the number in To) rather than a user."""
    return any(u and looks_like_number(u) for u in users) and not users[0].startswith(ASSISTANT)
