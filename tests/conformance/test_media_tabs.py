"""Three tabs of one origin share one registration (the browser helper's ``shareAcrossTabs``),
with the real SDK in Chromium: one socket for all, a call rings in every tab and is answered
in a follower with the audio there, the token is refreshed once, and when the leader tab
closes another one takes over with one new socket and one login."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.conformance.test_browser import sockets, start, wait_event
from tests.conformance.test_media import audio_flows, states, wait_state
from tests.conformance.test_media_registrations import ANSWER_RINGING
from tests.harness import Voxgate
from tests.rtc.conftest import Api, api_for

pytestmark = pytest.mark.media
OpenPage = Callable[..., Page]


def open_sockets(tab: Page) -> list[dict[str, Any]]:
    return [s for s in sockets(tab) if s["closedAt"] is None]


def count(api: Api, cred_id: str, kind: str) -> int:
    return api.audit_kinds(cred_id).count(kind)


# Browsers without the Web Locks API: the helper falls back to an election over the channel.
NO_LOCKS = "Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined })"
ELECTIONS = pytest.mark.parametrize("election", ["locks", "channel"])


def three_tabs(
    server: Voxgate, open_page: OpenPage, cred_id: str, election: str, **options: Any
) -> tuple[list[Page], Page]:
    """Three tabs sharing one registration; returns them and the one that leads."""
    first = open_page(server, credential=cred_id)
    if election == "channel":
        first.context.add_init_script(NO_LOCKS)
        first.reload()
        assert first.evaluate("() => navigator.locks === undefined")
    tabs = [first, open_page(server, tab_of=first), open_page(server, tab_of=first)]
    api = api_for(server)
    for tab in tabs:  # each page is made with a token, as an app does at load
        start(tab, server, vxShare=True, login_token=api.token(cred_id), **options)
    for tab in tabs:
        wait_event(tab, "telnyx.ready")
    leaders = [t for t in tabs if open_sockets(t)]
    assert sum(len(sockets(t)) for t in tabs) == 1 and len(leaders) == 1  # one socket in all
    return tabs, leaders[0]


@ELECTIONS
def test_three_tabs_one_socket_a_call_answered_in_a_follower_and_one_refresh(
    server: Voxgate, open_page: OpenPage, election: str
) -> None:
    api = api_for(server)
    conn = api.connection()
    # a credential close to its end: the SDK raises 34001 right after each login
    soon = (datetime.now(UTC) + timedelta(seconds=110)).isoformat()
    cred = api.credential(conn["id"], expires_at=soon)
    caller_cred = api.credential(conn["id"])
    tabs, leader = three_tabs(server, open_page, cred["id"], election, vxRefreshOnce=True)
    api.wait_audit(cred["id"], "refreshed")
    time.sleep(2)  # had a follower refreshed too, its refresh would be in by now
    assert count(api, cred["id"], "refreshed") == 1 and count(api, cred["id"], "login_ok") == 1

    caller = open_page(server)
    start(caller, server, login_token=api.token(caller_cred["id"]))
    wait_event(caller, "telnyx.ready")
    caller.evaluate("dest => window.vxDial(dest)", cred["sip_username"])
    for tab in tabs:  # every tab's UI rings
        wait_state(tab, "ringing")
    follower = next(t for t in tabs if t is not leader)
    follower.evaluate(ANSWER_RINGING)
    wait_state(follower, "active")
    wait_state(caller, "active")
    audio_flows(follower)  # the audio is in the tab where the user clicked
    audio_flows(caller)
    assert len(open_sockets(follower)) == 1 and not open_sockets(leader)
    assert sum(len(open_sockets(t)) for t in tabs) == 1
    # the old leader dropped its copy of the call without a bye, then follows it as active
    seen = [s["state"] for s in states(leader)]
    assert "purge" in seen and seen[-1] == "active"
    api.wait_audit(cred["id"], "reattached")  # the same session, moved to the follower's tab
    assert count(api, cred["id"], "login_ok") == 1
    caller.evaluate("() => window.vxHangup()")
    wait_state(follower, "hangup")


@ELECTIONS
def test_when_the_leader_tab_closes_another_leads_with_one_new_socket_and_one_login(
    server: Voxgate, open_page: OpenPage, election: str
) -> None:
    api = api_for(server)
    cred = api.credential()
    tabs, leader = three_tabs(server, open_page, cred["id"], election)
    api.wait_audit(cred["id"], "login_ok")
    rest = [t for t in tabs if t is not leader]
    closed_at = time.time()
    leader.close()
    deadline = time.monotonic() + 10
    while not any(open_sockets(t) for t in rest):
        assert time.monotonic() < deadline, "no tab took the lead"
        time.sleep(0.05)
    opened = [s["openedAt"] for t in rest for s in sockets(t)]
    assert len(opened) == 1  # one new socket for the two tabs left
    print(f"new leader's socket {opened[0] / 1000 - closed_at:.3f} s after the leader closed")
    deadline = time.monotonic() + 10
    while count(api, cred["id"], "login_ok") < 2:
        assert time.monotonic() < deadline, api.audit_kinds(cred["id"])
        time.sleep(0.1)
    time.sleep(1)
    assert count(api, cred["id"], "login_ok") == 2  # one login for the takeover
    assert api.registration(cred["connection_id"])["status"] == "Registered"
