"""The operator console in Chromium: an admin signs in, finds the credential a real SDK page
registered, reads its timeline, deactivates it, and watches the registration go while the SDK
page's socket closes. Wrong and non-admin keys get the sign-in form back."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.cluster.test_cluster import REDIS, start_cluster
from tests.conformance.test_browser import start, wait_event
from tests.harness import ARTIFACTS, Voxgate, drop_pg_database
from tests.rtc.conftest import api_for
from tests.rtc.test_call_reports import calling, post, report

OpenPage = Callable[..., Page]


def sign_in(page: Page, vg: Voxgate, key: str) -> None:
    page.goto(vg.api_url + "/console")
    page.fill("#key", key)
    page.click("#signin-button")


def test_an_admin_follows_a_credential_and_deactivates_it(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    cred = api.credential(name="console-user")
    sdk = open_page(server, user_agent="ConsoleTab/1")
    start(sdk, server, login_token=api.token(cred["id"]))
    wait_event(sdk, "telnyx.ready")
    sdk.evaluate("t => window.vxRelogin(t)", api.token(cred["id"]))  # a refresh, for the timeline
    api.wait_audit(cred["id"], "refreshed")

    console = open_page(server)
    sign_in(console, server, server.api_key)
    row = console.locator(f"#registrations tr.registration[data-credential='{cred['id']}']")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row).to_contain_text("ConsoleTab/1")
    expect(row).to_contain_text("console-user")  # names for people, ids a click away
    expect(row).to_have_attribute("data-transport", "WSS")
    conn_cell = row.locator(f"td[data-id='{cred['connection_id']}']")
    conn_name = api.http.get(f"/credential_connections/{cred['connection_id']}").json()["data"]
    expect(conn_cell).to_have_text(conn_name["connection_name"])
    conn_cell.click()
    expect(conn_cell).to_have_text(cred["connection_id"])
    expect(console.locator("#nodes tbody tr")).to_have_count(1)
    expect(console.locator("#chart-logins rect").first).to_be_attached(timeout=10_000)
    ARTIFACTS.mkdir(exist_ok=True)
    console.screenshot(path=str(ARTIFACTS / "console-live.png"), full_page=True)

    row.click()
    expect(console.locator("#credential-title")).to_contain_text("console-user")
    timeline = console.locator("#timeline li")
    expect(timeline.first).to_be_attached()
    kinds = timeline.evaluate_all("items => items.map(li => li.dataset.kind)")
    order = [k for k in kinds if k in ("token_minted", "login_ok", "refreshed")]
    assert order.index("token_minted") < order.index("login_ok") < order.index("refreshed"), kinds
    expect(console.locator("#credential-registrations tbody tr")).to_have_count(1)
    console.screenshot(path=str(ARTIFACTS / "console-credential.png"), full_page=True)

    console.once("dialog", lambda dialog: dialog.accept())
    console.click("#deactivate")
    expect(console.locator("#credential-message")).to_contain_text("deactivate: done")
    expect(console.locator("dd[data-field='status']")).to_have_text("inactive")
    expect(console.locator("#credential-registrations tbody tr")).to_have_count(0, timeout=10_000)
    sdk.wait_for_function("() => window.vxSockets.every(s => s.closedAt !== null)", timeout=10_000)
    assert sdk.evaluate("() => window.vxSockets[0].code") == 4003  # revoked
    console.click("a[href='#live']")
    expect(row).to_have_count(0, timeout=10_000)


def test_a_wrong_key_and_a_tokens_key_get_the_form_back(
    server: Voxgate, open_page: OpenPage
) -> None:
    console = open_page(server)
    sign_in(console, server, "KEYvx-not-a-key")
    expect(console.locator("#signin-error")).to_contain_text("401")
    expect(console.locator("#signin")).to_be_visible()
    tokens_key = server.cli("keys", "create", "--label", "web", "--scope", "tokens").stdout.strip()
    sign_in(console, server, tokens_key)
    expect(console.locator("#signin-error")).to_contain_text("403")
    expect(console.locator("#live")).to_be_hidden()
    assert console.evaluate("() => sessionStorage.getItem('voxgate-console-key')") is None


def test_the_live_view_shows_both_nodes_of_a_cluster(tmp_path: Path, open_page: OpenPage) -> None:
    c, db = start_cluster(tmp_path, REDIS)
    try:
        conn = c.rest.connection()
        on_node1, on_node2 = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
        for vg, cred in ((c.node1, on_node1), (c.node2, on_node2)):
            page = open_page(vg)
            start(page, vg, login_token=c.rest.token(cred["id"]))
            wait_event(page, "telnyx.ready")
        console = open_page(c.api)
        sign_in(console, c.api, c.api.api_key)
        for node, cred in (("node1", on_node1), ("node2", on_node2)):
            row = console.locator(f"#registrations tr[data-credential='{cred['id']}']")
            expect(row).to_have_attribute("data-node", node, timeout=15_000)
            expect(console.locator(f"#nodes tr[data-node='{node}']")).to_have_count(1)
        listed = c.rest.http.get("/registrations", params={"filter[node_id]": "node2"}).json()
        assert [r["credential_id"] for r in listed["data"]] == [on_node2["id"]]
    finally:
        for vg in (c.node1, c.node2, c.api):
            vg.stop()
        drop_pg_database(db)


def test_a_call_reports_quality_is_charted(server: Voxgate, open_page: OpenPage) -> None:
    """From a credential's timeline to its call's quality: the summary and the RTT/jitter chart."""
    api = api_for(server)
    done: dict[str, str] = {}

    async def report_a_call() -> None:
        ws, reged, alice, bob, _ = await calling(api, server, "c-console")
        reply = post(server, reged["call_report_id"], "c-console", report("c-console", final=True))
        assert reply.status_code == 201
        done["credential"] = alice["id"]
        await ws.close()
        await bob.close()

    worker = threading.Thread(target=lambda: asyncio.run(report_a_call()))  # Playwright owns
    worker.start()  # this thread's event loop
    worker.join(60)
    console = open_page(server)
    sign_in(console, server, server.api_key)
    console.goto(f"{server.api_url}/console#credential/{done['credential']}")
    console.click("#timeline li[data-kind='call_report'] a.call-link")
    expect(console.locator("#call-title")).to_have_text("c-console")
    expect(console.locator("dd[data-field='MOS']")).to_have_text(re.compile(r"^[1-4]\.\d+$"))
    expect(console.locator("#chart-quality rect")).to_have_count(6)  # 3 intervals x 2 series
    console.screenshot(path=str(ARTIFACTS / "console-call.png"), full_page=True)
