"""A call's link crosses nodes as JSON (the bus): what one node knows, the other must too."""

from __future__ import annotations

from voxgate.gateway.links import Link, phone_key
from voxgate.webhooks.calls import CallInfo


def test_a_link_survives_the_bus_with_its_trunk_limits() -> None:
    """A trunk call's places in its limits travel with it: whichever node ends the call
    frees them (else they stay taken until their TTL and the connection's limit shrinks)."""
    call = CallInfo("+12025550143", "+12125551234", {"outgoing": "conn1"}, None, 100.0, trunk="t1")
    link = Link(call, ("sess1", "leg1"), phone_key(), answered=True, caller_node="n1")
    link.forks = {("sess2", "leg2"): "n2"}
    link.slots = ["trunk-calls:conn1", "trunk:t1"]
    copy = Link.from_dict(link.to_dict(), 200.0)
    assert copy.slots == link.slots
    assert (copy.call.trunk, copy.call.to, copy.call.id) == ("t1", "+12125551234", call.id)
    assert (copy.caller, copy.callee, copy.forks) == (link.caller, link.callee, link.forks)
    assert copy.answered and copy.caller_node == "n1"
    assert Link.from_dict(Link(call, ("s", "l")).to_dict(), 1.0).slots == []
