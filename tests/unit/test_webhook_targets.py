"""Which addresses a webhook may reach (SSRF): the table, the deviations from ``is_global``,
``--webhook-allow``, and the check when a connection's URL is written."""

from __future__ import annotations

import ipaddress

import pytest

from voxgate.domain.errors import ConfigurationError, TargetRefused
from voxgate.domain.webhook_targets import WebhookTargets

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "0.0.0.0": "unspecified",
    "169.254.169.254": "link-local",  # AWS, GCP, Azure metadata
    "10.0.0.1": "private",
    "10.255.255.255": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "100.64.0.1": "not a public",  # CGNAT
    "100.100.100.200": "not a public",  # Alibaba Cloud metadata
    "192.0.0.192": "not a public",  # Oracle Cloud metadata; is_global says True on 3.11
    "198.18.0.1": "private",  # benchmarking
    "203.0.113.7": "private",  # documentation
    "224.0.1.1": "multicast",  # is_global says True
    "239.255.255.250": "multicast",
    "255.255.255.255": "private",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",
    "fd00:ec2::254": "private",  # AWS metadata over IPv6
    "ff02::1": "multicast",
    "ff0e::1": "multicast",  # is_global says True
    "::ffff:127.0.0.1": "carries 127.0.0.1, a loopback",
    "::ffff:169.254.169.254": "carries 169.254.169.254, a link-local",
    "::127.0.0.1": "not a public",  # IPv4-compatible; is_global says True
    "64:ff9b::a00:1": "carries 10.0.0.1",  # NAT64 to a private address
    "64:ff9b::7f00:1": "carries 127.0.0.1",
    "64:ff9b:1::a00:1": "not a public",  # local-use NAT64
    "2002:a00:1::1": "carries 10.0.0.1",  # 6to4 around a private address
    "2001:db8::1": "private",  # documentation
    "fec0::1": "not a public",  # site-local (deprecated, still internal); is_global says True
    "::ffff:0:7f00:1": "carries 127.0.0.1",  # SIIT IPv4-translated form
    "192.88.99.1": "not a public",  # the old 6to4 relay anycast
    "5f00::1": "not a public",  # SRv6 SIDs
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "why"), REFUSED.items())
def test_internal_addresses_are_refused_with_the_reason(address: str, why: str) -> None:
    reason = WebhookTargets().refusal(ipaddress.ip_address(address))
    assert reason is not None and why in reason
    assert reason.startswith(str(ipaddress.ip_address(address)))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert WebhookTargets().refusal(ipaddress.ip_address(address)) is None


def test_webhook_allow_opens_exactly_its_ranges_also_when_carried_in_ipv6() -> None:
    targets = WebhookTargets.parse(["127.0.0.0/8", "10.1.0.0/16,fd00::/8"])
    for address in ("127.0.0.1", "::ffff:127.0.0.1", "10.1.2.3", "fd00::5", "64:ff9b::a01:203"):
        assert targets.refusal(ipaddress.ip_address(address)) is None, address
    for address in ("10.2.0.1", "169.254.169.254", "::1", "fc00::1"):
        assert targets.refusal(ipaddress.ip_address(address)) is not None, address


def test_a_bad_range_is_a_configuration_error_naming_the_option() -> None:
    with pytest.raises(ConfigurationError, match="--webhook-allow: 'nope'"):
        WebhookTargets.parse(["10.0.0.0/8", "nope"])


NAMED = {"http://localhost:3000/hooks", "http://2130706433/", "http://127.1/"}  # not literals


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hooks",
        "https://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/x?token=secret-value",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost:3000/hooks",  # a name: /etc/hosts answers loopback
        "http://2130706433/",  # 127.0.0.1 written as one number (getaddrinfo reads it)
        "http://127.1/",
        "http://user:pw@0.0.0.0/",
        "http://:80/",
    ],
)
async def test_writing_an_internal_url_is_a_422_on_the_field(url: str) -> None:
    with pytest.raises(TargetRefused) as caught:
        await WebhookTargets().check_settings({"webhook_event_failover_url": url})
    error = caught.value
    assert error.status == 422 and error.code == "10015"
    assert error.pointer == "/webhook_event_failover_url"
    assert error.detail.startswith("Invalid webhook_event_failover_url: ")
    assert "--webhook-allow" in error.detail or "valid host" in error.detail
    assert "secret-value" not in error.detail and "pw@" not in error.detail
    assert ("resolves to it" in error.detail) == (url in NAMED), error.detail


async def test_allowed_public_and_unresolvable_urls_are_accepted() -> None:
    allowed = WebhookTargets.parse(["127.0.0.0/8"])
    await allowed.check_settings({"webhook_event_url": "http://127.0.0.1:9000/hooks"})
    public = WebhookTargets()
    await public.check_settings({"webhook_event_url": "https://8.8.8.8/hooks"})
    # A name that does not resolve (yet) is for delivery to judge.
    await public.check_settings({"webhook_event_url": "https://no-such-host.invalid/hooks"})
    await public.check_settings({"webhook_event_url": None, "webhook_event_failover_url": ""})
