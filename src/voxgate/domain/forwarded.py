"""Who the client is behind a reverse proxy.

Behind nginx or a load balancer every connection comes from the proxy's address, so a
per-address limit, lockout or audit row would name the proxy and hit every user at once. For
a peer in ``--trusted-proxies`` the client's address is taken from the header that proxy
writes: ``X-Forwarded-For`` (nginx, HAProxy, most balancers; the default) or ``Forwarded``
(RFC 7239; ``--forwarded-header forwarded``). Only that one: a proxy appends to the header it
writes and passes the other through as the client sent it, so believing both would let a
client name itself. The address is the rightmost one that is not itself a trusted proxy (the
left part is whatever the client wrote). From any other peer the headers are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from voxgate.domain.errors import ConfigurationError

__all__ = ["TrustedProxies", "networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 32  # a longer chain is not believed further


HEADERS = ("x-forwarded-for", "forwarded")


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()
    header: str = "x-forwarded-for"  # the one the proxies write (HEADERS)

    @classmethod
    def parse(cls, specs: Iterable[str], header: str = "x-forwarded-for") -> TrustedProxies:
        """``specs``: CIDRs or addresses, each possibly a comma-separated list."""
        header = header.lower()
        if header not in HEADERS:
            raise ConfigurationError("--forwarded-header must be x-forwarded-for or forwarded")
        return cls(networks(specs, "--trusted-proxies", "127.0.0.1/32,10.0.0.0/8"), header)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        ip = _ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    def client(self, peer: str, header: Callable[[str], str | None]) -> tuple[str, str | None]:
        """The client's address and the scheme it used (``http``/``https``, None if not said)
        for a connection from ``peer``; ``header(name)`` reads one request header."""
        if not self.trusts(peer):
            return peer, None
        if self.header == "forwarded":
            elements = [_pairs(element) for element in (header("forwarded") or "").split(",")]
            hops = [_bare(e.get("for", "")) for e in elements]
            proto = elements[-1].get("proto", "").lower()
            scheme = proto if proto in ("http", "https") else None
        else:
            hops = [_bare(h) for h in (header("x-forwarded-for") or "").split(",")]
            given = (header("x-forwarded-proto") or "").split(",")[-1].strip().lower()
            scheme = given if given in ("http", "https") else None
        address = peer
        for hop in reversed(hops[-MAX_HOPS:]):
            if _ip(hop) is None:
                break  # garbage (or "unknown"): believe nothing further left
            address = hop
            if not self.trusts(hop):
                break
        return address, scheme


def _pairs(element: str) -> dict[str, str]:
    """``for=192.0.2.60;proto=http`` to its pairs, names lower-cased."""
    pairs = {}
    for pair in element.split(";"):
        name, _, value = pair.partition("=")
        pairs[name.strip().lower()] = value.strip().strip('"')
    return pairs


def _bare(value: str) -> str:
    """``"[2001:db8::1]:4711"`` or ``192.0.2.60:8080`` to the address alone."""
    value = value.strip().strip('"')
    if value.startswith("["):
        return value[1:].split("]", 1)[0]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def networks(specs: Iterable[str], option: str, example: str) -> tuple[Network, ...]:
    """``specs``: addresses or CIDRs as an option gives them (repeated, or comma lists)."""
    found: list[Network] = []
    for spec in specs:
        for part in filter(None, (p.strip() for p in spec.split(","))):
            try:
                found.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ConfigurationError(
                    f"{option}: {part!r} is not an address or CIDR (e.g. {example})"
                ) from None
    return tuple(found)
