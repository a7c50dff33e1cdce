"""Is the client still there? Our pings, its silence, and the frame budget, as deadlines.

A socket can look open while nothing gets through (a frozen NAT, a sleeping laptop): only
traffic proves the client is alive. The SDK answers our ``telnyx_rtc.ping`` with one of its
own and probes by itself after 20 s of silence, so ``idle_timeout`` of silence means gone.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FrameBudget", "Liveness"]


@dataclass(slots=True)
class Liveness:
    ping_interval: float  # 0: we never ping
    idle_timeout: float  # 0: silence never ends a session
    last_heard: float
    next_ping: float | None = None

    def heard(self, now: float) -> None:
        self.last_heard = now

    def start(self, now: float) -> None:
        """Logged in (or back): ping from now on, and count silence from now."""
        self.last_heard = now
        self.next_ping = now + self.ping_interval if self.ping_interval > 0 else None

    def stop(self) -> None:
        self.next_ping = None

    def silent(self, now: float) -> bool:
        return self.idle_timeout > 0 and now >= self.last_heard + self.idle_timeout

    def ping_due(self, now: float) -> bool:
        if self.next_ping is None or now < self.next_ping:
            return False
        self.next_ping = now + self.ping_interval
        return True

    def deadlines(self) -> list[float | None]:
        idle = self.last_heard + self.idle_timeout if self.idle_timeout > 0 else None
        return [self.next_ping, idle]


@dataclass(slots=True)
class FrameBudget:
    """A token bucket: ``rate`` frames a second, bursts up to ``burst``."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True
