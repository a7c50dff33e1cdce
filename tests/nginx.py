"""A private nginx for a test: the documented configuration (docs/nginx/voxgate.conf) with
this test's ports and a certificate from a test CA, on loopback; stopped afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.certs import make_ca_and_cert
from tests.harness import free_port

__all__ = ["DOCUMENTED", "Nginx", "run_nginx"]

DOCUMENTED = Path(__file__).resolve().parents[1] / "docs" / "nginx" / "voxgate.conf"


@dataclass
class Nginx:
    port: int
    ca: Path
    cert: Path

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def wss(self) -> str:
        return f"wss://127.0.0.1:{self.port}"


def site_config(api_port: int, rtc_port: int, port: int, cert: Path, key: Path) -> str:
    """The documented server block, with only its addresses and certificate replaced."""
    text = DOCUMENTED.read_text()
    for documented, ours in (
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{api_port};"),
        ("server 127.0.0.1:8001;", f"server 127.0.0.1:{rtc_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("/etc/ssl/certs/rtc.example.com.pem", str(cert)),
        ("/etc/ssl/private/rtc.example.com.key", str(key)),
    ):
        assert documented in text, f"docs/nginx/voxgate.conf no longer has {documented!r}"
        text = text.replace(documented, ours)
    return text


@contextmanager
def run_nginx(tmp: Path, api_port: int, rtc_port: int) -> Iterator[Nginx]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise AssertionError("nginx is missing: `make test` installs it (apt-get install nginx)")
    root = tmp / "nginx"
    (root / "logs").mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_ca_and_cert(root)
    port = free_port()
    (root / "voxgate.conf").write_text(site_config(api_port, rtc_port, port, cert, key))
    (root / "nginx.conf").write_text(
        f"""
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log {root}/logs/access.log;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    include {root}/voxgate.conf;
}}
"""
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode() if proc.stderr else "nginx died")
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield Nginx(port, ca, cert)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0
