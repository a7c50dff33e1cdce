"""Nothing left behind: sessions that end (closed, or dropped and never reattached) take their
tasks and their deadlines with them, as /metrics counts them (``make bench``'s soak reads the
same gauges after half an hour of churn)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import httpx
import websockets

from tests.harness import Voxgate
from tests.rtc.conftest import api_for


def gauges(vg: Voxgate) -> dict[str, float]:
    """The live counts: asyncio tasks, the heap's deadlines, sessions of every kind."""
    text = httpx.get(vg.api_url + "/metrics").text
    found: dict[str, float] = {"sessions": 0.0}
    for name, labels, value in re.findall(r"^(voxgate_\w+?)(\{[^}]*\})? (\S+)$", text, re.M):
        if name == "voxgate_sessions":
            found["sessions"] += float(value)
        elif not labels:
            found[name] = float(value)
    return found


async def test_ended_sessions_leave_no_task_and_no_deadline(
    make_server: type[Voxgate],
) -> None:
    vg = make_server(extra_args=["--reattach-window", "1"]).start()
    api = api_for(vg)
    tokens = [api.token(api.credential()["id"]) for _ in range(6)]
    before = gauges(vg)
    assert before["voxgate_asyncio_tasks"] >= 1 and before["voxgate_deadlines"] == 0
    socks = []
    for token in tokens:
        ws = await websockets.connect(vg.rtc_url)
        login = {"jsonrpc": "2.0", "id": "L", "method": "login", "params": {"login_token": token}}
        await ws.send(json.dumps(login))
        for _ in range(5):  # the reply, then clientReady
            if json.loads(await asyncio.wait_for(ws.recv(), 5)).get("id") == "L":
                break
        socks.append(ws)
    during = gauges(vg)
    assert during["sessions"] == 6
    assert during["voxgate_deadlines"] >= 6  # each live session waits for its next ping
    for ws in socks[:3]:
        await ws.close()  # a polite close ends the session at once
    for ws in socks[3:]:
        ws.transport.abort()  # a dropped socket: detached, ended when the window is over
    give_up = time.monotonic() + 20
    while time.monotonic() < give_up:
        after = gauges(vg)
        ended = after["sessions"] == 0 and after["voxgate_deadlines"] == 0
        if ended and after["voxgate_asyncio_tasks"] <= before["voxgate_asyncio_tasks"]:
            break
        await asyncio.sleep(0.2)
    assert after["sessions"] == 0
    assert after["voxgate_deadlines"] == before["voxgate_deadlines"]
    assert after["voxgate_asyncio_tasks"] <= before["voxgate_asyncio_tasks"]
    api.http.close()
