"""What a login costs, counted where it does not drift, and what workers add.

- **CPU per login**: the CPU time of the node's processes (all of them: parent, wardens,
  workers) over a login-rate sample, divided by the logins it served, against the bare
  websockets + HMAC server's CPU per login in the same run. CPU time, not logins/s: the load
  generator's share and the machine's drift drop out.
- **Redis per login, per refresh, per idle session-hour**: Redis's own counters
  (``INFO stats``: commands processed, bytes in and out) around the same work. These are
  counts: a change in them is a change in the code, not in the machine.
- **Workers**: logins/s of one node with 2 workers against the same node with 1, neither
  pinned (the load generator keeps its core: on a 2-core machine the workers share theirs
  with it, and the row says so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from bench.figures import Row, Target, _bare_tokens, bare
from bench.harness import (
    REDIS_URL,
    Holder,
    loadgen,
    login_rate,
    mint_tokens,
    n,
    provision,
    settle,
    start_voxgate,
)
from bench.machine import tree_cpu_seconds
from bench.stats import Measured, interleave, rounds

__all__ = ["login_costs", "workers_rate"]

PER_LOGIN_FLOOR = {"embedded": 1 / 0.8, "redis": 1 / 0.6}  # issue 29: x the bare server's CPU


def _login_sample(pid: int, url: str, tokens: list[str], full: bool) -> tuple[float, int]:
    """A login-rate sample on a settled node: the CPU seconds of ``pid``'s process tree it took
    (the closes it still had to handle after it included) and the logins it served."""
    before = tree_cpu_seconds(pid)
    result = login_rate(url, tokens, full=full)
    settle(pid)
    return tree_cpu_seconds(pid) - before, int(result["total"])


def _cpu_per_login(pid: int, url: str, tokens: list[str], full: bool) -> float:
    """Microseconds of CPU of ``pid``'s process tree per login served."""
    settle(pid)
    used, logins = _login_sample(pid, url, tokens, full)
    return used / max(1, logins) * 1e6


class RedisCounter:
    """Redis's own totals: commands processed, bytes received and sent (the INFO calls
    themselves are subtracted)."""

    def __init__(self) -> None:
        self.client = redis.Redis.from_url(REDIS_URL)

    def read(self) -> tuple[int, int, int]:
        stats: dict[str, Any] = self.client.info("stats")
        return (
            int(stats["total_commands_processed"]),
            int(stats["total_net_input_bytes"]),
            int(stats["total_net_output_bytes"]),
        )

    @contextmanager
    def counting(self) -> Iterator[list[int]]:
        """Yields a list that holds (commands, bytes in, bytes out) once the block is done."""
        before = self.read()
        spent: list[int] = []
        yield spent
        after = self.read()
        spent.extend(b - a for a, b in zip(before, after, strict=True))
        spent[0] -= 1  # the INFO that read ``before``


def _node(work: Path, key: str, name: str, extra: list[str], pinned: bool = True) -> Target:
    home = work / name
    home.mkdir(exist_ok=True)
    server, api, rtc = start_voxgate(home, key, extra, pinned=pinned)
    creds = provision(api, key, n(200))
    sessions = mint_tokens(api, key, creds, n(1000))
    refreshes = mint_tokens(api, key, creds, n(1000))
    return Target(home, key, server, api, rtc, creds, sessions, refreshes)


def _redis_args(name: str) -> list[str]:
    return ["--redis-url", REDIS_URL, "--redis-prefix", f"vxbench:{name}:{os.urandom(4).hex()}:"]


def login_costs(work: Path, key: str) -> list[Row]:
    """CPU per login, embedded and with Redis, each against the bare server; then Redis's
    counts per login, per refresh and per idle session-hour on the Redis node."""
    ws, ws_port = bare("ws")
    # no reattach window: a session the load generator drops (the refresh samples abort their
    # sockets) is let go at once, not swept a minute later into another sample's count
    quick = ["--reattach-window", "0"]
    embedded = _node(work, key, "embedded", quick)
    with_redis = _node(work, key, "redis", [*_redis_args("logins"), *quick])
    counter = RedisCounter()
    counts: list[list[int]] = []
    try:
        bare_url = f"ws://127.0.0.1:{ws_port}"

        def bare_cpu() -> float:
            return _cpu_per_login(ws.proc.pid, bare_url, _bare_tokens(), False)

        def cpu(t: Target) -> Callable[[], float]:
            return lambda: _cpu_per_login(t.server.proc.pid, t.rtc, t.tokens, True)

        def redis_cpu() -> float:
            pid = with_redis.server.proc.pid
            settle(pid)
            with counter.counting() as spent:
                used, logins = _login_sample(pid, with_redis.rtc, with_redis.tokens, True)
            counts.append([*spent, logins])
            return used / max(1, logins) * 1e6

        base, ours_embedded, ours_redis = rounds(
            "cpu per login", bare_cpu, cpu(embedded), redis_cpu
        )
        per_refresh = _redis_per_refresh(with_redis, counter, counts)
        per_hour = _redis_per_idle_hour(with_redis, counter)
    finally:
        for server in (ws, embedded.server, with_redis.server):
            server.stop()
    rows = [
        _cpu_row("CPU per login, embedded", ours_embedded, base, "embedded"),
        _cpu_row("CPU per login, --redis-url", ours_redis, base, "redis"),
    ]
    per_login = [[c / max(1, s[3]) for c in s[:3]] for s in counts]
    rows += [
        _count_row("Redis commands per login", [p[0] for p in per_login], "commands"),
        _count_row("Redis bytes per login (in+out)", [p[1] + p[2] for p in per_login], "bytes"),
        _count_row("Redis commands per refresh", per_refresh, "commands"),
        _count_row("Redis commands per idle session-hour", per_hour, "commands"),
    ]
    return rows


def _cpu_row(figure: str, ours: Measured, base: Measured, kind: str) -> Row:
    limit = PER_LOGIN_FLOOR[kind]
    return Row(
        figure,
        ours,
        "µs",
        base,
        "µs bare",
        f"<= {limit:.2f}x bare",
        ours.median <= limit * base.median,
        "CPU time of the node's processes per login served (connect+login+ready+REGED+close)",
    )


def _count_row(figure: str, samples: list[float], unit: str) -> Row:
    return Row(
        figure,
        Measured(tuple(samples)),
        unit,
        None,
        "",
        "counted",
        None,
        "Redis INFO stats around the work; the node's own heartbeats included",
    )


def _redis_per_refresh(t: Target, counter: RedisCounter, counts: list[list[int]]) -> list[float]:
    """A refresh sample opens its sessions first: their logins are taken off at the rate the
    login samples counted, then the rest is divided by the refreshes."""
    sessions, refreshes = n(200), n(2000)
    per_login = sum(c[0] for c in counts) / max(1, sum(c[3] for c in counts))
    found = []
    for _ in range(len(counts)):
        settle(t.server.proc.pid)
        args = {"url": t.rtc, "pairs": t.pairs, "sessions": sessions, "rounds": refreshes}
        with counter.counting() as spent:
            loadgen({"mode": "refresh", **args})
            settle(t.server.proc.pid)
        # the node's own heartbeats (a few per sample) are below the printed step
        found.append(max(0.0, round((spent[0] - sessions * per_login) / refreshes, 2)))
    return found


def _redis_per_idle_hour(t: Target, counter: RedisCounter, seconds: float = 10.0) -> list[float]:
    """Commands over ``seconds`` with 1,000 idle sessions, less the same time with none, per
    session, scaled to an hour."""
    count = n(1000)
    found = []
    for _ in range(3):
        settle(t.server.proc.pid)
        with counter.counting() as empty:
            time.sleep(seconds)
        holder = Holder(
            {"url": t.rtc, "tokens": t.sessions, "full": True, "count": count, "batch": 500}
        )
        try:
            settle(t.server.proc.pid)
            with counter.counting() as held:
                time.sleep(seconds)
        finally:
            holder.release()
        found.append(max(0.0, round((held[0] - empty[0]) / count * 3600 / seconds, 1)))
    return found


def workers_rate(work: Path, key: str) -> Row:
    """Logins/s of a node with 2 workers against the same node with 1, on Redis, unpinned."""
    one = _node(work, key, "one-worker", _redis_args("w1"), pinned=False)
    two = _node(work, key, "two-workers", [*_redis_args("w2"), "--workers", "2"], pinned=False)
    try:

        def rate(t: Target) -> Callable[[], float]:
            def sample() -> float:
                settle(t.server.proc.pid)
                return float(login_rate(t.rtc, t.tokens, full=True)["per_second"])

            return sample

        ours, base = interleave("workers", rate(one), rate(two))
    finally:
        two.server.stop()
        one.server.stop()
    return Row(
        "logins/s, 2 workers",
        ours,
        "/s",
        base,
        "/s 1 worker",
        "> 1 worker",
        ours.median > base.median,
        f"{os.cpu_count()} cores shared with the load generator (1 core's worth)",
    )
