"""Scenarios with the unmodified ``@telnyx/webrtc`` bundle in Chromium against a live voxgate."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Page

from tests.harness import Voxgate
from tests.rtc.conftest import api_for

OpenPage = Callable[..., Page]


def start(page: Page, vg: Voxgate, **options: Any) -> None:
    page.evaluate("opts => window.vxStart(opts)", {"host": vg.rtc_url, **options})


def wait_event(
    page: Page, name: str, timeout: float = 10_000, pred: str = "true"
) -> dict[str, Any]:
    page.wait_for_function(
        f"() => window.vxEvents.some(e => e.name === {name!r} && ({pred}))", timeout=timeout
    )
    return events(page, name)[-1]


def events(page: Page, name: str) -> list[dict[str, Any]]:
    return page.evaluate("name => window.vxEvents.filter(e => e.name === name)", name)


def sockets(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("() => window.vxSockets")


def metric(vg: Voxgate, name: str) -> float:
    text = httpx.get(vg.api_url + "/metrics").text
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_login_token_fires_ready(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    page = open_page(server)
    start(page, server, login_token=api.token(api.credential()["id"]))
    ready = wait_event(page, "telnyx.ready")
    assert ready["payload"]["type"] == "vertoClientReady"
    assert len(sockets(page)) == 1 and sockets(page)[0]["url"].startswith(server.rtc_url)


def test_login_password_fires_ready(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    cred = api.credential()
    page = open_page(server)
    start(page, server, login=cred["sip_username"], password=cred["sip_password"])
    wait_event(page, "telnyx.ready")


def test_anonymous_login_to_assistant_and_unknown_assistant(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    bot = api.post("/ai/assistants", {"name": "conformance bot"}).json()["data"]
    page = open_page(server)
    start(
        page,
        server,
        anonymous_login={
            "target_type": "ai_assistant",
            "target_id": bot["id"],
            "target_params": {"conversation_id": "conv-1"},
        },
    )
    wait_event(page, "telnyx.ready")
    bad = open_page(server)
    start(
        bad,
        server,
        anonymous_login={"target_type": "ai_assistant", "target_id": "assistant-unknown"},
    )
    err = wait_event(bad, "telnyx.error")
    assert err["payload"]["error"]["code"] == 46001
    assert events(bad, "telnyx.ready") == []


def test_bad_or_expired_token_is_one_error_and_no_reconnect_loop(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    cred = api.credential(expires_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat())
    expired = api.token(cred["id"])
    time.sleep(2.5)
    for token in ("not.a.token", expired):
        frames_before, conns_before = (
            metric(server, "voxgate_ws_frames_total"),
            metric(server, "voxgate_ws_connections_total"),
        )
        page = open_page(server)
        start(page, server, login_token=token)
        err = wait_event(page, "telnyx.error")
        assert err["payload"]["error"]["code"] == 46001
        time.sleep(3)
        assert len(events(page, "telnyx.error")) == 1
        assert len(sockets(page)) == 1
        assert metric(server, "voxgate_ws_connections_total") - conns_before == 1
        assert (
            metric(server, "voxgate_ws_frames_total") - frames_before <= 3
        )  # the login, maybe a probe
        page.context.close()


def test_short_token_fires_the_sdks_own_34001(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    cred = api.credential(expires_at=(datetime.now(UTC) + timedelta(seconds=90)).isoformat())
    page = open_page(server)
    start(page, server, login_token=api.token(cred["id"]))
    warning = wait_event(page, "telnyx.warning")
    assert warning["payload"]["warning"]["code"] == 34001
    assert warning["payload"]["warning"]["name"] == "TOKEN_EXPIRING_SOON"


def test_refresh_on_the_open_socket_moves_server_expiry(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    cred = api.credential()
    page = open_page(server)
    start(page, server, login_token=api.token(cred["id"]))
    wait_event(page, "telnyx.ready")
    new_token = api.token(cred["id"])
    import jwt

    new_exp = jwt.decode(new_token, options={"verify_signature": False})["exp"]
    assert page.evaluate("t => window.vxRelogin(t)", new_token) == {"ok": True}
    assert len(sockets(page)) == 1 and sockets(page)[0]["closedAt"] is None
    api.wait_audit(cred["id"], "refreshed")  # the audit trail is written off the signaling path
    audit = api.http.get(f"/telephony_credentials/{cred['id']}/audit").json()["data"]
    refreshed = [e for e in audit if e["kind"] == "refreshed"]
    assert refreshed[0]["details"]["exp"] == new_exp  # the server moved the expiry
    other = api.token(api.credential()["id"])
    assert page.evaluate("t => window.vxRelogin(t)", other)["ok"] is False  # another credential
    assert sockets(page)[0]["closedAt"] is None


def test_revocation_closes_the_socket_fast_and_sdk_does_not_reconnect(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    cred = api.credential()
    page = open_page(server)
    start(page, server, login_token=api.token(cred["id"]))
    wait_event(page, "telnyx.ready")
    t0 = page.evaluate("() => Date.now()")
    api.post(f"/telephony_credentials/{cred['id']}/actions/deactivate")
    page.wait_for_function("() => window.vxSockets[0].closedAt !== null", timeout=5000)
    closed_at = sockets(page)[0]["closedAt"]
    assert closed_at - t0 < 1000, closed_at - t0
    time.sleep(3)
    assert len(sockets(page)) == 1  # punted: the SDK stays down


def test_latest_wins_across_two_pages(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    cred = api.credential()
    older = open_page(server, user_agent="VoxgateConformance/older")
    start(older, server, login_token=api.token(cred["id"]))
    wait_event(older, "telnyx.ready")
    newer = open_page(server, user_agent="VoxgateConformance/newer")
    start(newer, server, login_token=api.token(cred["id"]))
    wait_event(newer, "telnyx.ready")
    status = api.registration(cred["connection_id"])
    assert status["status"] == "Registered" and status["user_agent"] == "VoxgateConformance/newer"
    notice = wait_event(
        older, "telnyx.notification", pred="e.payload.eventType === 'voxgate.displaced'"
    )
    assert notice["payload"]["by"]["user_agent"] == "VoxgateConformance/newer"
    assert sockets(older)[0]["closedAt"] is None  # displaced, still connected


def test_seed_refresh_snippet_runs_verbatim_with_the_helper(
    make_server: type[Voxgate], open_page: OpenPage
) -> None:
    # the server notice is due 5 s after each login of a 24 h token
    vg = make_server(extra_args=["--expiry-notice", str(86_400 - 5)]).start()
    api = api_for(vg)
    cred = api.credential()
    page = open_page(vg, f"/seed.html?host={vg.rtc_url}", credential=cred["id"])
    page.wait_for_function("() => window.vxLog.includes('ready')", timeout=10_000)
    page.wait_for_function("() => window.vxLog.includes('Token refreshed ')", timeout=15_000)
    assert "Token expiring soon — refreshing..." in page.evaluate("() => window.vxLog")
    assert not [line for line in page.evaluate("() => window.vxLog") if line.startswith("Failed")]
    logins = api.wait_audit(cred["id"], "refreshed").count("login_ok")
    assert logins == 1  # the refresh reused the socket: one login, then refreshes
    assert page.evaluate("() => window.client.connected") is True
