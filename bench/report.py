"""The bench's outputs: a line per figure as it is measured, then JSON and Markdown reports."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

from bench.figures import Row
from bench.harness import ROOT, SCALE

__all__ = ["RESULTS", "show", "write"]

RESULTS = ROOT / "bench" / "results"


def show(row: Row) -> None:
    base = "-" if row.baseline is None else f"{row.baseline:.1f}"
    ratio = f"{row.ratio:.2f}" if row.ratio else "-"
    verdict = "" if row.meets_floor is None else ("OK" if row.meets_floor else "MISSED")
    print(
        f"  {row.figure:<38} {row.value:>10.1f} {row.unit:<10} baseline {base:>9}"
        f" {row.baseline_unit:<10} ratio {ratio:>5}  floor {row.floor} {verdict}",
        flush=True,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def write(rows: list[Row]) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC)
    figures = [
        {
            **asdict(r),
            "value": round(r.value, 3),
            "baseline": _rounded(r.baseline),
            "ratio": _rounded(r.ratio),
        }
        for r in rows
    ]
    report = {
        "when": stamp.isoformat(),
        "machine": {
            "host": platform.node(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "scale": SCALE,
        "figures": figures,
    }
    as_json = RESULTS / "latest.json"
    as_json.write_text(json.dumps(report, indent=2))
    lines = [
        f"# voxgate bench, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, scale {SCALE}.",
        "",
        "| figure | value | baseline | ratio | floor | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        met = {True: "yes", False: "no"}.get(f["meets_floor"], "-")
        lines.append(
            f"| {f['figure']} | {f['value']} {f['unit']} | {f['baseline']} {f['baseline_unit']}"
            f" | {f['ratio']} | {f['floor']} | {met} ({f['note']}) |"
        )
    as_md = RESULTS / f"{stamp:%Y-%m-%d}.md"
    as_md.write_text("\n".join(lines) + "\n")
    return as_json, as_md
