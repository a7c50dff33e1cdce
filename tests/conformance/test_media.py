"""Real audio through real browsers: run only inside the loopback-only namespace (make test).

``scripts/netns-run`` gives these tests a network namespace with nothing but 127.0.0.0/8, so
ICE can only pair loopback candidates and no media packet can leave the machine.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.conformance.test_browser import events, sockets, start, wait_event
from tests.harness import Voxgate
from tests.relay import Relay
from tests.rtc.conftest import api_for
from tests.sip.peers import start_sip_node
from voxgate.sip.ng import NgClient

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
    alice, bob, alice_cred = _call_between_pages(server, open_page)  # audio both ways
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


def _call_between_pages(
    server: Voxgate,
    open_page: OpenPage,
    alice_host: str | None = None,
    alice_options: dict[str, Any] | None = None,
    bob_host: str | None = None,
    **options: Any,
) -> tuple[Page, Page, dict[str, Any]]:
    """Alice (signaling through ``alice_host``) calls Bob (through ``bob_host``); both
    active, audio flowing.
    ``options`` go to both pages' SDK (``vxHelper=True``: with the voxgate browser helper),
    ``alice_options`` to Alice's only."""
    api = api_for(server)
    conn = api.connection()
    alice_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = open_page(server), open_page(server)
    host = alice_host or server.rtc_url
    token = api.token(alice_cred["id"])
    start(alice, server, login_token=token, host=host, **options, **(alice_options or {}))
    bob_token = api.token(bob_cred["id"])
    start(bob, server, login_token=bob_token, host=bob_host or server.rtc_url, **options)
    wait_event(alice, "telnyx.ready")
    wait_event(bob, "telnyx.ready")
    bob.evaluate("() => { window.vxAutoAnswer = true; }")
    alice.evaluate("dest => window.vxDial(dest)", bob_cred["sip_username"])
    wait_state(alice, "active")
    wait_state(bob, "active")
    audio_flows(alice)
    audio_flows(bob)
    return alice, bob, alice_cred


def _still_growing(page: Page) -> bool:
    before: dict[str, int] = page.evaluate("() => window.vxAudioBytes()")
    time.sleep(1.5)
    after: dict[str, int] = page.evaluate("() => window.vxAudioBytes()")
    return after["received"] > before["received"] + 2000


def test_a_network_cut_mid_call_is_survived_by_the_real_sdk(
    server: Voxgate, open_page: OpenPage
) -> None:
    """The relay between Alice's page and the gateway resets her socket mid-call. The SDK
    reconnects through it and logs in with its old sessid; the gateway lists the call in
    ``reattached_sessions``, so neither page hangs up and audio keeps flowing both ways."""
    with Relay(server.rtc_port) as relay:
        alice, bob, alice_cred = _call_between_pages(server, open_page, relay.url)
        relay.cut()
        alice.wait_for_function(
            "() => window.vxEvents.filter(e => e.name === 'telnyx.ready').length >= 2",
            timeout=20_000,
        )
        assert relay.accepted == 2 and len(sockets(alice)) == 2
        for page in (alice, bob):
            assert "hangup" not in [s["state"] for s in states(page)]
            assert not events(page, "telnyx.error")  # no 48501 SESSION_NOT_REATTACHED
            assert _still_growing(page)
        kinds = api_for(server).wait_audit(alice_cred["id"], "reattached")
        assert "detached" in kinds
        bob.evaluate("() => window.vxHangup()")  # and the call still ends cleanly
        wait_state(alice, "hangup")


def test_the_other_page_hears_why_when_the_caller_never_comes_back(
    make_server: type[Voxgate], open_page: OpenPage
) -> None:
    vg = make_server(extra_args=["--reattach-window", "2"]).start()
    with Relay(vg.rtc_port) as relay:
        _alice, bob, _ = _call_between_pages(vg, open_page, relay.url)
        relay.refuse()
        relay.cut()
        bob.wait_for_function(
            "() => window.vxCallStates.some(s => s.state === 'hangup')", timeout=15_000
        )
        ended = next(s for s in states(bob) if s["state"] == "hangup")
        assert ended["cause"] == "RECOVERY_ON_TIMER_EXPIRE" and ended["causeCode"] == 102


def _bytes(page: Page) -> dict[str, int]:
    got: dict[str, int] = page.evaluate("() => window.vxAudioBytes()")
    return got


def _quiet_for(pages: list[Page], seconds: float = 2.0) -> bool:
    """No audio byte received on any of ``pages`` for ``seconds`` (after a settling moment)."""
    time.sleep(0.7)  # packets already in flight
    before = [_bytes(p)["received"] for p in pages]
    time.sleep(seconds)
    return [_bytes(p)["received"] for p in pages] == before


def test_hold_stops_audio_both_ways_and_unhold_brings_it_back(
    server: Voxgate, open_page: OpenPage
) -> None:
    alice, bob, _ = _call_between_pages(server, open_page, vxHelper=True)
    alice.evaluate("() => window.vxHold(true)")
    wait_state(alice, "held")
    held = wait_event(bob, "telnyx.notification", pred="e.payload.eventType === 'voxgate.hold'")
    assert held["payload"]["held"] is True and held["payload"]["by"] == "remote"
    _unhold_brings_the_audio_back(alice, bob)
    alice.evaluate("() => window.vxHangup()")


def _unhold_brings_the_audio_back(alice: Page, bob: Page) -> None:
    """Alice is holding: no audio either way for 2 s; her unhold, and it flows both ways."""
    assert _quiet_for([alice, bob])
    alice.evaluate("() => window.vxHold(false)")
    wait_state(alice, "active")
    for page in (alice, bob):
        assert _still_growing(page)


def test_hold_with_an_assistant_stops_its_voice_too(server: Voxgate, open_page: OpenPage) -> None:
    api = api_for(server)
    bot = api.post("/ai/assistants", {"name": "tone", "kind": "tone"}).json()["data"]
    page = open_page(server)
    target = {"target_type": "ai_assistant", "target_id": bot["id"]}
    start(page, server, anonymous_login=target, vxHelper=True)
    wait_event(page, "telnyx.ready")
    page.evaluate("() => window.vxDial('')")
    wait_state(page, "active", 20_000)
    audio_flows(page)
    page.evaluate("() => window.vxHold(true)")
    wait_state(page, "held")
    assert _quiet_for([page])
    sent = _bytes(page)["sent"]
    time.sleep(1)
    assert _bytes(page)["sent"] == sent  # the page stopped sending as well
    page.evaluate("() => window.vxHold(false)")
    wait_state(page, "active")
    assert _still_growing(page)


def _ufrags(page: Page) -> dict[str, str]:
    """ICE ufrags of the live call's peer connection: an ICE restart changes both."""
    return page.evaluate(
        """() => {
            const pc = window.vxPCs[window.vxPCs.length - 1];
            const ufrag = (d) => (d && d.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1];
            return { local: ufrag(pc.localDescription), remote: ufrag(pc.remoteDescription) };
        }"""
    )


def _restart_ice(page: Page) -> None:
    page.evaluate(
        """() => {
            const calls = window.vxCalls;
            const id = Object.keys(calls).find((k) => calls[k].state === 'active');
            return window.client.triggerIceRestart(id);
        }"""
    )


def test_ice_restart_is_renegotiated_through_the_other_page(
    server: Voxgate, open_page: OpenPage
) -> None:
    """The SDK's own ICE restart (``modify`` ``updateMedia``) reaches the other page, whose
    helper answers it on the same peer connection: new ICE credentials on both sides, no
    error, no reconnect, audio on."""
    alice, bob, _ = _call_between_pages(server, open_page, vxHelper=True)
    before = _ufrags(alice)
    _restart_ice(alice)
    wait_event(bob, "telnyx.notification", pred="e.payload.eventType === 'voxgate.update_media'")
    alice.wait_for_function(
        """ufrag => {
            const pc = window.vxPCs[window.vxPCs.length - 1];
            return pc.remoteDescription && !pc.remoteDescription.sdp.includes(ufrag);
        }""",
        arg="a=ice-ufrag:" + before["remote"],
        timeout=15_000,
    )
    after = _ufrags(alice)
    assert after["local"] != before["local"] and after["remote"] != before["remote"]
    time.sleep(1)
    assert not events(alice, "telnyx.error") and len(sockets(alice)) == 1
    for page in (alice, bob):
        assert _still_growing(page)


def test_an_ice_restart_nobody_answers_costs_one_reconnect_and_keeps_the_call(
    server: Voxgate, open_page: OpenPage
) -> None:
    """Without the helper on the other page nobody can answer the restart offer: the gateway
    refuses it before the SDK's 10 s limit, the SDK reports 47001, reconnects once and
    reattaches, and the call goes on; no reconnect loop follows."""
    alice, bob, _ = _call_between_pages(server, open_page)
    _restart_ice(alice)
    alice.wait_for_function(
        "() => window.vxEvents.filter(e => e.name === 'telnyx.ready').length >= 2",
        timeout=25_000,
    )
    errors = [e["payload"]["error"]["code"] for e in events(alice, "telnyx.error")]
    assert errors == [47001]
    time.sleep(8)  # long enough for a second round, were there one
    assert len(sockets(alice)) == 2
    for page in (alice, bob):
        assert "hangup" not in [s["state"] for s in states(page)]
        assert _still_growing(page)


def test_a_trickling_caller_reaches_a_callee_that_does_not_trickle(
    server: Voxgate, open_page: OpenPage
) -> None:
    """The caller's SDK trickles (its offer carries no candidates; they follow as
    ``telnyx_rtc.candidate``); the callee's does not. The gateway relays the candidates to the
    callee's leg, and audio flows both ways."""
    _alice, bob, _ = _call_between_pages(server, open_page, alice_options={"trickleIce": True})
    remote = bob.evaluate(
        """async () => {
            const pc = window.vxPCs[window.vxPCs.length - 1];
            const types = [];
            (await pc.getStats()).forEach((r) => {
                if (r.type === 'remote-candidate') types.push(r.candidateType);
            });
            return { types, offer: pc.remoteDescription.sdp };
        }"""
    )
    # Alice's trickled candidates reached Bob's peer (written into the offer he answered), not
    # only peer-reflexive ones learned from her checks, which two NATs would not let through
    assert "host" in remote["types"] and "a=candidate:" in remote["offer"]


def test_anchored_media_makes_the_sdks_own_hold_stop_the_audio(
    tmp_path: Path, open_page: OpenPage
) -> None:
    """--anchor-media: a browser-to-browser call's media goes through rtpengine, so the
    unmodified SDK's hold() (no helper on either page) stops the audio both ways; the
    console's call view shows the relay's packet counters; the hang-up ends rtpengine's call."""
    node = start_sip_node(Voxgate, workdir=tmp_path / "anchor", extra_args=["--anchor-media"])
    args = node.vg.extra_args
    try:
        alice, bob, _ = _call_between_pages(node.vg, open_page)  # audio both ways
        low, high = (int(p) for p in args[args.index("--media-ports") + 1].split("-"))
        for page in (alice, bob):  # each page's media peer is rtpengine, not the other page
            port = int(page.evaluate(REMOTE_PORT))
            assert low <= port <= high, port
        api = api_for(node.vg)
        deadline = time.monotonic() + 10
        while True:  # the node reports its calls, with the counters it last read
            calls = api.http.get("/calls").json()["data"]
            counters = calls[0].get("relay") if calls else None
            if counters and counters["caller_packets"] > 50 and counters["callee_packets"] > 50:
                break
            assert time.monotonic() < deadline, calls
            time.sleep(0.5)
        alice.evaluate("() => window.vxHold(true)")  # the SDK's own call.hold()
        wait_state(alice, "held")
        _unhold_brings_the_audio_back(alice, bob)
        alice.evaluate("() => window.vxHangup()")
        wait_state(bob, "hangup")
        address = args[args.index("--rtpengine-ng") + 1]
        with ThreadPoolExecutor(1) as pool:  # (Playwright's loop runs in this thread)
            assert pool.submit(asyncio.run, _relay_calls_after_a_while(address)).result() == []
    finally:
        node.vg.stop()


REMOTE_PORT = """async () => {
    const pc = window.vxPCs[window.vxPCs.length - 1];
    const stats = await pc.getStats();
    let remote = null, port = 0;
    stats.forEach((r) => {
        if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') {
            remote = r.remoteCandidateId;
        }
    });
    stats.forEach((r) => { if (r.id === remote) port = r.port; });
    return port;
}"""


async def _relay_calls_after_a_while(address: str) -> list[str]:
    """rtpengine's calls, once they are gone (or after 5 s, whatever it still holds)."""
    relay = NgClient.at(address)
    try:
        for _ in range(25):
            calls = await relay.list_calls()
            if not calls:
                break
            await asyncio.sleep(0.2)
        return calls
    finally:
        relay.close()
