"""What the parent hands its workers: every setting through JSON, and what ``--workers`` means."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voxgate.config import MAX_WORKERS, Settings
from voxgate.domain.errors import ConfigurationError


def test_every_setting_survives_the_trip_to_a_worker() -> None:
    given = Settings(
        turn_url=("turn:a:3478", "turns:b:5349"),
        tls_cert=Path("/etc/cert.pem"),
        tls_key=Path("/etc/key.pem"),
        turn_ttl=5.0,
        redis_url="redis://127.0.0.1:6379/0",
        trusted_proxies=("10.0.0.0/8",),
        workers="4",
        worker=2,
    )
    assert Settings.from_json(given.to_json()) == given
    assert Settings.from_json(Settings().to_json()) == Settings()
    sentinel = Settings(
        redis_sentinel=("10.0.0.1:26379", "[::1]:26380"),
        redis_master_name="vx",
        redis_password="pw",
        redis_sentinel_password="spw",
        workers="2",
    )
    assert Settings.from_json(sentinel.to_json()) == sentinel


def test_workers_is_a_count_or_auto() -> None:
    assert Settings(workers="3").worker_count() == 3
    assert Settings(workers="auto").worker_count() == min(len(os.sched_getaffinity(0)), MAX_WORKERS)
    for bad in ("0", "-1", "two", "", str(MAX_WORKERS + 1), "1.5"):
        with pytest.raises(ConfigurationError, match="auto or a number"):
            Settings(workers=bad).worker_count()


def test_a_worker_started_by_hand_says_who_starts_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "VOXGATE_WORKER_SETTINGS"}
    done = subprocess.run(
        [sys.executable, "-m", "voxgate.worker", "/tmp/ready.json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "voxgate serve --workers N" in done.stderr


@pytest.mark.parametrize("options", [["--grace"], ["--grace", "0"], ["--grace", "x"], ["-g", "1"]])
def test_the_warden_refuses_a_grace_it_cannot_read(options: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "voxgate.sip.warden", *options, "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "usage:" in done.stderr


def test_the_warden_runs_its_engine_with_a_grace_given() -> None:
    warden = subprocess.Popen(  # its stdin held open, as voxgate holds it
        [sys.executable, "-m", "voxgate.sip.warden", "--grace", "1", "--", "sh", "-c", "exit 3"],
        stdin=subprocess.PIPE,
    )
    try:
        assert warden.wait(60) == 3  # the engine's status, for voxgate to log and restart
    finally:
        assert warden.stdin is not None
        warden.stdin.close()
