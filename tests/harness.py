"""Live ``voxgate serve`` processes on ephemeral loopback ports, and throw-away Postgres DBs."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PG_ADMIN_DSN = os.environ.get("VOXGATE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


# Every secret the suite creates, every server log and every error body it sees: the last test
# (tests/security/test_secrets_scan.py) checks that no secret ever reached a log or a body.
SECRETS: set[str] = set()
LOGS: list[Path] = []
ERROR_BODIES: list[str] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Voxgate:
    workdir: Path
    api_key: str = field(default_factory=lambda: "KEYtest" + uuid.uuid4().hex)
    database_url: str | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    rtc_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ca: Path | None = None  # with --tls-cert: the CA that readiness checks trust
    wrapper: list[str] = field(default_factory=list)  # runs the server: unshare ..., say

    @property
    def tls(self) -> bool:
        return "--tls-cert" in self.extra_args

    @property
    def api_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.api_port}"

    @property
    def base_url(self) -> str:
        return self.api_url + "/v2"

    @property
    def rtc_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.rtc_port}"

    @property
    def role(self) -> str:
        args = self.extra_args
        return args[args.index("--role") + 1] if "--role" in args else "all"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _ready(self) -> bool:
        trust = ssl.create_default_context(cafile=str(self.ca)) if self.ca else True
        readyz = self.api_url + "/readyz"
        if self.role != "rtc" and httpx.get(readyz, timeout=1, verify=trust).status_code != 200:
            return False
        return self.role == "api" or _port_open(self.rtc_port)

    @property
    def log_path(self) -> Path:
        return self.workdir / "voxgate.log"

    def cli_env(self) -> dict[str, str]:
        env = {**os.environ, **self.env}
        env["VOXGATE_DATABASE_URL"] = (
            self.database_url or f"sqlite+aiosqlite:///{self.workdir}/voxgate.db"
        )
        env.setdefault("VOXGATE_SECRET_FILE", str(self.workdir / "voxgate.secret"))
        return env

    def start(self, timeout: float = 30.0) -> Voxgate:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = self.cli_env()
        env["VOXGATE_BOOTSTRAP_API_KEY"] = self.api_key
        cmd = [
            *self.wrapper,
            sys.executable,
            "-m",
            "voxgate",
            "serve",
            "--api-port",
            str(self.api_port),
            "--rtc-port",
            str(self.rtc_port),
            *self.extra_args,
        ]
        SECRETS.add(self.api_key)
        LOGS.append(self.log_path)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            cmd, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voxgate exited early:\n{self.log_path.read_text()}")
            try:
                if self._ready():
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"voxgate did not start:\n{self.log_path.read_text()}")

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(
            [sys.executable, "-m", "voxgate", *args],
            cwd=self.workdir,
            env=self.cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and res.returncode != 0:
            raise AssertionError(f"voxgate {' '.join(args)} failed: {res.stderr}")
        return res


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def create_pg_database() -> str:
    """A fresh database per run; returns its asyncpg URL."""
    name = "voxgate_test_" + uuid.uuid4().hex[:12]
    subprocess.run(
        ["psql", PG_ADMIN_DSN, "-qc", f'CREATE DATABASE "{name}"'], check=True, capture_output=True
    )
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", PG_ADMIN_DSN, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
        capture_output=True,
    )


def serve_refused(home: Path, args: list[str], said: str) -> None:
    """``voxgate serve ARGS`` stops before it starts: exit 2, ``said`` in one clear line."""
    env = {**os.environ, "VOXGATE_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "voxgate", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
