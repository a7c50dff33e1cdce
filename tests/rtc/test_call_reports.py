"""Call reports on the signaling port, as the SDK posts them: taken for the session's own calls
with the id its REGED gave it, refused (and not kept) otherwise, summarized per call, kept for
the retention period, over TLS when the socket is."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.certs import make_ca_and_cert
from tests.harness import Voxgate
from tests.rtc.conftest import Api, api_for
from tests.rtc.test_calls import online, ring
from tests.rtc.test_registrations import ask

STATS = [
    {
        "intervalStartUtc": f"2026-11-26T10:00:0{i}Z",
        "intervalEndUtc": f"2026-11-26T10:00:0{i + 1}Z",
        "audio": {
            "inbound": {
                "packetsReceived": 50 * (i + 1),
                "bytesReceived": 8000 * (i + 1),
                "packetsLost": i,
                "jitterAvg": 0.004 * (i + 1),
            },
            "outbound": {"packetsSent": 51 * (i + 1), "bytesSent": 8100 * (i + 1)},
        },
        "connection": {"roundTripTimeAvg": 0.02 * (i + 1), "currentRoundTripTime": 0.03},
    }
    for i in range(3)
]


def report(call_id: str, *, final: bool, stats: list[dict[str, Any]] | None = None) -> bytes:
    body: dict[str, Any] = {
        "summary": {"callId": call_id, "direction": "outbound", "durationSeconds": 3.5},
        "stats": STATS if stats is None else stats,
        "logs": [],
    }
    if not final:
        body |= {"segment": 0, "flushReason": "buffer-limit"}
    return json.dumps(body).encode()


async def calling(api: Api, vg: Voxgate, call_id: str) -> Any:
    """A raw socket (as the SDK's) that logged in and placed ``call_id``; its report id."""
    conn = api.connection()
    alice, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    bob = await online(api, vg.rtc_url, bob_cred)
    ws = await websockets.connect(vg.rtc_url)
    assert "result" in await ask(ws, "login", {"login_token": api.token(alice["id"])})
    reged = (await ask(ws, "telnyx_rtc.gatewayState", {}))["result"]["params"]
    invite = {
        "sdp": "v=0",
        "dialogParams": {"callID": call_id, "destination_number": bob_cred["sip_username"]},
    }
    await ask(ws, "telnyx_rtc.invite", invite)
    incoming = await ring(bob)
    return ws, reged, alice, bob, incoming


def post(
    vg: Voxgate, report_id: str, call_id: str, body: bytes, path: str = "/call_report", **kw: Any
) -> httpx.Response:
    scheme = "https" if vg.tls else "http"
    headers = {
        "content-type": "application/json",
        "x-call-report-id": report_id,
        "x-call-id": call_id,
        "origin": "http://app.example",
    }
    return httpx.post(
        f"{scheme}://127.0.0.1:{vg.rtc_port}{path}", content=body, headers=headers, **kw
    )


async def test_reports_are_taken_for_own_calls_and_refused_otherwise(
    make_server: type[Voxgate],
) -> None:
    vg = make_server(extra_args=["--call-report-max-bytes", "20000"]).start()
    api = api_for(vg)
    ws, reged, alice, bob, incoming = await calling(api, vg, "c-alice-1")
    rid = reged["call_report_id"]
    assert reged["dc"] and reged["region"] == "local"
    preflight = httpx.options(
        f"http://127.0.0.1:{vg.rtc_port}/call_report",
        headers={"origin": "http://app.example", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 204
    assert "x-call-report-id" in preflight.headers["access-control-allow-headers"]
    taken = post(vg, rid, "c-alice-1", report("c-alice-1", final=False))
    assert taken.status_code == 201 and taken.headers["access-control-allow-origin"] == "*"
    refusals = {
        "forged id": post(vg, rid.split(".")[0] + ".AAAAAAAAAAAAAAAAAAAAAAAA", "c-alice-1", b"{}"),
        "no id": post(vg, "", "c-alice-1", b"{}"),
        "someone else's call": post(vg, rid, incoming.id, report(incoming.id, final=True)),
        "not JSON": post(vg, rid, "c-alice-1", b"{nope"),
        "too large": post(vg, rid, "c-alice-1", b"x" * 30_000),
        "recording, off": post(vg, rid, "c-alice-1", b"{}", path="/call_recording"),
    }
    codes = {why: r.status_code for why, r in refusals.items()}
    assert codes == {
        "forged id": 403,
        "no id": 403,
        "someone else's call": 403,
        "not JSON": 400,
        "too large": 413,
        "recording, off": 403,
    }
    assert all(r.json()["errors"][0]["detail"] for r in refusals.values())
    await ws.close()  # the call ends with its session; the final report may still come
    final = post(vg, rid, "c-alice-1", report("c-alice-1", final=True))
    assert final.status_code == 201
    listed = api.http.get("/call_reports", params={"filter[call_id]": "c-alice-1"}).json()
    assert listed["meta"]["total_results"] == 2  # nothing refused was kept
    assert sorted(r["final"] for r in listed["data"]) == [False, True]
    assert (
        api.http.get("/call_reports", params={"filter[call_id]": incoming.id}).json()["meta"][
            "total_results"
        ]
        == 0
    )
    quality = api.http.get("/call_quality/c-alice-1").json()["data"]
    assert quality["final"] is True and quality["duration_seconds"] == 3.5
    assert quality["packets_received"] == 150 and quality["bytes_sent"] == 24300
    assert quality["rtt_ms_avg"] == 40.0 and quality["rtt_ms_worst"] == 60.0
    assert quality["packet_loss_percent"] == round(100 * 2 / 152, 2)
    assert 1.0 <= quality["mos"] <= 4.5 and len(quality["series"]) == 3
    one = api.http.get(f"/call_reports/{listed['data'][0]['id']}").json()["data"]
    assert one["body"]["summary"]["callId"] == "c-alice-1"
    api.wait_audit(alice["id"], "call_report")
    printed = json.loads(vg.cli("calls", "report", "c-alice-1").stdout)
    assert printed["mos"] == quality["mos"] and printed["reports"] == 2
    missing = vg.cli("calls", "report", "no-such-call", check=False)
    assert missing.returncode == 1 and "No call reports" in missing.stderr
    await bob.close()


async def test_recordings_are_taken_only_when_an_operator_allows_them(
    make_server: type[Voxgate],
) -> None:
    vg = make_server(extra_args=["--call-recordings"]).start()
    api = api_for(vg)
    ws, reged, _alice, bob, _incoming = await calling(api, vg, "c-rec")
    segment = json.dumps({"call_id": "c-rec", "segment": 0, "track": "local", "samples": []})
    taken = post(vg, reged["call_report_id"], "c-rec", segment.encode(), path="/call_recording")
    assert taken.status_code == 201
    kept = api.http.get("/call_reports", params={"filter[call_id]": "c-rec"}).json()["data"]
    assert [(r["kind"], r["final"]) for r in kept] == [("recording", False)]
    await ws.close()
    await bob.close()


async def test_a_flood_from_one_session_is_refused(make_server: type[Voxgate]) -> None:
    vg = make_server().start()
    api = api_for(vg)
    ws, reged, _alice, bob, _incoming = await calling(api, vg, "c-flood")
    answers = [
        post(vg, reged["call_report_id"], "c-flood", report("c-flood", final=False)).status_code
        for _ in range(35)
    ]
    assert answers.count(201) == 30 and set(answers[30:]) == {429}
    ping = await ask(ws, "telnyx_rtc.ping", {})
    assert ping["result"]["message"] == "PONG"  # signaling carried on meanwhile
    await ws.close()
    await bob.close()


async def test_old_reports_are_swept(make_server: type[Voxgate]) -> None:
    vg = make_server(extra_args=["--call-report-retention-days", "0.00002"]).start()  # ~1.7 s
    api = api_for(vg)
    ws, reged, _alice, bob, _incoming = await calling(api, vg, "c-old")
    assert (
        post(vg, reged["call_report_id"], "c-old", report("c-old", final=True)).status_code == 201
    )
    deadline = time.monotonic() + 15
    while api.http.get("/call_reports", params={"filter[call_id]": "c-old"}).json()["meta"][
        "total_results"
    ]:
        assert time.monotonic() < deadline, "the report outlived its retention"
        await asyncio.sleep(0.5)
    await ws.close()
    await bob.close()


async def test_reports_come_over_https_when_the_socket_is_wss(
    make_server: type[Voxgate], tmp_path: Path
) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    vg = make_server(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca=ca).start()
    tls = ssl.create_default_context(cafile=str(ca))
    api = api_for(vg)
    cred = api.credential()
    async with websockets.connect(vg.rtc_url, ssl=tls) as ws:
        assert "result" in await ask(ws, "login", {"login_token": api.token(cred["id"])})
        reged = (await ask(ws, "telnyx_rtc.gatewayState", {}))["result"]["params"]
        invite = {"sdp": "v=0", "dialogParams": {"callID": "c-tls", "destination_number": "x"}}
        await ask(ws, "telnyx_rtc.invite", invite)  # nobody there: the call ends at once
        taken = post(vg, reged["call_report_id"], "c-tls", report("c-tls", final=True), verify=tls)
        assert taken.status_code == 201
    assert api.http.get("/call_quality/c-tls").json()["data"]["final"] is True
