"""Dropped sockets must not hold a node's memory (issue 30): a session without a call ends when
its socket drops (nothing to reattach); one with a call is detached, counted in /metrics, and
each credential keeps at most ``--max-detached-per-credential`` of them on a node.

A drop here is ``transport.abort()``: a reset with no close frame, as a dropped network."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import websockets

from tests.harness import Voxgate
from tests.rtc.conftest import Api, api_for
from tests.rtc.test_calls import online, ring
from voxgate.client import Call, Client

DROPS = 300  # bounded: the loop a misbehaving client would run forever


def metric(vg: Voxgate, name: str) -> float:
    """The sum of a metric's samples on /metrics (every label set)."""
    text = httpx.get(vg.api_url + "/metrics").text
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    ]
    return sum(values)


async def settled(vg: Voxgate, name: str, value: float, timeout: float = 15.0) -> float:
    """Wait (bounded) for a metric to reach ``value``; returns what it read last."""
    seen = metric(vg, name)
    for _ in range(int(timeout / 0.1)):
        if seen == value:
            break
        await asyncio.sleep(0.1)
        seen = metric(vg, name)
    return seen


async def login_and_drop(url: str, token: str) -> str:
    """connect + login + REGED, then a reset without a close frame. Returns the sessid."""
    ws = await websockets.connect(url, compression=None)
    login = {"jsonrpc": "2.0", "id": "L", "method": "login", "params": {"login_token": token}}
    await ws.send(json.dumps(login))
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "G", "method": "telnyx_rtc.gatewayState"}))
    replies: dict[str, Any] = {}
    for _ in range(20):  # the login reply, clientReady, notices, then REGED
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        replies[str(frame.get("id"))] = frame
        if "G" in replies:
            break
    assert replies["G"]["result"]["params"]["state"] == "REGED", replies
    ws.transport.abort()
    return str(replies["L"]["result"]["sessid"])


async def test_a_login_and_drop_loop_leaves_no_session_behind(
    make_server: type[Voxgate],
) -> None:
    vg = make_server().start()
    api = api_for(vg)
    conn = api.connection()
    creds = [api.credential(conn["id"]) for _ in range(3)]
    tokens = [api.token(c["id"]) for c in creds]
    for batch in range(0, DROPS, 20):
        await asyncio.gather(
            *(login_and_drop(vg.rtc_url, tokens[i % 3]) for i in range(batch, batch + 20))
        )
    assert await settled(vg, "voxgate_sessions", 0) == 0  # each ended, none kept detached
    assert metric(vg, "voxgate_detached_sessions") == 0
    assert metric(vg, "voxgate_logins_total") >= DROPS
    kinds = api.wait_audit(creds[0]["id"], "dropped")
    assert "detached" not in kinds
    for _ in range(50):  # the node's report (every 2 s) for the console's GET /v2/sessions
        nodes = api.http.get("/sessions").json()["data"]
        if nodes and nodes[0]["sessions"] == 0:
            break
        await asyncio.sleep(0.2)
    assert [(n["sessions"], n["detached"]) for n in nodes] == [(0, 0)]
    # the credential logs in again as ever (the sessions let go of their registrations)
    back = await online(api, vg.rtc_url, creds[0])
    assert api.registration(conn["id"])["status"] == "Registered"
    await back.close()


async def _ringing(api: Api, url: str, caller: dict[str, Any]) -> tuple[Any, Client, Call]:
    """A raw socket of ``caller`` rings a callee of its own, who never answers (a ringing call
    is live: the SDK would keep it across a reconnect)."""
    callee_cred = api.credential(caller["connection_id"])
    callee = await online(api, url, callee_cred)
    ws = await websockets.connect(url, compression=None)
    login = {"login_token": api.token(caller["id"])}
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "L", "method": "login", "params": login}))
    dialog = {"callID": str(uuid.uuid4()), "destination_number": callee_cred["sip_username"]}
    invite = {"sdp": "v=0 offer", "dialogParams": dialog}
    await ws.send(
        json.dumps({"jsonrpc": "2.0", "id": "I", "method": "telnyx_rtc.invite", "params": invite})
    )
    return ws, callee, await ring(callee)


async def test_a_credential_keeps_its_newest_detached_sessions_up_to_the_cap(
    make_server: type[Voxgate],
) -> None:
    """Three sessions of one credential drop mid-call, one after another, on a node keeping
    two per credential: the oldest is let go (its callee hears RECOVERY_ON_TIMER_EXPIRE), the
    two newest wait for their client, counted in /metrics."""
    vg = make_server(extra_args=["--max-detached-per-credential", "2"]).start()
    api = api_for(vg)
    caller = api.credential()
    calls = [await _ringing(api, vg.rtc_url, caller) for _ in range(3)]
    for kept, (ws, _callee, _call) in enumerate(calls, start=1):
        ws.transport.abort()
        assert await settled(vg, "voxgate_detached_sessions", min(kept, 2)) == min(kept, 2)
    first = calls[0][1]
    ended = await first.wait_for("call_ended", 10)
    assert ended.data["cause"] == "RECOVERY_ON_TIMER_EXPIRE"
    assert calls[0][2].state == "hangup"
    assert [c.state for _, _, c in calls[1:]] == ["ringing", "ringing"]
    limit = 'voxgate_limit_hits_total{limit="detached_per_credential"}'
    assert metric(vg, limit) == 1
    kinds = api.wait_audit(caller["id"], "detach_expired")
    assert kinds.count("detached") == 3 and kinds.count("detach_expired") == 1
    for _, callee, _ in calls:
        await callee.close()


def test_the_cap_must_keep_at_least_one() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voxgate", "serve", "--max-detached-per-credential", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--max-detached-per-credential must be 1 or more" in done.stderr
