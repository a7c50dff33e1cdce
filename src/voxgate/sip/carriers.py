"""The operator's trunks as the SIP edge sees them: which source addresses are a carrier's,
which of our numbers a carrier's INVITE is for, and whether a trunk that registers with its
carrier is registered now (``lines``: Kamailio's ``uac`` module keeps the registrations).

A trunk's addresses are its ``source_addresses`` (CIDRs) or, with none, what its host name
resolves to; both are read again every few seconds, so a trunk added, changed or disabled
over REST takes effect on every node without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from voxgate.domain.records import PhoneNumber, Trunk
from voxgate.services.dialplan import dialled
from voxgate.sip.rpc import KamailioRpc, RpcError
from voxgate.store.base import Store

__all__ = ["Carriers", "Inbound", "registration_id"]

log = structlog.get_logger("voxgate.sip")
RELOAD = 5.0  # seconds a trunk list (and its resolved addresses) is kept
MISS_RELOAD = 1.0  # at most this often, read again for an address that matched none
REGISTER_EXPIRES = 300  # what we ask a carrier for; uac refreshes before it lapses
ONLINE = 4  # uac's flag: the carrier accepted the registration (UAC_REG_ONLINE)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DIGITS = re.compile(r"^\+?\d{3,16}$")


@dataclass(frozen=True, slots=True)
class Inbound:
    """A carrier's call to one of our numbers."""

    trunk: Trunk
    number: PhoneNumber


class Carriers:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._trunks: list[tuple[Trunk, list[Network]]] = []
        self._loaded = -RELOAD
        self._missed = -MISS_RELOAD
        self._lock = asyncio.Lock()
        self.registered: dict[str, bool] = {}  # trunk id -> its carrier accepted us (lines)
        self.opener: Callable[[Trunk], str | None] = lambda trunk: None  # a trunk's password

    def ready(self, trunk: Trunk) -> bool:
        """May a call go out on ``trunk`` now? Not while its registration is down."""
        return not trunk.register or self.registered.get(trunk.id, False)

    def registration(self, trunk: Trunk) -> str:
        """What a trunk's registration is now: registered, failed (the carrier refused us or
        is silent; retried every 30 s), or not_registering."""
        if not trunk.register:
            return "not_registering"
        return "registered" if self.registered.get(trunk.id) else "failed"

    async def keep_registered(self, rpc: KamailioRpc) -> None:
        """Makes Kamailio's registrations (the ``uac`` module's) those of the enabled trunks
        that want one, and reads back which are up. A trunk whose details changed is
        registered anew; one gone or disabled is unregistered."""
        wanted = {registration_id(t): t for t, _ in await self.trunks() if t.register}
        held = {str(r["l_uuid"]): r for r in await rpc.call("uac.reg_dump") or []}
        for uuid, row in list(held.items()):
            trunk = wanted.get(uuid)
            if trunk is None or _row(trunk, self.opener(trunk)) != _held(row):
                with contextlib.suppress(RpcError):
                    await rpc.call("uac.reg_unregister", "l_uuid", uuid)
                await rpc.call("uac.reg_remove", uuid)
                del held[uuid]
        for uuid, trunk in wanted.items():
            if uuid not in held:
                row = _row(trunk, self.opener(trunk))
                await rpc.call("uac.reg_add", *row[:10], REGISTER_EXPIRES, 0, 0, ".", ".")
        dump = {str(r["l_uuid"]): r for r in await rpc.call("uac.reg_dump") or []}
        self.registered = {
            t.id: bool(int(dump.get(u, {}).get("flags", 0)) & ONLINE)
            and int(dump.get(u, {}).get("diff_expires", 0)) > 0
            for u, t in wanted.items()
        }

    async def trunks(self, max_age: float = RELOAD) -> list[tuple[Trunk, list[Network]]]:
        """The enabled trunks with the networks they call from, read at most ``max_age``
        seconds ago."""
        async with self._lock:
            if time.monotonic() - self._loaded >= max_age:
                page = await self.store.list_trunks(1, 1000)
                enabled = [t for t in page.items if t.enabled]
                self._trunks = [(t, await _networks(t)) for t in enabled]
                self._loaded = time.monotonic()
            return self._trunks

    async def trunk_from(self, source: str) -> Trunk | None:
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return None
        found = _match(address, await self.trunks())
        if found is None and time.monotonic() - self._missed >= MISS_RELOAD:
            self._missed = time.monotonic()  # a trunk just added answers at once; a flood
            found = _match(address, await self.trunks(0.0))  # of strangers costs 1 read/s
        return found

    async def inbound(self, trunk: Trunk, *users: str) -> PhoneNumber | None:
        """The number of ours a carrier's INVITE names (its request URI's user, else its To
        user), however the carrier writes it: ``+E.164``, E.164 digits, or national."""
        for user in users:
            found = await self.held(user)
            if found is not None and found.trunk_id in (None, trunk.id):
                return found
        return None

    async def held(self, user: str) -> PhoneNumber | None:
        """The number of ours ``user`` names, if any."""
        if not _DIGITS.match(user):
            return None
        digits = user.lstrip("+")
        for candidate in ("+" + digits, *(n.e164 for n in [dialled(user, "US")] if n)):
            found = await self.store.number_by_e164(candidate)
            if found is not None:
                return found
        return None


def _match(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    trunks: list[tuple[Trunk, list[Network]]],
) -> Trunk | None:
    return next((t for t, nets in trunks if any(address in net for net in nets)), None)


async def _networks(trunk: Trunk) -> list[Network]:
    if trunk.source_addresses:
        return [ipaddress.ip_network(a, strict=False) for a in trunk.source_addresses]
    try:
        ip = ipaddress.ip_address(trunk.host)
        return [ipaddress.ip_network(ip)]
    except ValueError:
        pass
    with contextlib.suppress(OSError):
        infos = await asyncio.get_running_loop().getaddrinfo(
            trunk.host, trunk.port, type=socket.SOCK_DGRAM
        )
        return [ipaddress.ip_network(info[4][0]) for info in infos]
    log.warning("a trunk's host does not resolve: its calls are refused", trunk_id=trunk.id)
    return []


def registration_id(trunk: Trunk) -> str:
    """The trunk's registration at Kamailio (``l_uuid``): the user of the Contact the
    carrier is given, so the carrier's calls name it in their request URI."""
    return "vx" + trunk.id.replace("-", "")[:24]


def _row(trunk: Trunk, password: str | None) -> tuple[str, ...]:
    """``uac.reg_add``'s first fields: l_uuid, l_username, l_domain, r_username, r_domain,
    realm (empty: the carrier's, whatever it is), auth_username, auth_password, auth_ha1
    (none), auth_proxy."""
    uuid, user = registration_id(trunk), trunk.username or ""
    proxy = f"sip:{trunk.host}:{trunk.port};transport={trunk.transport}"
    return (uuid, uuid, trunk.host, user, trunk.host, "", user, password or "", "", proxy)


def _held(row: dict[str, object]) -> tuple[str, ...]:
    fields = ("l_uuid", "l_username", "l_domain", "r_username", "r_domain", "realm",
              "auth_username", "auth_password", "auth_ha1", "auth_proxy")  # fmt: skip
    return tuple("" if row.get(f) in ("none", ".", None) else str(row[f]) for f in fields)
