"""The client's address behind trusted proxies, and only behind them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxgate.domain.errors import ConfigurationError
from voxgate.domain.forwarded import TrustedProxies

PROXIES = TrustedProxies.parse(["127.0.0.1/32, 10.0.0.0/8", "::1"])
RFC7239 = TrustedProxies.parse(["127.0.0.1/32, 10.0.0.0/8", "::1"], "Forwarded")


def headers(**given: str) -> dict[str, str]:
    return {k.replace("_", "-"): v for k, v in given.items()}


def test_an_untrusted_peer_keeps_its_own_address_whatever_it_sends() -> None:
    sent = headers(x_forwarded_for="203.0.113.9", forwarded="for=198.51.100.1;proto=https")
    assert PROXIES.client("192.0.2.7", sent.get) == ("192.0.2.7", None)


def test_x_forwarded_for_is_read_from_the_right_past_trusted_hops() -> None:
    # the client wrote the first entry itself; nginx and an inner balancer appended theirs
    sent = headers(x_forwarded_for="1.2.3.4, 203.0.113.9, 10.1.2.3", x_forwarded_proto="https")
    assert PROXIES.client("127.0.0.1", sent.get) == ("203.0.113.9", "https")


def test_only_the_header_the_proxy_writes_is_believed() -> None:
    """nginx appends to X-Forwarded-For and passes a client's own Forwarded through (and an
    RFC 7239 proxy the other way round): believing both would let a client name itself."""
    sent = headers(
        forwarded='for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https',
        x_forwarded_for="198.51.100.1",
    )
    assert PROXIES.client("::1", sent.get) == ("198.51.100.1", None)
    assert RFC7239.client("::1", sent.get) == ("2001:db8:cafe::17", "https")
    with pytest.raises(ConfigurationError, match="forwarded-header"):
        TrustedProxies.parse(["10.0.0.0/8"], "x-real-ip")


def test_garbage_stops_the_walk_and_no_header_means_the_peer() -> None:
    sent = headers(x_forwarded_for="203.0.113.9, unknown")
    assert PROXIES.client("127.0.0.1", sent.get) == ("127.0.0.1", None)
    assert PROXIES.client("127.0.0.1", {}.get) == ("127.0.0.1", None)
    assert not TrustedProxies.parse([]) and TrustedProxies.parse([]).client("127.0.0.1", {}.get)


def test_a_bad_cidr_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not an address or CIDR"):
        TrustedProxies.parse(["10.0.0.0/8,nginx"])


@given(st.text(max_size=200), st.text(max_size=200), st.text(max_size=20))
def test_any_header_gives_an_address_and_never_raises(xff: str, fwd: str, proto: str) -> None:
    sent = {"x-forwarded-for": xff, "forwarded": fwd, "x-forwarded-proto": proto}
    for proxies in (PROXIES, RFC7239):
        address, scheme = proxies.client("127.0.0.1", sent.get)
        assert address and scheme in (None, "http", "https")
