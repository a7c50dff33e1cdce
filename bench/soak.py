"""The soak: one node under paced churn for ``BENCH_SOAK_MINUTES`` (30 at full scale, scaled
by ``BENCH_SCALE``), then what it kept and how it stops.

Long-running health is not a rate: a node that serves 2,000 logins/s for ten seconds may still
grow without end over a day. So the soak reads, every few seconds from outside, the node's RSS
(``/proc/<pid>/status``), its open descriptors (``/proc/<pid>/fd``) and its own count of logins
(``voxgate_logins_total``); after a warm-up (the first third: the reattach window fills, caches
and the allocator's pools settle) it fits RSS and descriptors against logins in three equal
segments. A leak grows in every segment alike (a stable slope: "missed"); noise scatters them
(a spread past the bench's 20 %: "unstable", i.e. nothing to tell from noise). After the
churn, once every session has ended, the node's asyncio tasks and heap deadlines
(``voxgate_asyncio_tasks``, ``voxgate_deadlines``) must be back where they were before it.
Last, with sessions and a call still up, SIGTERM: the node must close every socket with 1001
and exit within 5 s.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.figures import Row
from bench.harness import (
    SCALE,
    Server,
    load_process,
    mint_tokens,
    n,
    provision,
    rss_kb,
    settle,
    start_voxgate,
)
from bench.stats import Measured

__all__ = ["MINUTES", "RATE", "Checkpoint", "segment_slopes", "soak"]

MINUTES = float(os.environ.get("BENCH_SOAK_MINUTES", "30")) * SCALE
RATE = float(os.environ.get("BENCH_SOAK_RATE", "100"))  # paced steps per second
WORKERS = 16  # concurrent clients; each holds its own pair of credentials for calls
EVERY = 5.0  # seconds between checkpoints
DRAIN_GOAL = 5.0  # seconds from SIGTERM to exit
FLAT_KB, FLAT_FDS = 64.0, 1.0  # per 10k logins: below these a slope is flat whatever the noise


@dataclass(frozen=True, slots=True)
class Checkpoint:
    at: float
    logins: float
    rss_kb: int
    fds: int


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def gauges(api: str) -> dict[str, float]:
    """Unlabelled gauges by name; ``logins`` and ``sessions`` summed over their labels."""
    text = httpx.get(api + "/metrics", timeout=30).text
    found = {"logins": 0.0, "sessions": 0.0}
    for name, labels, value in re.findall(r"^(voxgate_\w+?)(\{[^}]*\})? (\S+)$", text, re.M):
        if name == "voxgate_logins_total":
            found["logins"] += float(value)
        elif name == "voxgate_sessions":
            found["sessions"] += float(value)
        elif not labels:
            found[name] = float(value)
    return found


def _slope(points: list[Checkpoint], field: str) -> float:
    """Least squares: ``field`` per 10,000 logins."""
    xs = [p.logins for p in points]
    ys = [float(getattr(p, field)) for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return (
        0.0
        if not var
        else 10_000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    )


def segment_slopes(points: list[Checkpoint], field: str, parts: int = 3) -> tuple[float, ...]:
    """The slope in each of ``parts`` equal runs of checkpoints (each at least two)."""
    size = max(2, len(points) // parts)
    runs = [points[i * size : (i + 1) * size] for i in range(parts)]
    return tuple(_slope(run, field) for run in runs if len(run) >= 2)


def _flat(slopes: tuple[float, ...], floor: float) -> bool:
    """Flat within noise: the median slope no larger than the slopes' own spread (or a floor)."""
    return abs(statistics.median(slopes)) <= max(max(slopes) - min(slopes), floor)


def _churn(pid: int, api: str, job: dict[str, Any]) -> tuple[list[Checkpoint], dict[str, Any]]:
    proc = load_process(job)
    points: list[Checkpoint] = []
    give_up = time.monotonic() + job["seconds"] + 120
    while proc.poll() is None and time.monotonic() < give_up:
        time.sleep(EVERY)
        points.append(Checkpoint(time.monotonic(), gauges(api)["logins"], rss_kb(pid), fds(pid)))
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"soak load failed: {err[-2000:]}")
    return points, json.loads(out.strip().splitlines()[-1])


def _ended(api: str, limit: float) -> dict[str, float]:
    """The gauges once no session is left (detached ones end with the reattach window)."""
    give_up = time.monotonic() + limit
    while (now := gauges(api))["sessions"] > 0 and time.monotonic() < give_up:
        time.sleep(1.0)
    return now


def _drain(
    server: Server, rtc: str, tokens: list[str], pair: list[dict[str, Any]]
) -> tuple[float, int, dict[str, int]]:
    """SIGTERM with sessions and a call up: seconds until the node exited, sockets held, and
    the close codes they got."""
    job = {"mode": "soak_drain", "url": rtc, "tokens": tokens, "caller": pair[0]}
    holder = load_process({**job, "callee": pair[1]})
    assert holder.stdout and holder.stdin
    held = json.loads(holder.stdout.readline())["held"]
    t0 = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(60)
    took = time.monotonic() - t0
    holder.stdin.write("\n")
    holder.stdin.flush()
    out, err = holder.communicate(timeout=60)
    if holder.returncode != 0:
        raise RuntimeError(f"soak drain failed: {err[-2000:]}")
    return took, held, json.loads(out.strip().splitlines()[-1])["codes"]


def soak(work: Path, key: str) -> list[Row]:
    home = work / "soak"
    home.mkdir(exist_ok=True)
    server, api, rtc = start_voxgate(home, key)
    pid = server.proc.pid
    try:
        creds = provision(api, key, 100)  # as the measurement from outside: 100 credentials
        drainers = mint_tokens(api, key, creds[2 * WORKERS :], n(1000))
        settle(pid)
        before = gauges(api)
        seconds = MINUTES * 60
        job = {"url": rtc, "creds": creds, "seconds": seconds, "rate": RATE}
        points, load = _churn(pid, api, {"mode": "soak", **job, "concurrency": WORKERS})
        _ended(api, 60 + 60)  # the reattach window (60 s), then a minute more
        settle(pid)
        after = gauges(api)
        took, held, codes = _drain(server, rtc, drainers, creds[:2])
    finally:
        server.stop()
    warm = [p for p in points if p.at - points[0].at >= seconds / 3] if points else []
    rss = segment_slopes(warm, "rss_kb")
    fd = segment_slopes(warm, "fds")
    logins = points[-1].logins - before["logins"] if points else 0.0
    churned = (
        f"{logins:,.0f} logins in {load['seconds'] / 60:.1f} min"
        f" ({logins / max(load['seconds'], 1):.0f}/s; steps {load['steps']}), errors:"
        f" {load['errors'] or 'none'}"
    )
    grown = (warm[0].rss_kb - points[0].rss_kb) / 1024 if warm else 0.0
    left = {
        k: (before.get(k, 0.0), after.get(k, 0.0))
        for k in ("voxgate_asyncio_tasks", "voxgate_deadlines", "sessions")
    }
    leftover = sum(max(0.0, b - a) for a, b in left.values())
    flat = "flat: |median| <= spread of the 3 segments' slopes (the noise)"
    return [
        Row(
            "soak: RSS per 10k logins after warm-up",
            Measured(rss or (0.0,)),
            "KB",
            None,
            "",
            f"{flat}, or {FLAT_KB:.0f} KB",
            _flat(rss, FLAT_KB) if rss else False,
            f"{churned}; RSS {points[0].rss_kb / 1024 if points else 0:.0f} MB at the first"
            f" checkpoint, +{grown:.1f} MB in the warm-up (first third), then"
            f" {warm[-1].rss_kb / 1024 if warm else 0:.0f} MB at the end"
            f"; {len(warm)} checkpoints after it, 3 segments",
        ),
        Row(
            "soak: open FDs per 10k logins after warm-up",
            Measured(fd or (0.0,)),
            "FDs",
            None,
            "",
            f"{flat}, or {FLAT_FDS:.0f}",
            _flat(fd, FLAT_FDS) if fd else False,
            f"{points[0].fds if points else 0} FDs at the first checkpoint,"
            f" {warm[-1].fds if warm else 0} at the end (live sockets included)",
        ),
        Row(
            "soak: tasks + deadlines left after the churn",
            Measured.once(leftover),
            "left",
            None,
            "",
            "0: counts back to where they were",
            leftover == 0,
            "before -> after, sessions all ended: "
            + ", ".join(
                f"{k.removeprefix('voxgate_')} {a:.0f} -> {b:.0f}" for k, (a, b) in left.items()
            ),
        ),
        Row(
            f"soak: SIGTERM drain, {held} sessions and a call",
            Measured.once(took),
            "s",
            None,
            "",
            f"< {DRAIN_GOAL:.0f} s, every socket closed 1001",
            took < DRAIN_GOAL and codes == {"1001": held},
            f"close codes {codes}",
        ),
    ]
