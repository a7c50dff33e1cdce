"""A small read-through cache with a TTL, for records the hot paths read on every request.

Writers drop entries (``drop``) as they change the store; the TTL bounds how long another
process's write can stay unseen.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["TtlCache"]

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(
        self, load: Callable[[str], Awaitable[V]], ttl: float, max_entries: int = 100_000
    ) -> None:
        self._load = load
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, V]] = {}

    async def get(self, key: str) -> V:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await self._load(key)
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[key] = (now + self.ttl, value)
        return value

    def drop(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)
