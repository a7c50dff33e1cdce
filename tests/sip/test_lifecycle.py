"""voxgate supervises its Kamailio: refuses to start without it (naming the packages), stops it
with itself (SIGTERM or kill -9: no orphan), restarts it when it dies, and keeps the
registrations that are still valid across a restart of either."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import SECRETS, Voxgate, free_port
from tests.rtc.conftest import api_for
from tests.sip.peers import (
    SipNode,
    Sipp,
    free_udp_port,
    register_scenario,
    registrations,
    sip_args,
    wait_for,
)


def _kamailios(sip_dir: Path) -> list[int]:
    """Every Kamailio process started with this node's configuration."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                cmd
                and cmd[0].endswith(b"kamailio")
                and str(sip_dir / "kamailio.cfg").encode() in cmd
            ):
                found.append(int(entry))
    return found


def _rtpengines(node: SipNode) -> list[int]:
    """Every rtpengine process listening on this node's ng address."""
    args = node.vg.extra_args
    ng = args[args.index("--rtpengine-ng") + 1].encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and cmd[0].endswith(b"rtpengine") and b"--listen-ng=" + ng in cmd:
                found.append(int(entry))
    return found


STARTED: list[SipNode] = []


@pytest.fixture(autouse=True)
def _stop_every_node() -> Iterator[None]:
    """However a test ends, nothing it started outlives it."""
    yield
    while STARTED:
        STARTED.pop().vg.stop(kill=True)


def _node(tmp_path: Path, name: str = "vg", **kw: object) -> SipNode:
    sip_port, ws_port, hook_port = free_udp_port(), free_port(), free_port()
    vg = Voxgate(tmp_path / name, **kw)  # type: ignore[arg-type]
    vg.extra_args = sip_args(sip_port, ws_port, hook_port, vg.workdir)
    node = SipNode(vg, sip_port, ws_port, hook_port)
    STARTED.append(node)
    return node


def test_without_kamailio_voxgate_refuses_to_start_and_names_the_packages(tmp_path: Path) -> None:
    node = _node(tmp_path)
    node.vg.workdir.mkdir(parents=True)
    env = {**node.vg.cli_env(), "VOXGATE_BOOTSTRAP_API_KEY": node.vg.api_key}
    cmd = [
        sys.executable,
        "-m",
        "voxgate",
        "serve",
        "--api-port",
        str(free_port()),
        "--rtc-port",
        str(free_port()),
        *node.vg.extra_args,
        "--sip-kamailio",
        "/nonexistent/kamailio",
    ]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "kamailio is not installed" in res.stderr
    assert "apt-get install kamailio kamailio-websocket-modules" in res.stderr
    cmd[-1] = "kamailio"  # Kamailio there, the media relay missing
    res = subprocess.run([*cmd, "--sip-rtpengine", "/nonexistent/rtpengine"], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 1
    assert "apt-get install rtpengine-daemon" in res.stderr


def test_kill_9_of_voxgate_leaves_no_kamailio_behind(tmp_path: Path) -> None:
    node = _node(tmp_path)
    node.start()
    assert wait_for(lambda: len(_kamailios(node.sip_dir)) > 2)  # the main process and workers
    assert _rtpengines(node)
    os.kill(node.vg.pid, signal.SIGKILL)
    node.vg.proc.wait(10)  # type: ignore[union-attr]
    assert wait_for(lambda: not _kamailios(node.sip_dir), timeout=10), _kamailios(node.sip_dir)
    assert wait_for(lambda: not _rtpengines(node), timeout=10), _rtpengines(node)


def test_sigterm_stops_kamailio_with_voxgate(tmp_path: Path) -> None:
    node = _node(tmp_path)
    node.start()
    assert _kamailios(node.sip_dir) and _rtpengines(node)
    node.vg.stop()
    assert node.vg.proc is not None and node.vg.proc.returncode == 0
    assert not _kamailios(node.sip_dir) and not _rtpengines(node)


def test_registrations_outlive_a_restart_of_voxgate_and_of_kamailio(tmp_path: Path) -> None:
    node = _node(tmp_path)
    node.start()
    try:
        api = api_for(node.vg)
        cred = api.credential()
        SECRETS.add(cred["sip_password"])
        user = cred["sip_username"]
        sipp = Sipp(tmp_path, node.sip_port)
        assert sipp.run(register_scenario(user, cred["sip_password"], expires=600)).returncode == 0
        before = registrations(node.vg, node.vg.api_key, credential_id=cred["id"])
        assert len(before) == 1
        # voxgate restarts (and its Kamailio with it): the contact is still valid, so it is
        # still registered, in Kamailio and in presence
        node.vg.stop()
        node.start()
        assert node.contacts(user) == [before[0]["contact"]]
        after = registrations(node.vg, node.vg.api_key, credential_id=cred["id"])
        assert [r["contact"] for r in after] == [before[0]["contact"]]
        assert "SIP contacts adopted from Kamailio" in node.vg.log_path.read_text()
        # Kamailio dies: voxgate logs it, restarts it, and the contact survives that too
        main = min(_kamailios(node.sip_dir))
        os.kill(main, signal.SIGKILL)
        assert wait_for(lambda: "engine restarted" in node.vg.log_path.read_text(), timeout=20)
        log = node.vg.log_path.read_text()
        assert '"event": "engine exited; restarting"' in log
        assert wait_for(lambda: node.contacts(user) == [before[0]["contact"]], timeout=10)
        again = registrations(node.vg, node.vg.api_key, credential_id=cred["id"])
        assert [r["contact"] for r in again] == [before[0]["contact"]]
        # and it takes new registrations
        other = api.credential()
        SECRETS.add(other["sip_password"])
        fresh = Sipp(tmp_path, node.sip_port)
        res = fresh.run(register_scenario(other["sip_username"], other["sip_password"]))
        assert res.returncode == 0, res.stdout
        api.http.close()
    finally:
        node.vg.stop()
    time.sleep(0.2)
    assert not _kamailios(node.sip_dir)


def test_an_external_kamailio_from_voxgate_sip_config(tmp_path: Path) -> None:
    """docs/deployment.md's commands, with this test's ports and directory: the configuration
    and units from `voxgate sip config`, Kamailio and rtpengine started as the units say, and
    voxgate with --sip-edge external; phones register, and a voxgate restart keeps them."""
    sip_dir = tmp_path / "etc-sip"
    sip_port, ws_port, hook_port = free_udp_port(), free_port(), free_port()
    vg = Voxgate(tmp_path / "vg")
    vg.workdir.mkdir(parents=True)
    ports = ["--sip-port", str(sip_port), "--sip-ws-port", str(ws_port),
             "--sip-hook-port", str(hook_port), "--sip-leg-port", str(free_udp_port())]  # fmt: skip
    ng = f"127.0.0.1:{free_udp_port()}"
    relay = ["--rtpengine-ng", ng, "--media-ports", "47000-47199"]
    made = vg.cli("sip", "config", str(sip_dir), "--sip-domain", "voxgate.test",
                  "--host", "127.0.0.1", *ports, *relay)  # fmt: skip
    units = [Path(line) for line in made.stdout.split()]
    assert units == [sip_dir / "voxgate-kamailio.service", sip_dir / "voxgate-rtpengine.service"]
    engines = []
    for unit in units:
        exec_start = next(x for x in unit.read_text().splitlines() if x.startswith("ExecStart="))
        engines.append(
            subprocess.Popen(
                exec_start.removeprefix("ExecStart=").split(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    try:
        secret = (sip_dir / "hook.secret").read_text()
        assert vg.cli("sip", "config", str(sip_dir), "--sip-domain", "voxgate.test", *ports)
        assert (sip_dir / "hook.secret").read_text() == secret  # kept: the pair still works
        SECRETS.add(secret.strip())
        vg.extra_args = ["--sip", "--sip-edge", "external", "--sip-dir", str(sip_dir),
                         "--sip-domain", "voxgate.test", *ports, *relay]  # fmt: skip
        node = SipNode(vg, sip_port, ws_port, hook_port)
        STARTED.append(node)
        node.start()
        assert "(external Kamailio)" in vg.log_path.read_text()
        assert "does not answer" not in vg.log_path.read_text()  # Kamailio's, rtpengine's
        api = api_for(vg)
        cred = api.credential()
        SECRETS.add(cred["sip_password"])
        sipp = Sipp(tmp_path, sip_port)
        assert (
            sipp.run(register_scenario(cred["sip_username"], cred["sip_password"])).returncode == 0
        )
        assert registrations(vg, vg.api_key, credential_id=cred["id"])
        vg.stop()
        assert all(e.poll() is None for e in engines)  # the system's, not voxgate's to stop
        node.start()
        assert registrations(vg, vg.api_key, credential_id=cred["id"])
        api.http.close()
    finally:
        for engine in engines:
            os.killpg(engine.pid, signal.SIGTERM)
            engine.wait(10)


def test_anchor_media_without_the_sip_edge_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    """--anchor-media relays through rtpengine, which only --sip starts."""
    cmd = [sys.executable, "-m", "voxgate", "serve", "--anchor-media",
           "--api-port", str(free_port()), "--rtc-port", str(free_port())]  # fmt: skip
    env = {**os.environ, "VOXGATE_HOME": str(tmp_path)}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert "--anchor-media relays through rtpengine: it needs --sip" in res.stderr
