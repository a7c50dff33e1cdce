"""What a gateway node tells the operator console about itself, every few seconds, through the
bus: its sessions (live, registered, detached), its calls in progress, and per-minute counts
for the last hour (logins ok and failed, revocations, live sessions).

The counts come from the Prometheus counters the node keeps anyway, sampled once a minute
boundary passes: nothing is added to the login or call paths.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from voxgate import metrics
from voxgate.bus.base import Bus

__all__ = ["REPORT_INTERVAL", "Trend", "report_forever"]

log = structlog.get_logger("voxgate.gateway")
REPORT_INTERVAL = 2.0
HOUR = 60  # minutes kept


def _total(counter: Any, **labels: str) -> float:
    """A counter's value summed over the label values that match ``labels``."""
    total = 0.0
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


class Trend:
    """Cumulative counts at the first sample of each minute; a minute's figure is the
    difference to the next minute's (or, for the minute under way, to the latest sample)."""

    def __init__(self) -> None:
        self._marks: list[tuple[int, dict[str, float]]] = []
        self._latest: dict[str, float] = {}

    def sample(self, now: float, sessions: int) -> None:
        self._latest = {
            "logins_ok": _total(metrics.LOGINS, result="ok"),
            "logins_failed": _total(metrics.LOGINS, result="failed"),
            "revocations": _total(metrics.REVOCATIONS),
            "sessions": float(sessions),
        }
        minute = int(now // 60) * 60
        if not self._marks or self._marks[-1][0] != minute:
            self._marks = [*self._marks[-HOUR:], (minute, dict(self._latest))]

    def minutes(self) -> list[dict[str, float]]:
        """One row per minute (the last one still under way): counts in it, and the sessions
        live at its end (or now)."""
        rows = []
        ends = [*self._marks[1:], (0, self._latest)]
        for (minute, before), (_, after) in zip(self._marks, ends, strict=False):
            rows.append(
                {
                    "minute": float(minute),
                    "logins_ok": after["logins_ok"] - before["logins_ok"],
                    "logins_failed": after["logins_failed"] - before["logins_failed"],
                    "revocations": after["revocations"] - before["revocations"],
                    "sessions": after["sessions"],
                }
            )
        return rows


async def report_forever(
    bus: Bus, describe: Callable[[], dict[str, Any]], interval: float = REPORT_INTERVAL
) -> None:
    """Publish ``describe()`` (plus the trend) every ``interval`` seconds, kept 3 intervals."""
    trend = Trend()
    while True:
        try:
            report = describe()
            trend.sample(time.time(), int(report.get("sessions", 0)))
            report["minutes"] = trend.minutes()
            await bus.put_node_report(report, ttl=3 * interval)
        except Exception:
            log.exception("node report failed")
        await asyncio.sleep(interval)
