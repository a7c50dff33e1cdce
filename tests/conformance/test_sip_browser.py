"""Browser SIP clients against voxgate's SIP edge, in Chromium: sip.js 0.21's ``SimpleUser`` (set
up as Telnyx's demo app's SIP.js tab does) and JsSIP register over SIP-over-WebSocket (RFC 7118,
plain ws:// as voxgate has no certificate here) with a credential's sip_username/sip_password, and
the real @telnyx/webrtc SDK shares one registration with a baresip phone: the phone displaces the
page, the page's next login removes the phone's contact from Kamailio."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conformance.sip_pages import NODE_MODULES
from tests.conformance.test_browser import events, sockets, start, wait_event
from tests.harness import SECRETS
from tests.rtc.conftest import Api
from tests.sip.peers import DOMAIN, Baresip, SipNode, registrations, wait_for

pytestmark = pytest.mark.conformance
OpenPage = Callable[..., Page]


def _credential(api: Api) -> dict[str, Any]:
    cred = api.credential()
    SECRETS.add(cred["sip_password"])
    return cred


def _regs(node: SipNode, cred: dict[str, Any]) -> list[dict[str, Any]]:
    return registrations(node.vg, node.vg.api_key, credential_id=cred["id"])


def _wait_state(page: Page, state: str, timeout: float = 10_000) -> list[str]:
    """The client's states so far, once it reached ``state`` (or failed: no waiting on)."""
    done = f"s => s === {state!r} || s.startsWith('failed:')"
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(f"() => window.vxStates.some({done})", timeout=timeout)
    states: list[str] = page.evaluate("() => window.vxStates")
    log = page.evaluate("() => window.vxLog || []")
    assert state in states and not [s for s in states if s.startswith("failed:")], (states, log)
    return states


def _registered_over_ws(node: SipNode, cred: dict[str, Any], agent: str) -> dict[str, Any]:
    """The one registration of ``cred``: voxgate's presence and Kamailio's table agree."""
    user = cred["sip_username"]
    regs = wait_for(lambda: _regs(node, cred))
    assert [r["transport"] for r in regs] == ["ws"], regs
    assert regs[0]["user_agent"].startswith(agent), regs
    assert regs[0]["contact"].endswith(";transport=ws")
    assert node.contacts(user) == [regs[0]["contact"]]
    return regs[0]


def _gone(node: SipNode, cred: dict[str, Any]) -> None:
    assert wait_for(lambda: not node.contacts(cred["sip_username"]), timeout=10)
    assert wait_for(lambda: not _regs(node, cred), timeout=10)


def test_sipjs_simple_user_registers_over_websocket_and_unregisters(
    sip_node: SipNode, sip_api: Api, sip_pages: None, open_page: OpenPage
) -> None:
    cred = _credential(sip_api)
    user = cred["sip_username"]
    page = open_page(sip_node.vg, "/sip-pages/sipjs.html")
    page.wait_for_function("() => window.vxReady === true", timeout=10_000)
    options = {
        "server": f"ws://127.0.0.1:{sip_node.ws_port}",
        "aor": f"sip:{user}@{DOMAIN}",
        "username": user,
        "password": cred["sip_password"],
    }
    assert page.evaluate("o => window.vxSipJs(o)", options) is True
    _wait_state(page, "registered")
    # sip.js 0.21.2 still calls itself 0.21.1 (its lib/version.js was not bumped)
    _registered_over_ws(sip_node, cred, "SIP.js/0.21.")
    assert "sip_registered" in sip_api.wait_audit(cred["id"], "sip_registered")
    page.evaluate("() => window.vxUnregister()")
    _wait_state(page, "unregistered")
    _gone(sip_node, cred)
    kinds = sip_api.wait_audit(cred["id"], "sip_unregistered")
    assert "sip_register_failed" not in kinds
    page.evaluate("() => window.vxUser.disconnect()")
    assert page.evaluate("() => window.vxLog") == []  # sip.js warned about nothing


def test_jssip_ua_registers_over_websocket_and_unregisters(
    sip_node: SipNode, sip_api: Api, sip_pages: None, open_page: OpenPage
) -> None:
    cred = _credential(sip_api)
    user = cred["sip_username"]
    page = open_page(sip_node.vg, "/sip-pages/jssip.html")
    page.wait_for_function("() => window.vxReady === true", timeout=10_000)
    options = {
        "server": f"ws://127.0.0.1:{sip_node.ws_port}",
        "uri": f"sip:{user}@{DOMAIN}",
        "password": cred["sip_password"],
    }
    version = page.evaluate("o => window.vxJsSip(o)", options)
    assert version == json.loads((NODE_MODULES / "jssip" / "package.json").read_text())["version"]
    _wait_state(page, "registered")
    assert _registered_over_ws(sip_node, cred, "JsSIP")["user_agent"] == f"JsSIP {version}"
    page.evaluate("() => window.vxUA.unregister()")
    _wait_state(page, "unregistered")
    _gone(sip_node, cred)
    kinds = sip_api.wait_audit(cred["id"], "sip_unregistered")
    assert "sip_register_failed" not in kinds
    page.evaluate("() => window.vxUA.stop()")


def test_baresip_displaces_the_sdk_page_and_the_pages_next_login_removes_the_phone(
    sip_node: SipNode, sip_api: Api, open_page: OpenPage, tmp_path: Path
) -> None:
    cred = _credential(sip_api)
    user = cred["sip_username"]
    page = open_page(sip_node.vg, user_agent="SipConformance/page")
    start(page, sip_node.vg, login_token=sip_api.token(cred["id"]))
    wait_event(page, "telnyx.ready")
    regs = _regs(sip_node, cred)
    assert [(r["transport"], r["user_agent"]) for r in regs] == [("WSS", "SipConformance/page")]
    phone = Baresip(tmp_path / "phone", sip_node.sip_port, user, cred["sip_password"])
    phone.start()
    try:
        notice = wait_event(
            page,
            "telnyx.notification",
            timeout=15_000,
            pred="e.payload.eventType === 'voxgate.displaced'",
        )
        assert "baresip" in notice["payload"]["by"]["user_agent"], phone.log()
        found = wait_for(lambda: [r["transport"] for r in _regs(sip_node, cred)] == ["udp"])
        assert found, (_regs(sip_node, cred), phone.log())
        assert len(sip_node.contacts(user)) == 1
        # displaced, not punted: the socket stays up (it may still dial out), no error
        assert sockets(page)[0]["closedAt"] is None
        assert not events(page, "telnyx.error")
        # the page logs in again (a reload, a new client): latest wins, the phone's contact goes
        page.reload()
        start(page, sip_node.vg, login_token=sip_api.token(cred["id"]))
        wait_event(page, "telnyx.ready")
        assert wait_for(lambda: not sip_node.contacts(user), timeout=10), sip_node.table()
        assert [(r["transport"], r["user_agent"]) for r in _regs(sip_node, cred)] == [
            ("WSS", "SipConformance/page")
        ]
        kinds = sip_api.wait_audit(cred["id"], "sip_unregistered")
        assert kinds.count("displaced") >= 1 and "sip_registered" in kinds
    finally:
        phone.stop()
