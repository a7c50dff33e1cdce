"""The real SDK's call reports: two Chromium pages with ``enableCallReports`` (short intervals)
talk, hang up, and voxgate holds intermediate and final reports for both legs, whose numbers
agree with the pages' own ``getStats()``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.certs import make_ca_and_cert
from tests.conformance.conftest import PageServer
from tests.conformance.test_browser import start, wait_event
from tests.conformance.test_media import _call_between_pages, audio_flows, wait_state
from tests.conformance.test_media_nginx import pages_of, trusting_browser
from tests.harness import Voxgate
from tests.rtc.conftest import Api, api_for

pytestmark = pytest.mark.media
REPORTS = {"enableCallReports": True, "callReportInterval": 1000, "callReportFlushInterval": 3000}


def _reports(api: Api, call_id: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    """The leg's reports once its final one is in."""
    deadline = time.monotonic() + timeout
    while True:
        found: list[dict[str, Any]] = api.http.get(
            "/call_reports", params={"filter[call_id]": call_id}
        ).json()["data"]
        if any(r["final"] for r in found):
            return found
        assert time.monotonic() < deadline, f"no final report for {call_id}: {found}"
        time.sleep(0.5)


def _near(ours: int | None, theirs: int) -> bool:
    return ours is not None and abs(ours - theirs) <= 0.1 * theirs


def test_both_legs_report_and_the_numbers_agree_with_get_stats(
    server: Voxgate, open_page: Callable[..., Page]
) -> None:
    api = api_for(server)
    conn = api.connection()
    alice_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = open_page(server), open_page(server)
    for page, cred in ((alice, alice_cred), (bob, bob_cred)):
        start(page, server, login_token=api.token(cred["id"]), **REPORTS)
        wait_event(page, "telnyx.ready")
    bob.evaluate("() => { window.vxAutoAnswer = true; }")
    alice.evaluate("dest => window.vxDial(dest)", bob_cred["sip_username"])
    wait_state(alice, "active")
    audio_flows(alice)
    time.sleep(7)  # long enough for intermediate segments (flushed every 3 s)
    # Both sides stop sending, so the counters hold still: the pages' getStats() and the
    # SDK's last report intervals then count the same packets.
    for page in (alice, bob):
        page.evaluate(
            "() => Promise.all(window.vxPCs.flatMap(pc => "
            "pc.getSenders().map(s => s.replaceTrack(null))))"
        )
    time.sleep(2.5)  # two report intervals
    seen = {name: page.evaluate("() => window.vxAudioBytes()") for name, page in
            (("alice", alice), ("bob", bob))}  # fmt: skip
    ids = {
        name: page.evaluate("() => Object.keys(window.vxCalls)[0]")
        for name, page in (("alice", alice), ("bob", bob))
    }
    alice.evaluate("() => window.vxHangup()")
    wait_state(bob, "hangup")
    for name in ("alice", "bob"):
        reports = _reports(api, ids[name])
        assert any(not r["final"] for r in reports), f"{name}: no intermediate segment"
        quality = api.http.get(f"/call_quality/{ids[name]}").json()["data"]
        stats = seen[name]
        assert _near(quality["bytes_sent"], stats["sent"]), (name, quality, stats)
        assert _near(quality["bytes_received"], stats["received"]), (name, quality, stats)
        assert _near(quality["packets_sent"], stats["packetsSent"]), (name, quality, stats)
        assert _near(quality["packets_received"], stats["packetsReceived"]), (name, quality)
        assert quality["rtt_ms_avg"] is not None and quality["mos"] is not None
    assert api.http.get(f"/call_reports/{reports[0]['id']}").json()["data"]["body"]["stats"]


def test_over_wss_the_sdk_posts_its_reports_over_https(
    make_server: type[Voxgate], browser: Browser, pages: PageServer, tmp_path: Path
) -> None:
    """The demo-style deployment: TLS on voxgate itself (--tls-cert/--tls-key); the SDK signals
    over wss:// and posts its reports to https://<the same host>/call_report."""
    ca, cert, key = make_ca_and_cert(tmp_path)
    vg = make_server(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca=ca).start()
    with trusting_browser(browser, cert) as trusting:
        alice, _bob, _ = _call_between_pages(vg, pages_of(trusting, pages), **REPORTS)
        assert alice.evaluate("() => window.vxSockets[0].url").startswith("wss://")
        call_id = alice.evaluate("() => Object.keys(window.vxCalls)[0]")
        alice.evaluate("() => window.vxHangup()")
        assert any(r["final"] for r in _reports(api_for(vg), call_id))
