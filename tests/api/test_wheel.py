"""voxgate installed as a wheel, outside the repository: it serves from an empty directory,
keeps its data in the per-user data directory, and its CLI (run from anywhere else) opens that
same database and never quietly starts a new one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.harness import free_port

REPO = Path(__file__).resolve().parents[2]


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).exists(), "uv is missing: `make test` installs it"
    return found


def test_the_wheel_installs_and_serves_from_anywhere(tmp_path: Path) -> None:
    uv = _uv()
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("voxgate-*.whl"))
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        timeout=120,
    )
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
        timeout=600,
    )
    voxgate = venv / "bin" / "voxgate"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXGATE_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # the per-user data directory, here
    version = subprocess.run([voxgate, "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.startswith("voxgate ")
    empty, elsewhere = tmp_path / "empty", tmp_path / "elsewhere"
    empty.mkdir()
    elsewhere.mkdir()
    api, rtc = free_port(), free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [voxgate, "serve", "--api-port", str(api), "--rtc-port", str(rtc)],
        cwd=empty,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        banner = _wait_for_banner(tmp_path / "serve.log", server)
        home = tmp_path / "xdg" / "voxgate"
        assert str(home / "voxgate.db") in banner and str(home / "voxgate.secret") in banner
        assert list(empty.iterdir()) == []  # nothing written where it was started
        # the banner's command, verbatim, from another directory
        line = next(ln for ln in banner.splitlines() if "keys create --label me" in ln)
        command = line.split("API key:", 1)[1].strip().split()
        assert command[0] == str(voxgate)
        made = subprocess.run(command, cwd=elsewhere, capture_output=True, text=True, env=env)
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()
        r = httpx.post(
            f"http://127.0.0.1:{api}/v2/credential_connections",
            headers={"Authorization": f"Bearer {key}"},
            json={"connection_name": "from-the-wheel"},
        )
        assert r.status_code == 201
        assert list(elsewhere.iterdir()) == []
        stray = subprocess.run(
            [voxgate, "--database-url", "sqlite+aiosqlite:///./other.db", "keys", "list"],
            cwd=elsewhere,
            capture_output=True,
            text=True,
            env=env,
        )
        assert stray.returncode == 1 and "no voxgate database at" in stray.stderr
        assert not (elsewhere / "other.db").exists()
    finally:
        server.terminate()
        server.wait(20)


def _wait_for_banner(log: Path, server: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if "API key:" in text:
            time.sleep(0.2)
            return log.read_text(errors="replace")
        assert server.poll() is None, text
        time.sleep(0.2)
    raise AssertionError(log.read_text(errors="replace"))
