"""This node's registrations on the bus: claim one (under its credential's registration
policy), release it, and take them all back after a bus outage (Redis may have lost them).

A session's token is held on the bus with its registration (one script call), so the same
token presented at two addresses is seen whichever nodes the two sessions are on."""

from __future__ import annotations

import contextlib
import time
from typing import Generic

from voxgate import metrics
from voxgate.bus.base import Bus, BusUnavailable, Displaced, TokenHold
from voxgate.domain.records import Grant, Registration
from voxgate.gateway.directory import Directory, P

__all__ = ["Presence", "RegistrationRefused", "token_hold"]

TOKEN_FALLBACK_TTL = 86_400.0  # a token without an expiry (none are minted) is held a day


class RegistrationRefused(Exception):
    """first_wins, and the credential's registrations are all taken (by ``holder``)."""

    def __init__(self, holder: Registration) -> None:
        super().__init__(holder.user_agent)
        self.holder = holder


class Presence(Generic[P]):
    def __init__(self, bus: Bus, directory: Directory[P], node_id: str) -> None:
        self.bus = bus
        self.directory = directory
        self.node_id = node_id

    def registration(self, peer: P, grant: Grant, user_agent: str) -> Registration:
        session = peer.session
        return Registration(
            principal=grant.principal,
            connection_id=grant.connection_id,
            credential_id=grant.credential_id,
            sip_username=grant.sip_username,
            session_id=session.sessid,
            node_id=self.node_id,
            address=session.address,
            port=session.port,
            user_agent=user_agent,
            registered_at=time.time(),
            policy=grant.admission.policy.value,
            expires_at=grant.expires_at,
        )

    async def claim(self, peer: P, grant: Grant, user_agent: str) -> None:
        """Register; the sessions pushed past the cap hear they were displaced. Raises
        ``RegistrationRefused`` (first_wins lost a race with another login) and
        ``BusUnavailable``: the caller closes the socket."""
        reg = self.registration(peer, grant, user_agent)
        verdict = await self.bus.register(reg, grant.admission, token_hold(grant, peer.jti))
        if verdict.refused_by is not None:
            raise RegistrationRefused(verdict.refused_by)
        if not self.directory.knows(peer):  # its socket dropped while the bus answered, and
            # the session ended: what was just written would outlive it (no node removes a
            # live node's registration), holding its token and displacing the real device
            with contextlib.suppress(BusUnavailable):
                await self.bus.unregister(grant.principal, reg.session_id, grant.jti)
            return
        self.directory.registered[peer.session.sessid] = peer
        if grant.jti is not None:
            peer.jti, peer.rivals = grant.jti, verdict.reused  # answered by Authenticator.track
        for gone in verdict.displaced:
            metrics.DISPLACEMENTS.inc()
            await self.bus.publish(Displaced(gone.session_id, reg))

    async def holder(self, grant: Grant, sessid: str | None) -> Registration | None:
        """Who would refuse a new login of ``grant`` (first_wins with the cap reached);
        ``sessid``: a session the login resumes, never its own rival."""
        if grant.anonymous or grant.admission.policy != "first_wins":
            return None
        held = [r for r in await self.bus.registrations(grant.principal) if r.session_id != sessid]
        return held[0] if len(held) >= grant.admission.max_registrations else None

    async def hold(self, peer: P, grant: Grant) -> tuple[str, ...]:
        """A registered session presents a new token (a refresh): held in place of the old
        one. Returns the addresses presenting it if that is token reuse."""
        token = token_hold(grant, peer.jti)
        if token is None or grant.jti == peer.jti:
            return ()
        try:
            session = peer.session
            rivals = await self.bus.hold_token(session.sessid, session.address, token)
        except BusUnavailable:  # still the old token's holder: the next refresh tries again
            return ()
        peer.jti = grant.jti
        return tuple(rivals)

    async def release(self, peer: P, *, ended: bool = False) -> None:
        """Withdraw the registration. ``ended``: the session is gone, so it lets go of its
        token too; a detached one keeps holding it (it may come back, and it still counts)."""
        grant = peer.session.grant
        # a session that ended mid-login has a grant and maybe a registration on its way,
        # but no principal yet (``track`` comes after): ``claim`` withdraws what lands late
        late = grant.principal if grant is not None and not grant.anonymous else None
        principal = peer.principal or late
        if principal is None:
            return
        self.directory.registered.pop(peer.session.sessid, None)
        jti = peer.jti if ended else None
        with contextlib.suppress(Exception):  # a bus outage: the key expires with its node
            await self.bus.unregister(principal, peer.session.sessid, jti)

    async def reclaim(self) -> None:
        for peer in list(self.directory.registered.values()):
            grant = peer.session.grant
            if grant is not None:
                reg = self.registration(peer, grant, peer.session.user_agent)
                with contextlib.suppress(BusUnavailable):
                    await self.bus.register(reg, grant.admission, token_hold(grant, None))


def token_hold(grant: Grant, previous: str | None) -> TokenHold | None:
    """What a session logged in with ``grant`` holds on the bus: its token, if it has one."""
    if grant.jti is None:
        return None
    until = grant.expires_at or time.time() + TOKEN_FALLBACK_TTL
    return TokenHold(grant.jti, until, previous if previous != grant.jti else None)
