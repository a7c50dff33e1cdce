"""``make demo`` as a process: a taken port fails fast and says which, and Ctrl-C or SIGTERM
stop its voxgate and remove its temporary data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.harness import free_port

REPO = Path(__file__).resolve().parents[2]


def _demo(tmp: Path, **ports: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXGATE_")}
    env.update({name: str(port) for name, port in ports.items()}, TMPDIR=str(tmp))
    return subprocess.Popen(
        [sys.executable, "-m", "examples.backend"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ports() -> dict[str, int]:
    return {
        "VOXGATE_API_PORT": free_port(),
        "VOXGATE_RTC_PORT": free_port(),
        "DEMO_PORT": free_port(),
    }


def test_a_taken_port_fails_fast_and_names_it(tmp_path: Path) -> None:
    ports = _ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["VOXGATE_API_PORT"]))
        taken.listen()
        started = time.monotonic()
        demo = _demo(tmp_path, **ports)
        _, err = demo.communicate(timeout=30)
    assert demo.returncode == 1
    assert f"port {ports['VOXGATE_API_PORT']} (voxgate's REST API) is in use" in err
    assert "VOXGATE_API_PORT=<port> make demo" in err
    print(f"refused in {time.monotonic() - started:.2f} s")
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing left


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_its_voxgate_and_cleans_up(tmp_path: Path, stop: signal.Signals) -> None:
    ports = _ports()
    demo = _demo(tmp_path, **ports)
    try:
        assert demo.stdout is not None
        banner = []  # voxgate's, then the demo's
        while not banner or "demo: open" not in banner[-1]:
            banner.append(demo.stdout.readline())
            assert banner[-1], f"the demo ended: {banner}"
        deadline = time.monotonic() + 15
        while _free(ports["DEMO_PORT"]):  # the line comes just before the page listens
            assert time.monotonic() < deadline, "the demo page never listened"
            time.sleep(0.1)
        page = httpx.get(f"http://127.0.0.1:{ports['DEMO_PORT']}/", timeout=5)
        assert page.status_code == 200
        homes = list(tmp_path.glob("voxgate-demo-*"))
        assert len(homes) == 1 and (homes[0] / "voxgate.db").exists()  # its own data, here
        children = _children(demo.pid)
        assert children
        demo.send_signal(stop)
        assert demo.wait(30) == 0
        for pid in children:
            assert not _alive(pid), f"voxgate {pid} outlived the demo"
        assert list(tmp_path.glob("voxgate-demo-*")) == []
        assert _free(ports["VOXGATE_API_PORT"]) and _free(ports["DEMO_PORT"])
    finally:
        if demo.poll() is None:
            demo.kill()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0
