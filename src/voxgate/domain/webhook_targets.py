"""Where webhooks may go: public addresses, and the ranges the operator allows (SSRF).

A connection's ``webhook_event_url`` is written by whoever holds an API key, and the gateway
POSTs to it from inside the operator's network. Unchecked, it reaches loopback services, the
cloud metadata endpoint (169.254.169.254, which hands out credentials) and the private network.
So an address must be public (``ipaddress``'s ``is_global``) unless it lies in a range given
with ``--webhook-allow``. Where we deviate from ``is_global``, and why:

- an address that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``) is judged by that IPv4 address too: the kernel (or a
  NAT64/6to4 gateway) delivers it there, and Python's answer for them differs between versions;
- multicast is refused (``is_global`` calls some of it global; HTTP never goes there);
- ``192.0.0.0/24`` (IETF assignments; Oracle Cloud's metadata is 192.0.0.192), ``::/96``
  (deprecated IPv4-compatible) and ``64:ff9b:1::/48`` (local-use NAT64) are refused: Python
  3.11 calls parts of them global, none is reachable on the internet.

The check that matters happens at delivery, on the addresses the connection is then made to
(``webhooks/transport.py``); the check when a URL is written only gives an early, clear error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from voxgate.domain.errors import TargetRefused
from voxgate.domain.forwarded import networks

__all__ = ["URL_FIELDS", "Address", "WebhookTargets"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
URL_FIELDS = ("webhook_event_url", "webhook_event_failover_url")
# A name is resolved when a URL is written only for an early answer; a slow resolver must not
# hold the request (delivery resolves and checks again).
WRITE_RESOLVE_TIMEOUT = 2.0
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT's IPv4-translated form
# Python calls parts of these global: a metadata range, old relay and site-local ranges
_REFUSED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",
        "192.88.99.0/24",
        "::/96",
        "64:ff9b:1::/48",
        "fec0::/10",
        "5f00::/16",
    )
)
_INVALID = "must be an absolute http(s) URL with a valid host and port"
_ADVICE = (
    "webhooks go to public addresses only, unless the server's operator allows the range "
    "with --webhook-allow"
)


@dataclass(frozen=True, slots=True)
class WebhookTargets:
    allowed: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, specs: Iterable[str]) -> WebhookTargets:
        """``specs``: CIDRs or addresses (``--webhook-allow``), each possibly a comma list."""
        return cls(networks(specs, "--webhook-allow", "10.20.0.0/16 or fd00::/8"))

    def refusal(self, address: Address) -> str | None:
        """Why a webhook may not be sent to ``address`` (a phrase), or None if it may."""
        carried = _carried(address)
        if any(a in net for a in (address, *carried) for net in self.allowed):
            return None
        for a in (*carried, address):  # what it delivers to says most
            why = _why(a)
            if why is not None:
                return f"{address} is {why}" if a is address else f"{address} carries {a}, {why}"
        return None

    async def resolve(self, host: str, port: int, timeout: float) -> list[Address]:
        """Every address the system resolver gives for ``host`` (getaddrinfo: /etc/hosts,
        DNS), in its order of preference. ``OSError`` or ``TimeoutError`` if none."""
        loop = asyncio.get_running_loop()
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
        )
        found = [ipaddress.ip_address(str(info[4][0])) for info in infos]
        return list(dict.fromkeys(found))

    def refused(self, host: str, addresses: Iterable[Address]) -> TargetRefused | None:
        """The error for a host any of whose addresses is refused: a name that also resolves
        to an internal address is refused as a whole, whichever address would be tried."""
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                named = "" if _literal(host) else f" ({host} resolves to it)"
                return TargetRefused(f"{why}{named}; {_ADVICE}")
        return None

    async def check_settings(self, settings: Mapping[str, Any]) -> None:
        """The webhook URLs among a connection's settings being written: ``TargetRefused``
        (422) for an address literal in a refused range, or a name that resolves to one now.
        A name that does not resolve (yet) is accepted: delivery decides."""
        for name in URL_FIELDS:
            url = settings.get(name)
            if not url:
                continue
            error = await self._check_url(str(url))
            if error is not None:
                error.detail = f"Invalid {name}: {error.detail}"
                error.pointer = f"/{name}"
                raise error

    async def _check_url(self, url: str) -> TargetRefused | None:
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "", parts.port or 443
        except ValueError:
            host, port = "", 0
        if not host:
            return TargetRefused(_INVALID)
        if _literal(host):
            return self.refused(host, [ipaddress.ip_address(host)])
        try:
            addresses = await self.resolve(host, port, WRITE_RESOLVE_TIMEOUT)
        except (OSError, TimeoutError):
            return None
        except ValueError:  # a NUL, a label IDNA refuses
            return TargetRefused(_INVALID)
        return self.refused(host, addresses)


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _carried(address: Address) -> tuple[Address, ...]:
    """The IPv4 address an IPv6 address delivers to, where it embeds one."""
    if isinstance(address, ipaddress.IPv4Address):
        return ()
    if address.ipv4_mapped is not None:
        return (address.ipv4_mapped,)
    if address.sixtofour is not None:
        return (address.sixtofour,)
    if address in _NAT64 or address in _TRANSLATED:
        return (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF),)
    return ()


def _why(a: Address) -> str | None:
    if a.is_loopback:
        return "a loopback address"
    if a.is_unspecified:
        return "the unspecified address (it reaches this host)"
    if a.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if a.is_multicast:
        return "a multicast address"
    if a.is_private:
        return "a private address"
    if not a.is_global or any(a in net for net in _REFUSED):
        return "not a public address"
    return None
