"""README's Performance table, rewritten from ``bench/results/latest.json`` (``make bench``
runs this after measuring; ``.venv/bin/python -m bench.readme`` redoes it alone). Hand-edited
figures drifted from what was measured; now the only way to change them is to measure again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.harness import ROOT
from bench.report import LATEST, table

__all__ = ["BEGIN", "END", "PLACEHOLDER", "README", "expected", "generated", "update"]

README = ROOT / "README.md"
BEGIN = "<!-- bench table: written by `make bench` from bench/results/latest.json; do not edit -->"
END = "<!-- end of bench table -->"
PLACEHOLDER = "(no full `make bench` run is recorded yet: run it to fill this in)\n"


def expected(latest: Path = LATEST) -> str:
    """What README must show: the table of ``latest``, or, with none, that there is none."""
    return table(json.loads(latest.read_text())) if latest.exists() else PLACEHOLDER


def generated(readme: str) -> str:
    """What README holds between the markers."""
    start, end = readme.index(BEGIN) + len(BEGIN), readme.index(END)
    return readme[start:end].strip("\n") + "\n"


def update(readme: Path = README, latest: Path = LATEST) -> None:
    text = readme.read_text()
    fresh = expected(latest)
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + fresh + "\n" + text[end:])


if __name__ == "__main__":
    update()
    print(
        f"{README.name}: Performance table rewritten from {LATEST.relative_to(ROOT)}",
        file=sys.stderr,
    )
