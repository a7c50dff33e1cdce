"""Password-login throttle: exponential back-off per username and per address, then lockout.

Pure and clock-free: every call takes ``now``. A locked-out attempt is rejected before any
hashing work, so an attacker cannot burn our CPU with argon2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LoginThrottle", "login_keys"]


def login_keys(user: str, address: str) -> tuple[str, str]:
    """What a password attempt counts against: its user name and its address. WebRTC password
    logins and SIP digests use the same keys, so both fill one lockout."""
    return ("user:" + user.lower(), "addr:" + address)


@dataclass(slots=True)
class _Record:
    failures: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(slots=True)
class LoginThrottle:
    free_failures: int = 3
    base_delay: float = 1.0
    lockout_after: int = 10
    lockout: float = 900.0
    forget_after: float = 3600.0
    max_entries: int = 100_000
    _records: dict[str, _Record] = field(default_factory=dict)

    def retry_after(self, keys: tuple[str, ...], now: float) -> float:
        """Seconds until any of ``keys`` may try again (0 = allowed)."""
        wait = 0.0
        for key in keys:
            rec = self._records.get(key)
            if rec is not None and rec.blocked_until > now:
                wait = max(wait, rec.blocked_until - now)
        return wait

    def failure(self, keys: tuple[str, ...], now: float) -> None:
        if len(self._records) >= self.max_entries:
            self._evict(now)
        for key in keys:
            rec = self._records.setdefault(key, _Record())
            if now - rec.last_failure > self.forget_after:
                rec.failures = 0
            rec.failures += 1
            rec.last_failure = now
            if rec.failures >= self.lockout_after:
                rec.blocked_until = now + self.lockout
            elif rec.failures > self.free_failures:
                delay = self.base_delay * 2 ** (rec.failures - self.free_failures - 1)
                rec.blocked_until = now + min(delay, self.lockout)

    def success(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._records.pop(key, None)

    def _evict(self, now: float) -> None:
        stale = [k for k, r in self._records.items() if r.blocked_until <= now]
        for key in stale[: max(1, len(stale))]:
            del self._records[key]
