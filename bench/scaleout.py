"""What more processes and more nodes carry: the figures the capacity model in
docs/deployment.md rests on, and its check.

- **Idle memory with --redis-url**: RSS of the node's whole process tree per held session,
  against the embedded node's, each sample a new process (one that held sessions before reuses
  their freed memory).
- **Reconnect storm with 2 workers against 1**: sessions dropped at once and all logging in
  again at once, on one node on Redis; neither node pinned (the load generator keeps its core).
- **The model, checked**: a storm on 3 nodes (Postgres + Redis) costs the nodes CPU and Redis
  commands per login; the model predicts both from one node's login-rate sample in the same
  run. Ratios of CPU time, not rates: the machine's drift drops out.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.figures import WARM_SESSIONS, Row, held_kb_per_session, in_new_node
from bench.harness import (
    PG_ADMIN,
    REDIS_URL,
    Server,
    loadgen,
    mint_tokens,
    n,
    provision,
    settle,
    start_voxgate,
)
from bench.machine import tree_cpu_seconds
from bench.stats import Measured, interleave
from bench.workers import RedisCounter, _login_sample, _redis_args

__all__ = ["cluster_model", "idle_memory_redis", "storm_workers"]

IDLE_SESSION_KB = 8  # issue 29: an idle session, socket included, with and without Redis
MODEL_TOLERANCE = 0.25  # issue 29: the 3-node run within 25 % of the model's prediction


def _minted(work: Path, key: str, name: str, extra: list[str], count: int) -> Path:
    """A node's home with credentials and ``count`` tokens in it (written to ``tokens``)."""
    home = work / name
    home.mkdir(exist_ok=True)
    server, api, _ = start_voxgate(home, key, extra)
    try:
        tokens = mint_tokens(api, key, provision(api, key, n(200)), count)
    finally:
        server.stop()
    (home / "tokens").write_text("\n".join(tokens))
    return home


def _tokens(home: Path) -> list[str]:
    return (home / "tokens").read_text().split("\n")


def idle_memory_redis(work: Path, key: str) -> Row:
    count = n(10_000)
    kinds = {"embedded": [], "redis": _redis_args("memory")}
    homes = {
        kind: _minted(work, key, f"idle-{kind}", extra, count) for kind, extra in kinds.items()
    }

    def per_session(kind: str) -> Callable[[], float]:
        def sample() -> float:
            tokens = _tokens(homes[kind])

            def measure(pid: int, url: str) -> float:
                return held_kb_per_session(pid, url, tokens, True)

            return in_new_node(homes[kind], key, measure, kinds[kind])

        return sample

    ours, base = interleave("idle memory redis", per_session("embedded"), per_session("redis"))
    return Row(
        "idle session memory, --redis-url",
        ours,
        "KB",
        base,
        "KB embedded",
        f"<= {IDLE_SESSION_KB} KB",
        ours.median <= IDLE_SESSION_KB,
        f"{count} sessions per sample (after {WARM_SESSIONS} held), each in a new process",
    )


def _cpu(pids: list[int]) -> float:
    return sum(tree_cpu_seconds(pid) for pid in pids)


def _idle_rate(pids: list[int], seconds: float = 3.0) -> float:
    """CPU seconds per second the nodes spend with nothing to do (heartbeats, node reports,
    sweeps): the model sizes the work of logins, so a sample's quiet share is taken off."""
    before = _cpu(pids)
    time.sleep(seconds)
    return (_cpu(pids) - before) / seconds


def _storm(url: str | list[str], tokens: list[str], count: int) -> dict[str, Any]:
    job = {"mode": "storm", "url": url, "tokens": tokens, "count": count, "batch": 1000}
    return loadgen(job, timeout=900)


def storm_workers(work: Path, key: str) -> Row:
    count = n(10_000)
    setups = {"w1": [], "w2": ["--workers", "2"]}
    homes = {w: _minted(work, key, f"storm-{w}", _redis_args(w), count) for w in setups}
    nodes = {
        w: start_voxgate(homes[w], key, [*_redis_args(w), *extra], pinned=False)
        for w, extra in setups.items()
    }
    outcomes: list[dict[str, Any]] = []

    def storm_on(w: str) -> Callable[[], float]:
        def sample() -> float:
            server, _, rtc = nodes[w]
            settle(server.proc.pid)
            outcomes.append(_storm(rtc, _tokens(homes[w]), count))
            return float(outcomes[-1]["seconds"])

        return sample

    try:
        ours, base = interleave("storm workers", storm_on("w1"), storm_on("w2"))
    finally:
        for server, _, _ in nodes.values():
            server.stop()
    lost = sum(o["lost"] for o in outcomes)
    return Row(
        "reconnect storm, 2 workers",
        ours,
        "s",
        base,
        "s 1 worker",
        "< 1 worker, none lost",
        ours.median < base.median and lost == 0,
        f"{count} sessions x{len(outcomes)} on Redis: {lost} lost;"
        f" {os.cpu_count()} cores shared with the load generator (1 core's worth)",
    )


def cluster_model(work: Path, key: str) -> Row:
    """3 nodes on one Postgres and one Redis; a storm across them. Measured: the nodes' CPU
    and Redis's commands per login it served (each session logs in twice: before the drop and
    after). Predicted: one node's CPU per login in a login-rate sample of the same run, and
    the same count of Redis commands."""
    name = "voxgate_bench_" + os.urandom(6).hex()
    subprocess.run(["psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{name}"'], check=True)
    env = {
        "VOXGATE_SECRET_FILE": str(work / "model.secret"),
        "VOXGATE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
    }
    common = ["--redis-url", REDIS_URL, "--redis-prefix", f"vxbench:{name}:"]
    count, home = n(3_000), work / "model"
    home.mkdir(exist_ok=True)
    nodes: list[tuple[Server, str, str]] = []
    counter = RedisCounter()
    single_commands: list[float] = []
    storm_commands: list[float] = []
    try:
        for i in range(3):
            extra = [*common, "--node-id", f"m{i}", "--reattach-window", "0"]
            nodes.append(start_voxgate(home, key, extra, env, pinned=False))
        api = nodes[0][1]
        # one credential per session, as people have: sessions sharing one would displace
        # each other, and every node would hear every displacement (work the model's
        # one-node input, one session per credential at a time, does not have)
        creds = provision(api, key, count)
        tokens = [c["token"] for c in creds]
        one_node_tokens = tokens[: n(200)]
        pids = [server.proc.pid for server, _, _ in nodes]

        def one_node() -> float:
            settle(pids[0])
            idle = _idle_rate(pids[:1])
            start = time.monotonic()
            with counter.counting() as spent:
                used, logins = _login_sample(pids[0], nodes[0][2], one_node_tokens, True)
            single_commands.append(spent[0] / max(1, logins))
            used -= idle * (time.monotonic() - start)
            return used / max(1, logins) * 1e6

        def storm() -> float:
            for pid in pids:
                settle(pid)
            idle = _idle_rate(pids)
            before, start = _cpu(pids), time.monotonic()
            with counter.counting() as spent:
                out = _storm([rtc for _, _, rtc in nodes], tokens, count)
                for pid in pids:
                    settle(pid)
            logins = int(out["sessions"]) + int(out["reged"])
            storm_commands.append(spent[0] / max(1, logins))
            used = _cpu(pids) - before - idle * (time.monotonic() - start)
            return used / max(1, logins) * 1e6

        ours, base = interleave("cluster model", one_node, storm)
    finally:
        for server, _, _ in reversed(nodes):
            server.stop()
        subprocess.run(
            ["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
            capture_output=True,
        )
    cmds = Measured(tuple(storm_commands)).median, Measured(tuple(single_commands)).median
    ratio = ours.median / max(base.median, 1e-9)
    return Row(
        "3-node storm: CPU per login vs the model",
        ours,
        "µs",
        base,
        "µs predicted",
        f"within {MODEL_TOLERANCE:.0%} of the model",
        abs(ratio - 1) <= MODEL_TOLERANCE,
        f"{count} sessions across 3 nodes (Postgres + Redis), each logging in twice; Redis"
        f" commands per login {cmds[0]:.1f} in the storm, {cmds[1]:.1f} predicted",
    )
