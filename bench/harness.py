"""Processes for the bench: voxgate and bare baselines pinned to core 0, the load generator
pinned to core 1 (set before exec, so no instant runs elsewhere), all on loopback, every loop
bounded. Every process is tracked by ``machine.WATCH``: the report shows where it really ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.machine import WATCH, cpu_seconds

__all__ = [
    "PG_ADMIN",
    "REDIS_URL",
    "ROOT",
    "SCALE",
    "Holder",
    "Server",
    "free_port",
    "free_udp_port",
    "loadgen",
    "login_rate",
    "mint_tokens",
    "n",
    "pin",
    "provision",
    "rss_kb",
    "settle",
    "start_voxgate",
]

ROOT = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
SERVER_CORE, LOAD_CORE = 0, 1


def n(value: int) -> int:
    return max(10, int(value * SCALE))


def pin(core: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` pinning the child to ``core`` (nothing on a one-core machine)."""
    if (os.cpu_count() or 1) < 2:
        return None
    return lambda: os.sched_setaffinity(0, {core})


def load_process(args: dict[str, Any]) -> subprocess.Popen[str]:
    """A load generator on its own core, given its job on stdin."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=pin(LOAD_CORE),
    )
    WATCH.track("load generator", proc.pid)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(args) + "\n")
    proc.stdin.flush()
    return proc


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (Kamailio and sipp take both)."""
    import socket

    for _ in range(100):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both TCP and UDP in 100 tries")


def settle(pid: int, limit: float = 120.0) -> float:
    """Wait (at most ``limit`` s) until ``pid`` uses under 5 % of a core: a figure starts on a
    quiet server, not on one still closing 19,500 sockets the figure before dropped (which
    once made a login-rate sample read 169/s instead of 540/s). Returns the seconds waited."""
    import time

    start = time.monotonic()
    while time.monotonic() - start < limit:
        before = cpu_seconds(pid)
        time.sleep(0.5)
        if cpu_seconds(pid) - before < 0.025:
            break
    return time.monotonic() - start


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def loadgen(args: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    proc = load_process(args)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen {args.get('mode')} failed: {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


MEASURE_SECONDS = max(0.5, 3.0 * SCALE)  # each rate sample: this long, after a warm-up


def login_rate(url: str, tokens: list[str], *, full: bool) -> dict[str, Any]:
    """32 parallel clients logging in and out; ``full`` adds clientReady + REGED."""
    return loadgen(
        {
            "mode": "logins",
            "url": url,
            "tokens": tokens,
            "full": full,
            "concurrency": 32,
            "seconds": MEASURE_SECONDS,
        }
    )


class Holder:
    """A loadgen ``hold`` process: opens sessions and keeps them until told to stop."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.proc = load_process({"mode": "hold", **args})
        assert self.proc.stdout
        self.result = json.loads(self.proc.stdout.readline())

    def release(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.wait(60)


class Server:
    def __init__(
        self,
        role: str,
        cmd: list[str],
        ready: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        pinned: bool = True,
    ) -> None:
        """``pinned``: on the servers' core (False: wherever the kernel puts it, for the
        figures of several worker processes)."""
        self.proc = subprocess.Popen(
            cmd,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            preexec_fn=pin(SERVER_CORE) if pinned else None,
        )
        WATCH.track(role, self.proc.pid)
        if ready:
            assert self.proc.stdout
            while ready not in (line := self.proc.stdout.readline()):
                if not line and self.proc.poll() is not None:
                    raise RuntimeError(f"{cmd} exited")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_voxgate(
    work: Path,
    key: str,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
    profile: Path | None = None,
    pinned: bool = True,
) -> tuple[Server, str, str]:
    """A voxgate node; with ``profile``, one ``bench.profiled`` (SIGUSR1 starts, SIGUSR2 writes)."""
    api, rtc = free_port(), free_port()
    env = {
        "VOXGATE_BOOTSTRAP_API_KEY": key,
        "VOXGATE_LOG_LEVEL": "WARNING",
        "VOXGATE_HOME": str(work),  # each server its own database and secret
        **({"PYTHONPATH": str(ROOT)} if profile else {}),  # bench.profiled, run from ``work``
        **(env or {}),
    }
    srv = Server(
        "voxgate",
        [
            sys.executable,
            *(["-m", "bench.profiled", str(profile)] if profile else ["-m", "voxgate"]),
            "serve",
            "--api-port",
            str(api),
            "--rtc-port",
            str(rtc),
            "--log-level",
            "WARNING",
            *(extra or []),
        ],
        "voxgate is running",
        env,
        work,
        pinned,
    )
    return srv, f"http://127.0.0.1:{api}", f"ws://127.0.0.1:{rtc}"


def provision(api: str, key: str, count: int) -> list[dict[str, Any]]:
    with httpx.Client(
        base_url=api + "/v2", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        conn = http.post("/credential_connections", json={"connection_name": "bench"}).json()[
            "data"
        ]
        creds = []
        for _ in range(count):
            cred = http.post("/telephony_credentials", json={"connection_id": conn["id"]}).json()[
                "data"
            ]
            cred["token"] = http.post(f"/telephony_credentials/{cred['id']}/token").text
            cred["token2"] = http.post(f"/telephony_credentials/{cred['id']}/token").text
            creds.append(cred)
        return creds


def mint_tokens(api: str, key: str, creds: list[dict[str, Any]], count: int) -> list[str]:
    """One token per session, as real clients have: a token shared by sessions from several
    addresses is token reuse (audited, logged: work no real client causes). Token ``i`` is of
    ``creds[i % len(creds)]``; minted over 16 connections."""
    import asyncio

    tokens = [""] * count

    async def mint_all() -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=api + "/v2", headers=headers, timeout=30) as http:

            async def worker(first: int) -> None:
                for i in range(first, count, 16):
                    cred = creds[i % len(creds)]["id"]
                    for attempt in range(3):  # a keep-alive the server just closed: again
                        try:
                            reply = await http.post(f"/telephony_credentials/{cred}/token")
                            break
                        except httpx.TransportError:
                            if attempt == 2:
                                raise
                    reply.raise_for_status()
                    tokens[i] = reply.text

            await asyncio.gather(*(worker(i) for i in range(16)))

    asyncio.run(mint_all())
    return tokens


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
