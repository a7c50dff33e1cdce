"""Many devices, one identity, with the real SDK in Chromium: first_wins refuses once and for
good, ring_all rings every page and the one that answers gets the audio, a connection's own
login rings every device. Runs in the loopback-only namespace, like every media test."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.conformance.test_browser import events, sockets, start, wait_event
from tests.conformance.test_media import audio_flows, states, wait_state
from tests.harness import Voxgate
from tests.rtc.conftest import Receiver, api_for

pytestmark = pytest.mark.media
OpenPage = Callable[..., Page]

ANSWER_RINGING = """() => {
  const call = Object.values(window.vxCalls)
    .find((c) => c.direction === 'inbound' && c.state === 'ringing');
  call.answer();
}"""


def all_ring(
    server: Voxgate,
    open_page: OpenPage,
    devices: list[Page],
    login: Callable[[], dict[str, Any]],
    caller_cred: dict[str, Any],
    dest: str,
) -> Page:
    """Log every device in (``login`` gives each its credentials), then a caller dials
    ``dest`` and every device rings. Returns the caller's page."""
    for device in devices:
        start(device, server, **login())
        wait_event(device, "telnyx.ready")
    caller = open_page(server)
    start(caller, server, login_token=api_for(server).token(caller_cred["id"]))
    wait_event(caller, "telnyx.ready")
    caller.evaluate("dest => window.vxDial(dest)", dest)
    for device in devices:
        wait_state(device, "ringing")
    return caller


def test_first_wins_shows_one_error_and_the_first_page_keeps_the_calls(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    conn = api.connection(registration_policy="first_wins")
    cred, caller_cred = api.credential(conn["id"]), api.credential(conn["id"])
    first = open_page(server, user_agent="FirstTab/1")
    start(first, server, login_token=api.token(cred["id"]))
    wait_event(first, "telnyx.ready")
    second = open_page(server)
    start(second, server, login_token=api.token(cred["id"]))
    error = wait_event(second, "telnyx.error")
    # the SDK wraps the server's words (which name the holder, tests/rtc) in its own error
    assert error["payload"]["error"]["name"] == "LOGIN_FAILED"
    time.sleep(5)  # long enough for the SDK's first reconnect, had it tried one
    assert len(events(second, "telnyx.error")) == 1
    assert len(sockets(second)) == 1 and not events(second, "telnyx.ready")
    caller = open_page(server)
    start(caller, server, login_token=api.token(caller_cred["id"]))
    wait_event(caller, "telnyx.ready")
    first.evaluate("() => { window.vxAutoAnswer = true; }")
    caller.evaluate("dest => window.vxDial(dest)", cred["sip_username"])
    wait_state(first, "active")
    audio_flows(first)


def test_ring_all_rings_three_pages_and_the_one_that_answers_gets_the_audio(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    receiver = Receiver()
    try:
        conn = api.connection(webhook_event_url=receiver.url)
        cred = api.credential(conn["id"], registration_policy="ring_all")
        caller_cred = api.credential(conn["id"])
        tabs = [open_page(server) for _ in range(3)]
        login = lambda: {"login_token": api.token(cred["id"])}  # noqa: E731
        caller = all_ring(server, open_page, tabs, login, caller_cred, cred["sip_username"])
        tabs[1].evaluate(ANSWER_RINGING)
        wait_state(caller, "active")
        audio_flows(tabs[1])
        audio_flows(caller)
        for tab in (tabs[0], tabs[2]):
            wait_state(tab, "hangup")
            ended = next(s for s in states(tab) if s["state"] == "hangup")
            assert (ended["cause"], ended["causeCode"]) == ("LOSE_RACE", 502)
            assert "active" not in [s["state"] for s in states(tab)]
        answered = []
        for _ in range(100):
            answered = [
                json.loads(body)["data"]["payload"]["direction"]
                for body, _ in receiver.events
                if b'"call.answered"' in body
            ]
            if len(answered) >= 2:
                break
            time.sleep(0.05)
        assert sorted(answered) == ["incoming", "outgoing"]  # one answered leg
    finally:
        receiver.httpd.shutdown()


def test_a_connection_login_on_two_pages_rings_both(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    conn = api.connection()
    caller_cred = api.credential(conn["id"])
    phones = [open_page(server) for _ in range(2)]
    login = lambda: {"login": conn["user_name"], "password": conn["password"]}  # noqa: E731
    caller = all_ring(server, open_page, phones, login, caller_cred, conn["user_name"])
    phones[0].evaluate(ANSWER_RINGING)
    wait_state(caller, "active")
    audio_flows(phones[0])
    wait_state(phones[1], "hangup")
