"""``make demo``: voxgate and the demo backend together, on loopback.

It checks its ports before starting anything, keeps voxgate's data in a temporary home of its
own (never your real one), and on Ctrl-C or SIGTERM alike stops voxgate and removes that home.
Its voxgate dies with it even if it is killed outright (Linux: the parent-death signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx
import uvicorn

from examples.backend.app import DemoConfig, create_demo

PORTS = {  # setting -> (default, what it is for)
    "VOXGATE_API_PORT": (8000, "voxgate's REST API"),
    "VOXGATE_RTC_PORT": (8001, "voxgate's signaling"),
    "DEMO_PORT": (3000, "the demo page"),
}


class _Server(uvicorn.Server):
    """uvicorn that leaves signals to us: its own handler re-raises SIGTERM after shutting
    down, which would kill this process before it stops its voxgate."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def main() -> int:
    ports = {name: int(os.environ.get(name, default)) for name, (default, _) in PORTS.items()}
    for name, port in ports.items():
        if not _free(port):
            what = PORTS[name][1]
            print(
                f"demo: port {port} ({what}) is in use. Is `make run` or another demo up? "
                f"Stop it, or choose another port: {name}=<port> make demo",
                file=sys.stderr,
            )
            return 1
    key = os.environ.get("VOXGATE_BOOTSTRAP_API_KEY") or "KEYdemo" + secrets.token_urlsafe(24)
    home = tempfile.mkdtemp(prefix="voxgate-demo-")
    env = {**os.environ, "VOXGATE_BOOTSTRAP_API_KEY": key, "VOXGATE_HOME": home}
    for setting in ("VOXGATE_DATABASE_URL", "VOXGATE_SECRET_FILE"):  # the demo's own data
        env.pop(setting, None)
    api, rtc, page = ports["VOXGATE_API_PORT"], ports["VOXGATE_RTC_PORT"], ports["DEMO_PORT"]
    command = [sys.executable, "-m", "voxgate", "serve", "--log-level", "WARNING"]
    voxgate = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [*command, "--api-port", str(api), "--rtc-port", str(rtc)],
        cwd=home,
        env=env,
        preexec_fn=_die_with_parent,  # only sets the parent-death signal
    )
    try:
        if not _ready(api, voxgate):
            print("demo: voxgate did not start (see its output above)", file=sys.stderr)
            return 1
        cfg = DemoConfig(f"http://127.0.0.1:{api}/v2", f"ws://127.0.0.1:{rtc}", key)
        server = _Server(
            uvicorn.Config(create_demo(cfg), host="127.0.0.1", port=page, log_level="warning")
        )
        print(
            f"demo: open http://127.0.0.1:{page}, log in as alice/alice-demo or bob/bob-demo "
            "(Ctrl-C stops it)",
            flush=True,
        )
        asyncio.run(_serve(server))
        return 0
    finally:
        voxgate.terminate()
        try:
            voxgate.wait(10)
        except subprocess.TimeoutExpired:
            voxgate.kill()
        shutil.rmtree(home, ignore_errors=True)


async def _serve(server: uvicorn.Server) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
    await server.serve()


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ready(port: int, voxgate: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and voxgate.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return True
        time.sleep(0.2)
    return False


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the demo process dies, however it dies."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


if __name__ == "__main__":
    sys.exit(main())
