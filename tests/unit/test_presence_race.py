"""A session whose socket drops while its registration is on the wire (the bus answers after
the session ended) leaves no registration and no token hold behind: no node would ever
remove a live node's registration, and it would displace the user's real device."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from voxgate.bus.base import TokenHold
from voxgate.bus.local import LocalBus
from voxgate.config import Settings
from voxgate.domain.records import Grant, Registration
from voxgate.domain.registrations import Admission, Verdict
from voxgate.gateway.directory import Directory, Peer
from voxgate.gateway.presence import Presence
from voxgate.rtc import Session

T0 = 1_000_000.0


class SlowBus(LocalBus):
    """The embedded bus, whose registration answers only when the test says."""

    def __init__(self) -> None:
        super().__init__("n1")
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def register(
        self, reg: Registration, admission: Admission, token: TokenHold | None = None
    ) -> Verdict:
        self.asked.set()
        await self.answer.wait()
        return await super().register(reg, admission, token)


def _logged_in() -> tuple[Peer, Grant]:
    session = Session(Settings().session_config("n1"), "198.51.100.7", 4000, T0)
    grant = Grant("token", "cred:c1", "conn", "c1", "gencred", T0 + 3600, jti="j1")
    session.grant = grant
    return Peer(None, session), grant


async def test_a_session_ended_while_registering_leaves_nothing_on_the_bus() -> None:
    bus = SlowBus()
    directory: Directory[Peer] = Directory()
    presence = Presence(bus, directory, "n1")
    peer, grant = _logged_in()
    directory.add(peer)
    claim = asyncio.create_task(presence.claim(peer, grant, "sdk"))
    await bus.asked.wait()
    directory.forget(peer)  # the socket dropped; the session had no call: it ends
    await presence.release(peer, ended=True)
    bus.answer.set()
    await claim
    assert await bus.registrations(grant.principal) == []
    assert directory.registered == {}
    directory.track(peer, grant.principal, grant.jti)  # the login's tail, arriving late
    assert directory.by_principal == {}
    elsewhere, _ = _logged_in()  # the same token from another address: not reuse, since
    other = replace(presence.registration(elsewhere, grant, "sdk"), address="203.0.113.9")
    held = TokenHold("j1", T0 + 3600)  # the ended session holds nothing
    assert (await bus.register(other, grant.admission, held)).reused == ()


async def test_a_session_still_here_is_registered() -> None:
    bus = SlowBus()
    bus.answer.set()
    directory: Directory[Peer] = Directory()
    presence = Presence(bus, directory, "n1")
    peer, grant = _logged_in()
    directory.add(peer)
    await presence.claim(peer, grant, "sdk")
    assert [r.session_id for r in await bus.registrations(grant.principal)] == [peer.session.sessid]
