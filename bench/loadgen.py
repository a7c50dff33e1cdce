"""The load generator: its own process (pinned to the other core), bounded loops, loopback only.

Each subcommand prints one JSON object on stdout.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import json
import resource
import socket
import statistics
import struct
import sys
import time
import uuid
from typing import Any

import uvloop

GATEWAY_LOGIN = "gateway"


def _raise_fd_limit() -> int:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _login_frame(token: str) -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": str(uuid.uuid4()),
            "method": "login",
            "params": {"login_token": token},
        }
    )


_KEY = base64.b64encode(b"voxgate-bench-k1").decode()
_ACCEPT = base64.b64encode(
    hashlib.sha1((_KEY + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
)


class RawClient(asyncio.Protocol):
    """A minimal WebSocket client: the load generator must not be the slower side.

    A general-purpose client library spends more per connection than the server under test, so
    this one does only what the bench needs: one upgrade, unfragmented text frames (masked with
    a zero key, which servers cannot tell apart from any other), close by dropping the socket.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.inbox: collections.deque[str] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.lost = False
        self.close_code: int | None = None  # the server's close frame's code, if one came

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's own Transport type
        transport.write(
            (
                f"GET / HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {_KEY}\r\n"
                "Sec-WebSocket-Version: 13\r\nUser-Agent: voxgate-bench\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[: end + 4]
            if not head.startswith(b"HTTP/1.1 101") or _ACCEPT not in head:
                self.upgraded.set_exception(RuntimeError(head[:80].decode(errors="replace")))
                return
            self.upgraded.set_result(None)
        buf = self.buffer
        while len(buf) >= 2:
            opcode, size, start = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(buf[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) < start + size:
                return
            payload = bytes(buf[start : start + size])
            del buf[: start + size]
            if opcode == 1:
                self.inbox.append(payload.decode())
            elif opcode == 8 and self.transport is not None:
                self.close_code = int.from_bytes(payload[:2], "big") if size >= 2 else 1005
                self.transport.close()
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True  # a recv() after this must not wait for a frame that cannot come
        for fut in (self.upgraded, self.closed, self.waiter):
            if fut is not None and not fut.done():
                fut.set_result(None) if fut is self.closed else fut.set_exception(
                    ConnectionError("closed")
                )

    def send(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
        assert self.transport is not None
        self.transport.write(head + b"\0\0\0\0" + data)

    async def recv(self) -> str:
        while not self.inbox:
            if self.lost:
                raise ConnectionError("closed")
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.inbox.popleft()

    def close(self) -> None:
        """A polite close: a close frame (1000), then the socket."""
        if self.transport is not None:
            self.transport.write(b"\x88\x82\0\0\0\0\x03\xe8")
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def reset(self) -> None:
        """A reset (RST, SO_LINGER 0), as a network drop: no close frame, and no TIME_WAIT
        left on this side (tens of thousands would use up the loopback's ports)."""
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()

    async def wait_closed(self) -> None:
        await self.closed


async def connect(url: str, local_addr: tuple[str, int] | None = None) -> RawClient:
    host, port = url.removeprefix("ws://").split("/")[0].rsplit(":", 1)
    _, client = await asyncio.get_running_loop().create_connection(
        lambda: RawClient(f"{host}:{port}"), host, int(port), local_addr=local_addr
    )
    await asyncio.wait_for(client.upgraded, 30)
    return client


async def _login(
    url: str, token: str, full: bool, local_addr: tuple[str, int] | None = None
) -> RawClient:
    """connect + login (+ clientReady + gatewayState -> REGED when ``full``)."""
    ws = await connect(url, local_addr)
    ws.send(_login_frame(token))
    while True:
        reply = json.loads(await ws.recv())
        if "method" not in reply:
            break
    if "result" not in reply:
        raise RuntimeError(f"login refused: {reply}")
    if full:
        ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": "gw", "method": "telnyx_rtc.gatewayState", "params": {}}
            )
        )
        while True:  # skip clientReady and any notice until our reply
            state = json.loads(await ws.recv())
            if state.get("id") == "gw":
                break
        assert state["result"]["params"]["state"] == "REGED"
    return ws


WARMUP = 0.5  # seconds of load before a rate sample's clock starts


async def _rate(attempt: Any, concurrency: int, seconds: float) -> dict[str, Any]:
    """``concurrency`` workers repeating ``attempt(i)``: warm up, then count for ``seconds``.

    A fixed duration, not a fixed count: at 30,000/s a fixed 6,000 requests was a 0.2 s sample,
    mostly connection set-up and scheduler luck, and moved several-fold between runs.
    """
    loop = asyncio.get_running_loop()
    start = loop.time() + WARMUP
    stop = start + seconds
    done = errors = total = 0

    async def worker(i: int) -> None:
        nonlocal done, errors, total
        while (now := loop.time()) < stop:
            try:
                await attempt(i)
                ok = True
            except Exception:
                ok = False
            total += ok  # warm-up included: what the server did all of
            if now >= start and loop.time() < stop:
                done += ok
                errors += not ok

    workers = asyncio.gather(*(worker(i) for i in range(concurrency)))
    await asyncio.wait_for(workers, WARMUP + seconds + 30)  # a hung attempt ends the sample
    return {
        "per_second": done / seconds,
        "done": done,
        "errors": errors,
        "seconds": seconds,
        "total": total,
    }


async def logins(
    url: str, tokens: list[str], full: bool, concurrency: int, seconds: float
) -> dict[str, Any]:
    turn = 0

    async def attempt(i: int) -> None:
        nonlocal turn
        turn += 1
        ws = await _login(url, tokens[(turn + i) % len(tokens)], full)
        ws.close()

    return await _rate(attempt, concurrency, seconds)


def _addr(i: int) -> tuple[str, int]:
    return (f"127.0.{1 + i // 20000}.{1 + (i // 250) % 250}", 0)


async def hold(url: str, tokens: list[str], full: bool, count: int, batch: int) -> dict[str, Any]:
    """Open ``count`` sessions (until failure) and report how many stood, then wait for stdin."""
    held: list[Any] = []
    failure = ""
    for start in range(0, count, batch):
        results = await asyncio.gather(
            *(
                _login(url, tokens[i % len(tokens)], full, _addr(i))
                for i in range(start, min(count, start + batch))
            ),
            return_exceptions=True,
        )
        for r in results:
            if isinstance(r, BaseException):
                failure = failure or f"{type(r).__name__}: {r}"[:200]
            else:
                held.append(r)
        if failure:
            break
    print(json.dumps({"held": len(held), "failure": failure}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    return {"held": len(held)}


async def storm(url: str | list[str], tokens: list[str], count: int, batch: int) -> dict[str, Any]:
    """Hold ``count`` sessions, drop them all at once, reconnect them all at once. With several
    ``url``s (the nodes of a cluster), session ``i`` goes to ``url[i % len(url)]`` both times."""
    urls = [url] if isinstance(url, str) else url
    live: list[RawClient] = []
    failures: collections.Counter[str] = collections.Counter()
    for start in range(0, count, batch):  # establish them at a pace the server can take
        first = await asyncio.gather(
            *(
                asyncio.wait_for(
                    _login(urls[i % len(urls)], tokens[i % len(tokens)], True, _addr(i)), 60
                )
                for i in range(start, min(count, start + batch))
            ),
            return_exceptions=True,
        )
        live += [w for w in first if not isinstance(w, BaseException)]
        failures.update(type(w).__name__ for w in first if isinstance(w, BaseException))
    for ws in live:
        ws.abort()  # a network drop, not a polite close
    await asyncio.sleep(1.0)
    sem = asyncio.Semaphore(batch)

    async def again(i: int) -> bool:
        async with sem:
            for _ in range(5):
                try:
                    login = _login(urls[i % len(urls)], tokens[i % len(tokens)], True, _addr(i))
                    ws = await asyncio.wait_for(login, 60)
                    ws.abort()
                    return True
                except Exception as exc:
                    failures[type(exc).__name__ + " (again)"] += 1
                    await asyncio.sleep(0.2)
            return False

    start = time.perf_counter()
    ok = await asyncio.gather(*(again(i) for i in range(len(live))))
    return {
        "sessions": len(live),
        "reged": sum(ok),
        "lost": len(live) - sum(ok),
        "seconds": time.perf_counter() - start,
        "failures": dict(failures),
    }


async def refresh(url: str, pairs: list[list[str]], sessions: int, rounds: int) -> dict[str, Any]:
    """``pairs``: [first_token, refresh_token] per credential. Latency of in-place re-logins."""
    socks = [await _login(url, pairs[i % len(pairs)][0], True, _addr(i)) for i in range(sessions)]
    lat: list[float] = []
    for r in range(rounds):
        ws = socks[(r * 7919) % sessions]
        token = pairs[((r * 7919) % sessions) % len(pairs)][1]
        t0 = time.perf_counter()
        ws.send(_login_frame(token))
        while True:
            reply = json.loads(await ws.recv())
            if "result" in reply or "error" in reply:
                break
        lat.append((time.perf_counter() - t0) * 1000)
        assert "result" in reply, reply
    for ws in socks:
        ws.abort()
    return _percentiles(lat)


async def drop(
    url: str, tokens: list[str], count: int, concurrency: int, full: bool
) -> dict[str, Any]:
    """``count`` logins (connect + login, + REGED when ``full``), each socket then reset with
    no close frame (a dropped network), ``concurrency`` at a time. Token ``k`` always comes
    from the same address, so a token is never presented from two at once (token reuse)."""
    turn = iter(range(count))
    done = 0
    failures: collections.Counter[str] = collections.Counter()

    async def worker() -> None:
        nonlocal done
        for k in turn:
            token = tokens[k % len(tokens)]
            try:
                ws = await asyncio.wait_for(_login(url, token, full, _addr(k % len(tokens))), 60)
            except Exception as exc:
                failures[type(exc).__name__] += 1
                continue
            ws.reset()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return {"dropped": done, "seconds": seconds, "failures": dict(failures)}


async def echo_latency(url: str, token: str, sessions: int, rounds: int) -> dict[str, Any]:
    socks = [await _login(url, token, False, _addr(i)) for i in range(sessions)]
    lat = []
    for r in range(rounds):
        ws = socks[(r * 7919) % sessions]
        t0 = time.perf_counter()
        ws.send(_login_frame(token))
        await ws.recv()
        lat.append((time.perf_counter() - t0) * 1000)
    for ws in socks:
        ws.abort()
    return _percentiles(lat)


async def http_rps(
    host: str, port: int, path: str, headers: dict[str, str], connections: int, seconds: float
) -> dict[str, Any]:
    """Keep-alive HTTP/1.1 POSTs with a tiny hand-rolled client (so the client is not the limit)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    request = head.encode()
    statuses: dict[int, int] = {}
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]

    async def attempt(i: int) -> None:
        reader, writer = streams[i]
        writer.write(request)
        status = int((await reader.readline()).split()[1])
        statuses[status] = statuses.get(status, 0) + 1
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)

    result = await _rate(attempt, connections, seconds)
    for _, writer in streams:
        writer.close()
    return {**result, "statuses": statuses}


async def revocation(
    url: str, api: str, key: str, creds: list[dict[str, Any]], sockets_per: int
) -> dict[str, Any]:
    """For each credential: open sockets, deactivate over REST, time until all are closed.

    The first credential warms the path (statement compilation, first-use imports) and is
    reported apart as ``first_ms``, not mixed into the percentiles.
    """
    import httpx

    lat: list[float] = []
    rest: list[float] = []
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}) as http:
        for i, cred in enumerate(creds):
            socks = [
                await _login(url, cred["token"], True, _addr(i * sockets_per + j))
                for j in range(sockets_per)
            ]
            t0 = time.perf_counter()
            closing = [asyncio.create_task(ws.wait_closed()) for ws in socks]
            await http.post(f"/telephony_credentials/{cred['id']}/actions/deactivate")
            rest.append((time.perf_counter() - t0) * 1000)
            await asyncio.wait_for(asyncio.gather(*closing), 10)
            lat.append((time.perf_counter() - t0) * 1000)
    return {**_percentiles(lat[1:]), "rest": _percentiles(rest[1:]), "first_ms": lat[0]}


async def _until(ws: RawClient, pred: Any) -> dict[str, Any]:
    """The next frame ``pred`` accepts, skipping the others (notices, acks)."""
    while True:
        frame = json.loads(await ws.recv())
        if pred(frame):
            return frame  # type: ignore[no-any-return]


def _frame(method: str, params: dict[str, Any], frame_id: str | None = None) -> str:
    body = {"jsonrpc": "2.0", "id": frame_id or str(uuid.uuid4()), "method": method}
    return json.dumps({**body, "params": params})


async def _logged_in(url: str, params: dict[str, Any]) -> tuple[RawClient, dict[str, Any]]:
    """connect + login; returns the socket and clientReady's params."""
    ws = await connect(url)
    ws.send(_frame("login", params, "L"))
    reply = await _until(ws, lambda f: f.get("id") == "L")
    if "result" not in reply:
        raise RuntimeError(f"login refused: {reply}")
    ready = await _until(ws, lambda f: f.get("method") == "telnyx_rtc.clientReady")
    return ws, {"sessid": reply["result"]["sessid"], **ready["params"]}


async def reattach(url: str, pairs: list[list[str]], rounds: int) -> dict[str, Any]:
    """Callers in a call each lose their socket (a reset, as a Wi-Fi drop) and log in again
    with their sessid: the time until clientReady lists the call. Interleaved with plain
    logins (connect + login + clientReady) on the same server, one of each per round."""
    plain: list[float] = []
    back: list[float] = []
    for i in range(rounds):
        caller_token, callee_token, callee = pairs[i % len(pairs)]
        t0 = time.perf_counter()
        callee_ws, _ = await _logged_in(url, {"login_token": callee_token})
        plain.append((time.perf_counter() - t0) * 1000)
        ws, ready = await _logged_in(url, {"login_token": caller_token})
        call_id = str(uuid.uuid4())
        invite = {"sdp": "v=0", "dialogParams": {"callID": call_id, "destination_number": callee}}
        ws.send(_frame("telnyx_rtc.invite", invite))
        offer = await _until(callee_ws, lambda f: f.get("method") == "telnyx_rtc.invite")
        answer = {"sdp": "v=0", "dialogParams": {"callID": offer["params"]["callID"]}}
        callee_ws.send(_frame("telnyx_rtc.answer", answer))
        await _until(ws, lambda f: f.get("method") == "telnyx_rtc.answer")
        t0 = time.perf_counter()
        ws.abort()
        resume = {"login_token": caller_token, "reconnection": True, "sessid": ready["sessid"]}
        ws, again = await _logged_in(url, resume)
        back.append((time.perf_counter() - t0) * 1000)
        if again["reattached_sessions"] != [call_id] or again["sessid"] != ready["sessid"]:
            raise RuntimeError(f"not reattached: {again}")
        ws.close()
        callee_ws.close()
    return {"reattach": _percentiles(back), "login": _percentiles(plain)}


async def uploads(url: str, tokens: list[str], seconds: float, size: int) -> dict[str, Any]:
    """What the SDK does during calls: sessions that each placed a call post call reports of
    ``size`` bytes to the signaling port, each every 2 s (the server's per-session rate), for
    ``seconds``. Counts the answers by status."""
    host, port = url.removeprefix("ws://").split(":")
    legs = []
    for token in tokens:
        ws, _ = await _logged_in(url, {"login_token": token})
        ws.send(_frame("telnyx_rtc.gatewayState", {}, "G"))
        reged = await _until(ws, lambda f: f.get("id") == "G")
        call_id = str(uuid.uuid4())
        invite = {"sdp": "v=0", "dialogParams": {"callID": call_id, "destination_number": "x"}}
        ws.send(_frame("telnyx_rtc.invite", invite))
        await _until(ws, lambda f: f.get("method") == "telnyx_rtc.bye")  # nobody: it ends
        legs.append((ws, reged["result"]["params"]["call_report_id"], call_id))
    filler = [
        {"intervalStartUtc": str(i), "audio": {"inbound": {"jitterAvg": 0.01}}}
        for i in range(size // 60)
    ]
    counts: collections.Counter[int] = collections.Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        for _, rid, call_id in legs:
            body = json.dumps({"summary": {"callId": call_id}, "stats": filler}).encode()
            counts[await _post_report(host, int(port), rid, call_id, body)] += 1
        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
    for ws, _, _ in legs:
        ws.close()
    return {"posted": sum(counts.values()), "by_status": {str(k): v for k, v in counts.items()}}


async def _post_report(host: str, port: int, rid: str, call_id: str, body: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /call_report HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"x-call-report-id: {rid}\r\nx-call-id: {call_id}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    status = int((await reader.readline()).split()[1])
    writer.close()
    return status


def _percentiles(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {"p50_ms": q[49], "p99_ms": q[98], "n": len(values)}


def main() -> None:
    from bench import soakload  # its steps are this module's: imported here, not in a cycle

    _raise_fd_limit()
    args = json.loads(sys.stdin.readline())
    mode = args.pop("mode")
    fn = {
        "logins": logins,
        "hold": hold,
        "storm": storm,
        "drop": drop,
        "refresh": refresh,
        "echo_latency": echo_latency,
        "http": http_rps,
        "revocation": revocation,
        "reattach": reattach,
        "uploads": uploads,
        "soak": soakload.churn,
        "soak_drain": soakload.drain,
    }[mode]
    result = uvloop.run(fn(**args))
    if mode != "hold":
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
