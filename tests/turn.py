"""A private coturn for a test: loopback ports, a generated secret, its log kept; and a
voxgate started to hand out its credentials."""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness import Voxgate, free_port
from voxgate.auth.turn import turn_credential

__all__ = ["Coturn", "run_coturn", "turn_entry", "with_turn"]


@dataclass
class Coturn:
    port: int
    secret: str
    log: Path

    def allocates(self, username: str, password: str) -> bool:
        """A real TURN allocation (and a few relayed packets) with these credentials."""
        run = subprocess.run(
            [
                "turnutils_uclient",
                "-u",
                username,
                "-w",
                password,
                "-p",
                str(self.port),
                "-y",
                "-n",
                "2",
                "-m",
                "1",
                "-l",
                "100",
                "127.0.0.1",
            ],
            capture_output=True,
            timeout=20,
        )
        return run.returncode == 0


def run_coturn(tmp_path: Path) -> Iterator[Coturn]:
    port, secret = free_port(), secrets.token_hex(16)
    low = 40000 + (port % 200) * 100
    log = tmp_path / "turn.log"
    out = log.open("wb")  # coturn's own --log-file stays empty here: its stdout is the log
    proc = subprocess.Popen(
        [
            "stdbuf",  # coturn writes its log through stdio: line-buffer it, to read it live
            "-oL",
            "turnserver",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=voxgate.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            f"--min-port={low}",
            f"--max-port={low + 99}",
            "--log-file=stdout",
            "--simple-log",
            "--verbose",
            f"--pidfile={tmp_path}/turn.pid",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    turn = Coturn(port, secret, log)
    deadline = time.monotonic() + 10
    while not turn.allocates(*turn_credential(secret.encode(), "probe", time.time() + 60)):
        assert time.monotonic() < deadline, "coturn did not start"
        time.sleep(0.2)
    yield turn
    proc.terminate()
    proc.wait(10)
    out.close()


def with_turn(make_server: type[Voxgate], turn: Coturn, tmp: Path, *extra: str) -> Voxgate:
    secret_file = tmp / "turn.secret"
    secret_file.write_text(turn.secret + "\n")
    return make_server(
        extra_args=[
            "--turn-secret-file",
            str(secret_file),
            "--turn-url",
            f"turn:127.0.0.1:{turn.port}?transport=udp",
            "--turn-url",
            f"turn:127.0.0.1:{turn.port}?transport=tcp",
            "--stun-url",
            f"stun:127.0.0.1:{turn.port}",
            *extra,
        ]
    ).start()


def turn_entry(servers: list[dict[str, Any]]) -> dict[str, Any]:
    return next(s for s in servers if "username" in s)
