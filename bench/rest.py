"""Token minting over REST against two baselines, and where its time goes.

The bare constant endpoint (Starlette on uvicorn, a fixed string) is what the server stack costs
by itself; the bare same-work endpoint (``baseline.py: _mint_app``) adds the mint's own work by
hand. What voxgate spends beyond the second is voxgate's. A profiled voxgate (cProfile, one
sample's load) then says where, grouped by package; the whole profile is kept beside the report.
"""

from __future__ import annotations

import os
import pstats
import signal
import time
from collections import defaultdict
from typing import Any

from bench.figures import Row, Target, bare
from bench.harness import MEASURE_SECONDS, ROOT, loadgen, start_voxgate
from bench.stats import rounds

__all__ = ["PROFILE", "rest_tokens"]

PROFILE = ROOT / "bench" / "results" / "rest-profile.txt"


def _rate(port: int, path: str, headers: dict[str, str]) -> float:
    args = {"mode": "http", "host": "127.0.0.1", "port": port, "path": path, "headers": headers}
    result = loadgen({**args, "connections": 16, "seconds": MEASURE_SECONDS})
    if set(result["statuses"]) != {"201"}:
        raise RuntimeError(f"{path}: answered {result['statuses']}")
    return float(result["per_second"])


def rest_tokens(t: Target) -> list[Row]:
    cred = t.creds[0]["id"]
    path = f"/v2/telephony_credentials/{cred}/token"
    auth = {"Authorization": f"Bearer {t.key}"}
    env = {"BENCH_KEY": t.key, "BENCH_CREDENTIAL": cred, "BENCH_DB": str(t.work / "bare.db")}
    constant, constant_port = bare("http")
    same_work, same_work_port = bare("mint", env)
    try:
        const, work, ours = rounds(
            "token issuance",
            lambda: _rate(constant_port, "/token", {}),
            lambda: _rate(same_work_port, path, auth),
            lambda: _rate(int(t.api.rsplit(":", 1)[1]), path, auth),
        )
    finally:
        constant.stop()
        same_work.stop()
    where = profile(t, path, auth)
    share = ours.median / work.median
    return [
        Row(
            "token issuance over REST",
            ours,
            "/s",
            const,
            "/s bare constant",
            ">= 60%",
            ours.median >= 0.6 * const.median,
            f"{share:.0%} of the same work done bare; profile: {where}",
        ),
        Row(
            "token issuance, same work bare",
            work,
            "/s",
            const,
            "/s bare constant",
            "information",
            None,
            "key digest lookup + HS512 mint + batched audit insert on Starlette, no voxgate",
        ),
    ]


def profile(t: Target, path: str, auth: dict[str, str]) -> str:
    """One sample's load on a voxgate under cProfile; self time grouped by package."""
    raw = t.work / "rest.prof"
    node, api, _ = start_voxgate(t.work, t.key, profile=raw)
    try:
        _rate(int(api.rsplit(":", 1)[1]), path, auth)  # warm: first-use imports, caches
        node.proc.send_signal(signal.SIGUSR1)
        _rate(int(api.rsplit(":", 1)[1]), path, auth)
        node.proc.send_signal(signal.SIGUSR2)
        for _ in range(100):
            if raw.exists() and raw.stat().st_size:
                break
            time.sleep(0.1)
    finally:
        node.stop()
    stats = pstats.Stats(str(raw))
    groups = _by_package(stats)
    total = sum(groups.values()) or 1.0
    top = sorted(groups.items(), key=lambda kv: -kv[1])
    PROFILE.parent.mkdir(parents=True, exist_ok=True)
    with PROFILE.open("w") as out:
        out.write("# self time by package, then the top functions (cProfile, one sample)\n")
        for name, seconds in top:
            out.write(f"{seconds / total:7.1%}  {name}\n")
        out.write("\n")
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(40)
    os.replace(raw, PROFILE.with_suffix(".prof"))  # for pstats, beside the text
    return ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in top[:6])


def _by_package(stats: pstats.Stats) -> dict[str, float]:
    groups: dict[str, float] = defaultdict(float)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, function), (_, _, tottime, _, _) in table.items():
        groups[_package(filename, function)] += tottime
    return groups


def _package(filename: str, function: str) -> str:
    if filename == "~":  # a built-in: its own name says what it is
        if function[1:].startswith("method "):  # <method 'search' of 're.Pattern' objects>
            _, name, _, owner, _ = function.split("'")
            return f"built-in {owner}.{name}"
        return "built-in " + function.strip("<>").removeprefix("built-in method ").split()[0]
    parts = filename.split(os.sep)
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if "voxgate" in parts:
        return "voxgate." + parts[parts.index("voxgate") + 1].removesuffix(".py")
    return "stdlib " + parts[-1].removesuffix(".py")
