"""The demo app walked through as a person would, in Chromium, with a screenshot per step."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from examples.backend.app import DemoConfig, create_demo
from playwright.sync_api import Browser, expect

from tests.harness import ARTIFACTS, Voxgate, free_port


@dataclass
class Demo:
    url: str
    server: uvicorn.Server


@pytest.fixture
def demo(make_server: type[Voxgate]) -> Iterator[tuple[Demo, Voxgate]]:
    vg = make_server().start()
    port = free_port()
    cfg = DemoConfig(vg.base_url, vg.rtc_url, vg.api_key)
    server = uvicorn.Server(
        uvicorn.Config(create_demo(cfg), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    yield Demo(f"http://127.0.0.1:{port}", server), vg
    server.should_exit = True
    thread.join(5)


def test_token_endpoint_status_codes(demo: tuple[Demo, Voxgate]) -> None:
    d, vg = demo
    with httpx.Client(base_url=d.url) as http:
        assert http.get("/api/telnyx-token").status_code == 401
        assert (
            http.post("/api/login", json={"user": "alice", "password": "nope"}).status_code == 401
        )
        assert (
            http.post("/api/login", json={"user": "alice", "password": "alice-demo"}).status_code
            == 200
        )
        assert http.get("/api/telnyx-token").status_code == 404
        assert http.post("/api/credential").status_code == 200
        ok = http.get("/api/telnyx-token")
        assert (
            ok.status_code == 200
            and ok.headers["cache-control"] == "no-store"
            and ok.text.count(".") == 2
        )
        assert vg.api_key not in ok.text
        vg.stop()  # voxgate down: a 500 that leaks nothing
        failed = http.get("/api/telnyx-token")
        assert failed.status_code == 500 and failed.json() == {"error": "Token generation failed"}


def test_walkthrough_login_ready_refresh_revoke(
    demo: tuple[Demo, Voxgate], browser: Browser
) -> None:
    d, _ = demo
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_context().new_page()
    page.goto(d.url)
    page.fill("input[name=user]", "alice")
    page.fill("input[name=password]", "alice-demo")
    page.click("text=Log in")
    page.click("#provision")
    expect(page.locator("#log")).to_contain_text("credential created")
    page.click("#connect")
    expect(page.locator("#state")).to_have_text("ready", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "demo-1-ready.png"))
    page.click("#refresh")
    expect(page.locator("#log")).to_contain_text(
        "token refreshed on the same socket", timeout=10_000
    )
    expect(page.locator("#state")).to_have_text("ready")
    page.screenshot(path=str(ARTIFACTS / "demo-2-refreshed.png"))
    page.click("#revoke")
    expect(page.locator("#state")).to_have_text("revoked", timeout=5_000)
    expect(page.locator("#log")).to_contain_text("revoked: credential deactivated")
    page.screenshot(path=str(ARTIFACTS / "demo-3-revoked.png"))
    page.context.close()
