"""Real audio through real browsers: run only inside the loopback-only namespace (make test).

``scripts/netns-run`` gives these tests a network namespace with nothing but 127.0.0.0/8, so
ICE can only pair loopback candidates and no media packet can leave the machine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.conformance.test_browser import events, start, wait_event
from tests.harness import Voxgate
from tests.rtc.conftest import api_for

pytestmark = pytest.mark.media
OpenPage = Callable[..., Page]


@pytest.fixture(autouse=True)
def _inside_namespace() -> None:
    if not os.environ.get("VOXGATE_MEDIA_NETNS"):
        pytest.fail("media tests run inside scripts/netns-run (make test does this)")


def states(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("() => window.vxCallStates")


def wait_state(page: Page, state: str, timeout: float = 15_000) -> None:
    page.wait_for_function(
        f"() => window.vxCallStates.some(s => s.state === {state!r})", timeout=timeout
    )


def audio_flows(page: Page, both_ways: bool = True, minimum: int = 4000) -> dict[str, int]:
    deadline = time.monotonic() + 15
    while True:
        got: dict[str, int] = page.evaluate("() => window.vxAudioBytes()")
        if got["received"] > minimum and (not both_ways or got["sent"] > minimum):
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.25)


def test_two_browsers_call_each_other_with_audio_both_ways(
    server: Voxgate, open_page: OpenPage
) -> None:
    api = api_for(server)
    conn = api.connection()
    alice_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = open_page(server), open_page(server)
    start(alice, server, login_token=api.token(alice_cred["id"]))
    start(bob, server, login_token=api.token(bob_cred["id"]))
    wait_event(alice, "telnyx.ready")
    wait_event(bob, "telnyx.ready")
    bob.evaluate("() => { window.vxAutoAnswer = true; }")
    alice.evaluate("dest => window.vxDial(dest)", bob_cred["sip_username"])
    wait_state(alice, "active")
    wait_state(bob, "active")
    a, b = audio_flows(alice), audio_flows(bob)
    assert a["received"] > 4000 and b["received"] > 4000
    bob.evaluate("() => window.vxHangup()")  # either side ends both
    wait_state(alice, "hangup")
    assert next(s for s in states(alice) if s["state"] == "hangup")["cause"] == "NORMAL_CLEARING"
    # and the other way round, hung up by the caller
    alice.evaluate("() => { window.vxAutoAnswer = true; }")
    bob.evaluate("dest => window.vxDial(dest)", alice_cred["sip_username"])
    page_states = lambda p: [s["state"] for s in states(p)]  # noqa: E731
    alice.wait_for_function(
        "() => window.vxCallStates.filter(s => s.state === 'active').length >= 2", timeout=15_000
    )
    bob.evaluate("() => window.vxHangup()")
    alice.wait_for_function(
        "() => window.vxCallStates.filter(s => s.state === 'hangup').length >= 2", timeout=15_000
    )
    assert page_states(bob).count("hangup") >= 2


def test_only_the_newest_page_rings(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    conn = api.connection()
    caller_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    older, newer, caller = open_page(server), open_page(server), open_page(server)
    for page, cred in ((older, bob_cred), (newer, bob_cred), (caller, caller_cred)):
        start(page, server, login_token=api.token(cred["id"]))
        wait_event(page, "telnyx.ready")
    caller.evaluate("dest => window.vxDial(dest)", bob_cred["sip_username"])
    wait_state(newer, "ringing")
    time.sleep(1)
    assert not [s for s in states(older) if s["direction"] == "inbound"]


def test_browser_to_echo_assistant_hears_itself(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    bot = api.post("/ai/assistants", {"name": "echo", "kind": "echo"}).json()["data"]
    page = open_page(server)
    start(page, server, anonymous_login={"target_type": "ai_assistant", "target_id": bot["id"]})
    wait_event(page, "telnyx.ready")
    page.evaluate("() => window.vxDial('')")
    wait_state(page, "active", 20_000)
    got = audio_flows(page, minimum=8000)
    assert got["received"] > 8000  # the assistant sent our fake microphone back
    someone = api.credential()
    page.evaluate("dest => window.vxDial(dest)", someone["sip_username"])
    page.wait_for_function(
        "() => window.vxCallStates.some(s => s.state === 'hangup' && s.cause === 'CALL_REJECTED')",
        timeout=10_000,
    )
    assert not events(page, "telnyx.error")
