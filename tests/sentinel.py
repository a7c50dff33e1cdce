"""A private Redis Sentinel deployment on loopback: a master, a replica and three Sentinels,
each a ``redis-server`` of the test's own on a free port, with passwords on all of them.

The timeouts are short so that a failover takes seconds: a master silent for 1 s is
subjectively down, two Sentinels agreeing make it objectively down, and they promote the
replica. Every process is ended by ``stop_all``, which the fixture runs however the test ends.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import SECRETS, free_port

__all__ = ["MASTER_NAME", "Sentinels"]

MASTER_NAME = "voxgate-test"
BINARY = shutil.which("redis-server") or "/usr/bin/redis-server"
CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


@dataclass
class Sentinels:
    workdir: Path
    password: str = field(default_factory=lambda: "redispw-" + uuid.uuid4().hex)
    sentinel_password: str = field(default_factory=lambda: "sentinelpw-" + uuid.uuid4().hex)
    master_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    sentinel_ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)  # by port

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def node_args(self) -> list[str]:
        """A voxgate's options for this deployment (the passwords go by environment)."""
        args = ["--redis-master-name", MASTER_NAME]
        for address in self.addresses:
            args += ["--redis-sentinel", address]
        return args

    def node_env(self) -> dict[str, str]:
        return {
            "VOXGATE_REDIS_PASSWORD": self.password,
            "VOXGATE_REDIS_SENTINEL_PASSWORD": self.sentinel_password,
        }

    def start(self) -> Sentinels:
        SECRETS.update((self.password, self.sentinel_password))
        self.workdir.mkdir(parents=True, exist_ok=True)
        auth = ["--requirepass", self.password, "--masterauth", self.password]
        self._server(self.master_port, *auth)
        self._server(self.replica_port, *auth, "--replicaof", "127.0.0.1", str(self.master_port))
        self.wait(lambda: "master_link_status:up" in self.ask(self.replica_port, "info"), "sync")
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"requirepass {self.sentinel_password}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} 2\n"
                f"sentinel auth-pass {MASTER_NAME} {self.password}\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 2000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self._spawn(port, [BINARY, str(conf), "--sentinel"])
        self.wait(self._all_see_each_other, "sentinels to find each other and the replica")
        return self

    def _server(self, port: int, *options: str) -> None:
        base = [BINARY, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        self._spawn(port, [*base, "--appendonly", "no", "--dir", str(self.workdir), *options])

    def _spawn(self, port: int, cmd: list[str]) -> None:
        log = (self.workdir / f"redis-{port}.log").open("ab")
        self.procs[port] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        self.wait(lambda: self.ask(port, "ping") == "PONG", f"redis on {port}")

    def ask(self, port: int, *command: str) -> str:
        """``redis-cli`` against one of ours; the password through the environment, not argv."""
        is_sentinel = port in self.sentinel_ports
        env = {"REDISCLI_AUTH": self.sentinel_password if is_sentinel else self.password}
        done = subprocess.run(
            [CLI, "-p", str(port), *command], capture_output=True, text=True, env=env, timeout=10
        )
        return done.stdout.strip()

    def master(self) -> str:
        """The master's address as the first Sentinel names it ('' while it names none)."""
        reply = self.ask(self.sentinel_ports[0], "sentinel", "get-master-addr-by-name", MASTER_NAME)
        return ":".join(reply.split())

    def _all_see_each_other(self) -> bool:
        for port in self.sentinel_ports:
            fields = self.ask(port, "sentinel", "master", MASTER_NAME).split()
            info = dict(zip(fields[::2], fields[1::2], strict=False))
            if info.get("num-other-sentinels") != "2" or info.get("num-slaves") != "1":
                return False
        return True

    def wait(self, ready: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def kill(self, port: int) -> None:
        self.procs[port].kill()
        self.procs[port].wait(5)

    def freeze(self, port: int, frozen: bool) -> None:
        self.procs[port].send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait(5)
