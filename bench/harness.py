"""Processes for the bench: voxgate and bare baselines pinned to core 0, the load generator
pinned to core 1 (``taskset``, when present), all on loopback, every loop bounded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "PG_ADMIN",
    "REDIS_URL",
    "ROOT",
    "SCALE",
    "Holder",
    "Server",
    "free_port",
    "loadgen",
    "login_rate",
    "mint_tokens",
    "n",
    "pinned",
    "provision",
    "rss_kb",
    "start_voxgate",
]

ROOT = Path(__file__).resolve().parents[1]
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
TASKSET = shutil.which("taskset")


def n(value: int) -> int:
    return max(10, int(value * SCALE))


def pinned(core: int, cmd: list[str]) -> list[str]:
    return [TASKSET, "-c", str(core), *cmd] if TASKSET and (os.cpu_count() or 1) > 1 else cmd


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def loadgen(args: dict[str, Any], timeout: float = 300) -> dict[str, Any]:
    proc = subprocess.run(
        pinned(1, [sys.executable, "-m", "bench.loadgen"]),
        input=json.dumps(args) + "\n",
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen {args.get('mode')} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def login_rate(url: str, tokens: list[str], *, full: bool) -> dict[str, Any]:
    """32 parallel clients logging in and out; ``full`` adds clientReady + REGED."""
    return loadgen(
        {
            "mode": "logins",
            "url": url,
            "tokens": tokens,
            "full": full,
            "concurrency": 32,
            "total": n(6000),
        }
    )


class Holder:
    """A loadgen ``hold`` process: opens sessions and keeps them until told to stop."""

    def __init__(self, args: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            pinned(1, [sys.executable, "-m", "bench.loadgen"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"mode": "hold", **args}) + "\n")
        self.proc.stdin.flush()
        self.result = json.loads(self.proc.stdout.readline())

    def release(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        self.proc.wait(60)


class Server:
    def __init__(
        self,
        cmd: list[str],
        ready: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            pinned(0, cmd),
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
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
    work: Path, key: str, extra: list[str] | None = None, env: dict[str, str] | None = None
) -> tuple[Server, str, str]:
    api, rtc = free_port(), free_port()
    env = {
        "VOXGATE_BOOTSTRAP_API_KEY": key,
        "VOXGATE_LOG_LEVEL": "WARNING",
        "VOXGATE_HOME": str(work),  # each server its own database and secret
        **(env or {}),
    }
    srv = Server(
        [
            sys.executable,
            "-m",
            "voxgate",
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
    """One token per session, as real clients have (a shared token is flagged as reuse)."""
    with httpx.Client(
        base_url=api + "/v2", headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        return [
            http.post(f"/telephony_credentials/{creds[i % len(creds)]['id']}/token").text
            for i in range(count)
        ]


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"
