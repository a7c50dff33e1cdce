"""A call in real browsers survives the kill of the caller's gateway node.

Inside the loopback-only namespace (media must stay on 127.0.0.0/8) the machine's Postgres and
Redis are out of reach, so this cluster brings its own: a private ``redis-server`` (the
``private_redis`` fixture) and one SQLite file shared by the API node and two gateway nodes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conformance.test_browser import events
from tests.conformance.test_media import (
    OpenPage,
    _call_between_pages,
    _still_growing,
    states,
    wait_state,
)
from tests.harness import Voxgate
from tests.relay import Relay
from tests.rtc.conftest import Api, api_for

pytestmark = pytest.mark.media


def call_went_on(alice: Page, bob: Page, rest: Api, alice_cred: str) -> None:
    """Alice's SDK logged in again and reattached the call: neither page hung up or saw an
    error, audio still flows both ways, and a hang-up still reaches Bob."""
    alice.wait_for_function(
        "() => window.vxEvents.filter(e => e.name === 'telnyx.ready').length >= 2",
        timeout=30_000,
    )
    for page in (alice, bob):
        assert "hangup" not in [s["state"] for s in states(page)]
        assert not events(page, "telnyx.error")  # no 48501: the call was reattached
        assert _still_growing(page)
    rest.wait_audit(alice_cred, "reattached")
    alice.evaluate("() => window.vxHangup()")  # and signaling still joins the two
    wait_state(bob, "hangup")


def test_a_page_keeps_its_call_when_its_gateway_node_is_killed(
    tmp_path: Path, private_redis: tuple[str, object], open_page: OpenPage
) -> None:
    common = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/shared.db",
        "env": {"VOXGATE_SECRET_FILE": str(tmp_path / "shared.secret")},
    }
    bus = ["--redis-url", private_redis[0], "--redis-prefix", "vxmedia:"]
    api = Voxgate(tmp_path / "api", extra_args=[*bus, "--role", "api"], **common).start()  # type: ignore[arg-type]
    nodes = [
        Voxgate(
            tmp_path / name,
            extra_args=[*bus, "--role", "rtc", "--node-id", name],
            api_key=api.api_key,
            **common,  # type: ignore[arg-type]
        ).start()
        for name in ("node1", "node2")
    ]
    try:
        with Relay(nodes[0].rtc_port) as lb:
            alice, bob, alice_cred = _call_between_pages(
                api, open_page, alice_host=lb.url, bob_host=nodes[1].rtc_url
            )
            nodes[0].stop(kill=True)  # SIGKILL: no goodbye, no hand-over
            lb.retarget(nodes[1].rtc_port)  # the load balancer now sends Alice to node2
            call_went_on(alice, bob, api_for(api), alice_cred["id"])
    finally:
        for vg in (*nodes, api):
            vg.stop()
