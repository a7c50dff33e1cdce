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


PING = json.dumps({"jsonrpc": "2.0", "id": "p", "method": "telnyx_rtc.ping"})


async def test_fragmented_messages_are_reassembled(strict: Voxgate) -> None:
    async with websockets.connect(strict.rtc_url) as ws:
        await ws.send([PING[:10], PING[10:30], PING[30:]])  # three frames, one message
        assert json.loads(await ws.recv())["result"]["message"] == "PONG"


async def test_fragments_count_toward_the_message_size_limit(strict: Voxgate) -> None:
    before = hits(strict, "frame_size")
    async with websockets.connect(strict.rtc_url) as ws:
        await ws.send(["x" * 3000, "x" * 3000])  # each frame fits, the message does not
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
    await asyncio.sleep(0.2)
    assert hits(strict, "frame_size") == before + 1


async def _raw_frames(vg: Voxgate, *frames: bytes) -> tuple[int, bytes]:
    """Upgrade by hand and send frames no well-behaved client library would send."""
    host, port = vg.rtc_url.removeprefix("ws://").rstrip("/").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert b" 101 " in await reader.readuntil(b"\r\n\r\n")
    for frame in frames:
        writer.write(frame)
    head = await asyncio.wait_for(reader.readexactly(2), 5)
    payload = await reader.readexactly(head[1] & 0x7F)
    writer.close()
    assert head[0] == 0x88, head  # a close frame
    return int.from_bytes(payload[:2], "big"), payload[2:]


def _masked(opcode_byte: int, payload: bytes) -> bytes:
    return bytes([opcode_byte, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


async def test_invalid_utf8_text_is_closed_with_1007(strict: Voxgate) -> None:
    code, _ = await _raw_frames(strict, _masked(0x81, b'{"id":"\xff\xfe"}'))
    assert code == 1007


async def test_a_stray_continuation_frame_is_a_protocol_error(strict: Voxgate) -> None:
    code, reason = await _raw_frames(strict, _masked(0x80, b"tail"))
    assert code == 1002 and b"continuation" in reason


async def test_a_new_message_inside_a_fragmented_one_is_a_protocol_error(strict: Voxgate) -> None:
    code, _ = await _raw_frames(strict, _masked(0x01, b"part"), _masked(0x81, b"whole"))
    assert code == 1002
