"""The bench's outputs: a line per figure as it is measured, then ``latest.json`` (every sample,
the machine's facts) and a dated Markdown report whose table is the one README shows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bench.figures import Row
from bench.harness import ROOT, SCALE
from bench.stats import SPREAD_LIMIT, Measured

__all__ = [
    "LATEST",
    "PREVIOUS",
    "RESULTS",
    "as_dict",
    "decimals",
    "figure_text",
    "show",
    "table",
    "write",
]

RESULTS = ROOT / "bench" / "results"
LATEST = RESULTS / "latest.json"
PREVIOUS = RESULTS / "previous.json"


def decimals(value: float) -> int:
    """How many decimals the report prints ``value`` with: about three significant digits."""
    size = abs(value)
    return 0 if size >= 100 else 1 if size >= 10 else 2


def number(value: float) -> str:
    return f"{value:,.{decimals(value)}f}"


def figure_text(measured: dict[str, Any], unit: str) -> str:
    """``2,202 /s (2,150-2,260)``: the median, then min-max when there was more than one."""
    samples = measured["samples"]
    text = f"{number(measured['median'])} {unit}".strip()
    if len(samples) > 1:
        text += f" ({number(min(samples))}-{number(max(samples))})"
    return text


def _measured(m: Measured | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "median": round(m.median, 3),
        "samples": [round(s, 3) for s in m.samples],
        "spread": round(m.spread, 3),
        "stable": m.stable,
    }


def as_dict(row: Row) -> dict[str, Any]:
    ratio = row.ratio
    return {
        "figure": row.figure,
        "value": _measured(row.value),
        "unit": row.unit,
        "baseline": _measured(row.baseline),
        "baseline_unit": row.baseline_unit,
        "ratio": None if ratio is None else round(ratio, 3),
        "paired_ratios": None if row.paired is None else [round(x, 3) for x in row.paired.samples],
        "floor": row.floor,
        "verdict": row.verdict,
        "note": row.note,
    }


def ratio_text(f: dict[str, Any]) -> str:
    """The ratio of the medians, then the range of the paired ratios."""
    if f["ratio"] is None:
        return "-"
    paired = f.get("paired_ratios")
    return f"{f['ratio']:.2f}" + (f" ({min(paired):.2f}-{max(paired):.2f})" if paired else "")


def show(row: Row) -> None:
    f = as_dict(row)
    base = "-" if f["baseline"] is None else figure_text(f["baseline"], f["baseline_unit"])
    ratio = ratio_text(f)
    print(
        f"  {f['figure']:<42} {figure_text(f['value'], f['unit']):<30} vs {base:<36}"
        f" ratio {ratio:<16} {f['verdict'].upper()}",
        flush=True,
    )


def table(report: dict[str, Any]) -> str:
    """The Markdown table, the machine and the notes, from a report's JSON only (README's
    Performance section shows exactly this)."""
    lines = [
        "| figure | voxgate: median (min-max) | baseline, same run | ratio (paired) | floor"
        " | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for f in report["figures"]:
        base = "-" if f["baseline"] is None else figure_text(f["baseline"], f["baseline_unit"])
        ratio = ratio_text(f)
        verdict = f["verdict"] if f["verdict"] == "met" else f"**{f['verdict']}**"
        lines.append(
            f"| {f['figure']} | {figure_text(f['value'], f['unit'])} | {base} | {ratio}"
            f" | {f['floor']} | {verdict} |"
        )
    m = report["machine"]
    ran = "; ".join(
        f"{role} on {', '.join(map(str, c['ran_on'])) or '?'}" for role, c in m["ran_on"].items()
    )
    lines += [
        "",
        f"Measured {report['when'][:16].replace('T', ' ')} UTC on {m['cpu']}, {m['cores']} cores,"
        f" Python {m['python']}, scale {report['scale']}, {report['repeats']} samples of each,"
        f" interleaved; unstable: a spread over {report['spread_limit']:.0%}. Load average"
        f" {' / '.join(map(str, m['load_before']))} before,"
        f" {' / '.join(map(str, m['load_after']))} after. Cores each process ran on (read"
        f" back): {ran}. Other busy processes at the start:"
        f" {', '.join(m['busy_before']) or 'none'}; at the end:"
        f" {', '.join(m['busy_after']) or 'none'}.",
        "",
        *(f"- {f['figure']}: {f['note']}" for f in report["figures"] if f["note"]),
    ]
    return "\n".join(lines) + "\n"


def write(
    rows: list[Row], machine: dict[str, Any], repeats: int, *, official: bool
) -> tuple[Path, Path]:
    """``official``: a full-scale run, what README shows (``latest.json``, committed; the one
    it replaces becomes ``previous.json``, so ``bench.compare`` can hold the two together); any
    other run (scaled down, a hog) goes to ``trial.json``, which nothing reads."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC)
    report = {
        "when": stamp.isoformat(),
        "machine": machine,
        "scale": SCALE,
        "repeats": repeats,
        "spread_limit": SPREAD_LIMIT,
        "figures": [as_dict(r) for r in rows],
    }
    as_json = LATEST if official else RESULTS / "trial.json"
    if official and LATEST.exists():
        LATEST.replace(PREVIOUS)
    as_json.write_text(json.dumps(report, indent=2) + "\n")
    as_md = RESULTS / (f"{stamp:%Y-%m-%d-%H%M}.md" if official else "trial.md")
    as_md.write_text(f"# voxgate bench, {stamp:%Y-%m-%d %H:%M} UTC\n\n{table(report)}")
    return as_json, as_md
