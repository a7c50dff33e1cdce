"""``.venv/bin/python -m bench.compare [A.json B.json]``: do two bench runs agree? Without
arguments: the run before the last (``previous.json``) against the last (``latest.json``).

A row measured against a baseline is judged on its **paired ratios** (each voxgate sample over
the baseline sample taken beside it), never on absolute rates: this VM's speed drifts by more
than any change we look for (logins read 2,351 and 2,500 /s an hour apart while the ratio to
the bare server held at 0.52 and 0.50). A row without a baseline (counts, memory) is judged on
its value, which does not drift.

Two measurements agree when each median lies inside the other's min-max widened by ``slack``.
Ratios also agree when their medians are within ``TOLERANCE`` of each other: the 20 % spread a
single stable run's samples are allowed, so two runs may differ by what one run's samples may
(two stable runs here 16 hours apart put the SIP call setup at 3.61 and 4.26 times WebRTC's).
Values get no such tolerance: a count or a memory figure does not drift.
A row unstable in either run (samples spread more than 20 %) is listed, not compared. A row
measured once in both (a bound, the soak's drain) has no range to compare: the two agree when
both met their goal or both missed it.
Exits 1 when a row stable in both disagrees.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.report import LATEST, PREVIOUS, decimals, figure_text
from bench.stats import SPREAD_LIMIT, Measured

__all__ = ["SLACK", "TOLERANCE", "NotAReport", "agree", "judged", "load", "main", "slack"]


SLACK = 0.01
"""A range is widened by 1 % of the median (or half the printed step, if larger) on each side."""

TOLERANCE = SPREAD_LIMIT
"""Two ratio medians this close (relative to their mean) agree whatever their ranges."""


def slack(value: float) -> float:
    """How far outside a range a median may lie and still agree: the larger of 1 % of it and
    half the last digit the report prints."""
    return max(SLACK * abs(value), 10.0 ** -decimals(value) / 2)


def _inside(value: float, measured: dict[str, Any]) -> bool:
    samples = measured["samples"]
    give = slack(value)
    return bool(min(samples) - give <= value <= max(samples) + give)


def agree(a: dict[str, Any], b: dict[str, Any], tolerance: float = 0.0) -> bool:
    mean = (abs(a["median"]) + abs(b["median"])) / 2
    close = mean > 0 and abs(a["median"] - b["median"]) / mean <= tolerance
    return close or (_inside(a["median"], b) and _inside(b["median"], a))


def judged(figure: dict[str, Any], on_ratios: bool) -> tuple[dict[str, Any], bool]:
    """The measurement a row is compared on (its paired ratios, or its value) and whether it
    is stable."""
    if on_ratios:
        m = Measured(tuple(figure["paired_ratios"]))
        return {"median": m.median, "samples": figure["paired_ratios"]}, m.stable
    return figure["value"], figure["verdict"] != "unstable"


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


def _cell(figure: dict[str, Any], on: str, measured: dict[str, Any]) -> str:
    if on != "ratio":
        return figure_text(figure["value"], figure["unit"])
    ratio = figure_text(measured, "")
    return f"{figure_text(figure['value'], figure['unit'])}; ratio {ratio}"


def _once(figure: dict[str, Any]) -> bool:
    return len(figure["value"]["samples"]) == 1


def main(first: Path, second: Path) -> int:
    one, two = load(first), load(second)
    by_name = {f["figure"]: f for f in two["figures"]}
    disagreeing = 0
    print(f"| figure | {one['when'][:16]} | {two['when'][:16]} | judged on | agree |")
    print("|---|---|---|---|---|")
    for f in one["figures"]:
        g = by_name.get(f["figure"])
        if g is None:
            continue
        on_ratios = bool(f.get("paired_ratios")) and bool(g.get("paired_ratios"))
        on = "ratio" if on_ratios else "value"
        (mf, stable_f), (mg, stable_g) = judged(f, on_ratios), judged(g, on_ratios)
        if not (stable_f and stable_g):
            answer = "not compared (unstable)"
        elif _once(f) and _once(g):
            on = "goal"
            answer = "yes" if f["verdict"] == g["verdict"] else "**no**"
            disagreeing += answer != "yes"
        elif agree(mf, mg, TOLERANCE if on_ratios else 0.0):
            answer = "yes"
        else:
            answer = "**no**"
            disagreeing += 1
        print(f"| {f['figure']} | {_cell(f, on, mf)} | {_cell(g, on, mg)} | {on} | {answer} |")
    return 1 if disagreeing else 0


if __name__ == "__main__":
    if len(sys.argv) not in (1, 3):
        sys.exit("usage: python -m bench.compare [FIRST.json SECOND.json]")
    runs = (Path(sys.argv[1]), Path(sys.argv[2])) if len(sys.argv) == 3 else (PREVIOUS, LATEST)
    try:
        sys.exit(main(*runs))
    except NotAReport as e:
        sys.exit(str(e))
