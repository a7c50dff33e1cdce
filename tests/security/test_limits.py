"""Every limit gives a clear error or close code and is counted in /metrics."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
import websockets

from tests.harness import Voxgate


def hits(vg: Voxgate, limit: str) -> float:
    text = httpx.get(vg.api_url + "/metrics").text
    m = re.search(rf'^voxgate_limit_hits_total{{limit="{limit}"}} ([0-9.e+]+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.fixture
def strict(make_server: type[Voxgate]) -> Voxgate:
    args = [
        "--handshake-timeout",
        "1",
        "--max-sockets-per-address",
        "3",
        "--max-frames-per-second",
        "5",
        "--max-frame-bytes",
        "4096",
    ]
    return make_server(extra_args=args).start()


async def test_frame_size_limit(strict: Voxgate) -> None:
    async with websockets.connect(strict.rtc_url, max_size=None) as ws:
        await ws.send("x" * 5000)
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
    await asyncio.sleep(0.2)
    assert hits(strict, "frame_size") == 1


async def test_frames_per_second_limit(strict: Voxgate) -> None:
    async with websockets.connect(strict.rtc_url) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(200):
                await ws.send(
                    json.dumps({"jsonrpc": "2.0", "id": "p", "method": "telnyx_rtc.ping"})
                )
            while True:
                await ws.recv()
        assert ws.close_code == 1008 and ws.close_reason == "too many frames"
    assert hits(strict, "frames_per_second") >= 1


async def test_unauthenticated_time_limit(strict: Voxgate) -> None:
    async with websockets.connect(strict.rtc_url) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        assert ws.close_code == 4001
    assert hits(strict, "login_timeout") >= 1


async def test_sockets_per_address_limit(strict: Voxgate) -> None:
    held = [await websockets.connect(strict.rtc_url, local_addr=("127.0.0.9", 0)) for _ in range(3)]
    extra = await websockets.connect(strict.rtc_url, local_addr=("127.0.0.9", 0))
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(extra.recv(), 5)
    assert extra.close_code == 1008 and "too many connections" in (extra.close_reason or "")
    other = await websockets.connect(
        strict.rtc_url, local_addr=("127.0.0.10", 0)
    )  # other addresses are fine
    await other.send(json.dumps({"jsonrpc": "2.0", "id": "p", "method": "telnyx_rtc.ping"}))
    assert json.loads(await other.recv())["result"]["message"] == "PONG"
    for ws in (*held, other):
        await ws.close()
    assert hits(strict, "sockets_per_address") >= 1


def test_rest_body_limit(server: Voxgate) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}", "content-type": "application/json"}
    big = b'{"connection_name": "' + b"x" * 100_000 + b'"}'
    r = httpx.post(f"{server.base_url}/credential_connections", content=big, headers=headers)
    assert r.status_code == 413 and r.json()["errors"][0]["code"] == "10015"
    assert hits(server, "rest_body") >= 1
