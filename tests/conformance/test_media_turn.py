"""Calls over TURN only, in Chromium: the ICE servers voxgate handed out (through the browser
helper) are the only way media can go. coturn runs inside the loopback-only namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conformance.test_browser import start, wait_event
from tests.conformance.test_media import OpenPage, audio_flows, wait_state
from tests.harness import Voxgate
from tests.rtc.conftest import api_for
from tests.turn import Coturn, with_turn

pytestmark = pytest.mark.media


def _relay_only(page: Page) -> None:
    page.evaluate("() => { window.vxRelayOnly = true; }")


def test_a_relay_only_call_between_pages_goes_through_coturn(
    make_server: type[Voxgate],
    coturn: Coturn,
    tmp_path: Path,
    open_page: OpenPage,
) -> None:
    vg = with_turn(make_server, coturn, tmp_path)
    api = api_for(vg)
    conn = api.connection()
    alice_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = open_page(vg), open_page(vg)
    for page, cred in ((alice, alice_cred), (bob, bob_cred)):
        _relay_only(page)
        start(page, vg, login_token=api.token(cred["id"]), vxHelper=True)
        wait_event(page, "telnyx.ready")
        wait_event(
            page, "telnyx.notification", pred="e.payload.eventType === 'voxgate.ice_servers'"
        )
    bob.evaluate("() => { window.vxAutoAnswer = true; }")
    alice.evaluate("dest => window.vxDial(dest)", bob_cred["sip_username"])
    wait_state(alice, "active")
    wait_state(bob, "active")
    for page in (alice, bob):
        got = audio_flows(page)
        assert got["received"] > 4000 and got["sent"] > 4000
        assert page.evaluate("() => window.vxSelectedPair()")["local"] == "relay"
    log = coturn.log.read_text()
    assert f"cred-{alice_cred['id']}" in log and f"cred-{bob_cred['id']}" in log


def test_a_relay_only_page_reaches_the_echo_assistant_through_coturn(
    make_server: type[Voxgate],
    coturn: Coturn,
    tmp_path: Path,
    open_page: OpenPage,
) -> None:
    vg = with_turn(make_server, coturn, tmp_path)
    api = api_for(vg)
    bot = api.post("/ai/assistants", {"name": "echo", "kind": "echo"}).json()["data"]
    page = open_page(vg)
    _relay_only(page)
    target = {"target_type": "ai_assistant", "target_id": bot["id"]}
    start(page, vg, anonymous_login=target, vxHelper=True)
    wait_event(page, "telnyx.ready")
    page.evaluate("() => window.vxDial('')")
    wait_state(page, "active", 20_000)
    assert audio_flows(page, minimum=8000)["received"] > 8000  # our audio came back
    assert page.evaluate("() => window.vxSelectedPair()")["local"] == "relay"
    assert f"anon-{bot['id']}" in coturn.log.read_text()
