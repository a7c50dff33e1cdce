"""``.venv/bin/python -m bench.compare [A.json B.json]``: do two bench runs agree? Without
arguments: the run before the last (``previous.json``) against the last (``latest.json``).

A row stable in both runs agrees when each run's median lies inside the other's printed
min-max, widened by ``slack``: a memory figure whose samples span 0.01 KB must not be judged by
its third decimal, which no reader sees and no machine holds still. The 20 % instability rule is
untouched; the slack only stops a run from "disagreeing" by less than the table can show.
Unstable rows are listed but not compared: their ranges already say the machine moved.
Exits 1 when a row stable in both disagrees.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.report import LATEST, PREVIOUS, decimals, figure_text

__all__ = ["SLACK", "NotAReport", "agree", "load", "main", "slack"]


SLACK = 0.01
"""A range is widened by 1 % of the median (or half the printed step, if larger) on each side."""


def slack(value: float) -> float:
    """How far outside a range a median may lie and still agree: the larger of 1 % of it and
    half the last digit the report prints."""
    return max(SLACK * abs(value), 10.0 ** -decimals(value) / 2)


def _inside(value: float, measured: dict[str, Any]) -> bool:
    samples = measured["samples"]
    give = slack(value)
    return bool(min(samples) - give <= value <= max(samples) + give)


def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _inside(a["median"], b) and _inside(b["median"], a)


class NotAReport(Exception):
    """A path that is missing or is not a bench report: said in one line, not a traceback."""


def load(path: Path) -> dict[str, Any]:
    try:
        report: dict[str, Any] = json.loads(path.read_text())
        if not all(isinstance(f["value"]["samples"], list) for f in report["figures"]):
            raise TypeError
        report["when"] = str(report["when"])
    except FileNotFoundError:
        hint = " (written when a full make bench replaces latest.json)" if path == PREVIOUS else ""
        raise NotAReport(f"{path}: no such file{hint}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise NotAReport(f"{path}: not a bench report (latest.json, previous.json)") from None
    return report


def main(first: Path, second: Path) -> int:
    one, two = load(first), load(second)
    by_name = {f["figure"]: f for f in two["figures"]}
    disagreeing = 0
    print(f"| figure | {one['when'][:16]} | {two['when'][:16]} | agree |")
    print("|---|---|---|---|")
    for f in one["figures"]:
        g = by_name.get(f["figure"])
        if g is None:
            continue
        cells = [figure_text(x["value"], x["unit"]) for x in (f, g)]
        stable = f["verdict"] != "unstable" and g["verdict"] != "unstable"
        if not stable:
            answer = "not compared (unstable)"
        elif agree(f["value"], g["value"]) and (
            f["baseline"] is None or agree(f["baseline"], g["baseline"])
        ):
            answer = "yes"
        else:
            answer = "**no**"
            disagreeing += 1
        print(f"| {f['figure']} | {cells[0]} | {cells[1]} | {answer} |")
    return 1 if disagreeing else 0


if __name__ == "__main__":
    if len(sys.argv) not in (1, 3):
        sys.exit("usage: python -m bench.compare [FIRST.json SECOND.json]")
    runs = (Path(sys.argv[1]), Path(sys.argv[2])) if len(sys.argv) == 3 else (PREVIOUS, LATEST)
    try:
        sys.exit(main(*runs))
    except NotAReport as e:
        sys.exit(str(e))
