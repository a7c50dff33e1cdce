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
"""

from __future__ import annotations

from voxgate.bus.base import Bus, BusUnavailable
from voxgate.domain.registrations import ringing
from voxgate.sip.identity import Identities
from voxgate.sip.registrar import Verdict

__all__ = ["FORK", "TO_VOXGATE", "InvitePolicy"]

OPEN = "unrestricted"
TO_VOXGATE = "voxgate"  # the callee's registrations are WebRTC sessions: relay to our agent
FORK = "fork"  # its phones and its WebRTC sessions (through our agent) ring side by side
CHALLENGE = Verdict(407, "Proxy Authentication Required")
FORBIDDEN = Verdict(403, "Forbidden")
ASSISTANT = "assistant-"  # sip:assistant-<id>@domain: that assistant answers


class InvitePolicy:
    def __init__(self, identities: Identities, bus: Bus) -> None:
        self.identities = identities
        self.bus = bus

    async def decide(self, caller: str, callee: str, authenticated: bool, now: float) -> Verdict:
        """``caller``: the digest user when ``authenticated``, else the From user (unproven).
        200: Kamailio looks the callee's contacts up and relays."""
        if authenticated:
            ident = await self.identities.get(caller)
            if ident is None or ident.refusal(now) is not None:
                return FORBIDDEN
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
