"""Repeated, interleaved measurements and what may be concluded from them.

A single run of a baseline once moved 6.5x between two bench runs while voxgate's figure moved
far less; a ratio built on it said "met" one day and "missed" the next. So every compared figure
is measured as A B A B A B (baseline, then voxgate, in turn, so a slow minute of the machine hits
both), reported as the median of each with its min-max, and a figure whose samples spread more
than ``SPREAD_LIMIT`` is "unstable": it is printed, but judged neither met nor missed.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "HOG",
    "REPEATS",
    "SPREAD_LIMIT",
    "Measured",
    "cpu_hog",
    "interleave",
    "repeat",
    "rounds",
    "verdict",
]

SPREAD_LIMIT = 0.20
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
# BENCH_HOG=<text>: the baseline of every figure whose name contains <text> runs its second
# sample beside a CPU hog on the servers' core: the bench must then call that figure unstable.
HOG = os.environ.get("BENCH_HOG", "")


@dataclass(frozen=True, slots=True)
class Measured:
    """Samples of one quantity, in the order taken."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median: 0.2 means the samples span a fifth of the median."""
        median = self.median
        return (self.high - self.low) / abs(median) if median else 0.0

    @property
    def stable(self) -> bool:
        return self.spread <= SPREAD_LIMIT

    @classmethod
    def once(cls, value: float) -> Measured:
        """A quantity that is not sampled (a bound, a count that cannot vary)."""
        return cls((value,))


def verdict(met: bool | None, *measured: Measured | None) -> str:
    """``unstable`` beats met and missed: a judgement on a moving figure would be luck."""
    if any(m is not None and not m.stable for m in measured):
        return "unstable"
    return {True: "met", False: "missed", None: "not judged"}[met]


@contextlib.contextmanager
def cpu_hog(core: int) -> Iterator[None]:
    """A busy loop pinned to ``core`` for the duration: a deliberately slowed sample."""
    hog = subprocess.Popen(
        [sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile True: pass"]
    )
    try:
        yield
    finally:
        hog.kill()
        hog.wait()


def rounds(
    name: str, *measures: Callable[[], float], repeats: int = REPEATS, hog: str = HOG
) -> list[Measured]:
    """Each measure in turn, ``repeats`` times over: A B C A B C A B C. The first is the
    baseline; with ``hog`` in ``name``, its second sample runs beside a CPU hog on core 0."""
    samples: list[list[float]] = [[] for _ in measures]
    for i in range(repeats):
        for j, measure in enumerate(measures):
            slowed = hog and hog in name and i == 1 and j == 0
            with cpu_hog(0) if slowed else contextlib.nullcontext():
                samples[j].append(measure())
    return [Measured(tuple(s)) for s in samples]


def interleave(
    name: str, baseline: Callable[[], float], ours: Callable[[], float]
) -> tuple[Measured, Measured]:
    """Baseline, voxgate, baseline, voxgate, ...: (voxgate, baseline)."""
    base, value = rounds(name, baseline, ours)
    return value, base


def repeat(measure: Callable[[], float], repeats: int = REPEATS) -> Measured:
    return Measured(tuple(measure() for _ in range(repeats)))
