"""A small read-through cache with a TTL, for records the hot paths read on every request.

Writers drop entries (``drop``) as they change the store; the TTL bounds how long another
process's write can stay unseen. Every cache of a record that a policy or a revocation reads
uses ``STALE_AFTER``, so a node that missed a change event (a Redis hiccup) acts on the change
within the same bound wherever the change was made and whichever node it is.

A hot entry is reloaded in the background in the last fifth of its TTL, so the request that
would have found it expired does not wait on the store: with 1,000 sessions refreshing over 200
credentials, one login in ten waited for a database read and set the refresh p99 (``make
bench``). Reloading at half the TTL doubled the reads of hot entries and cost login throughput;
the last fifth costs a quarter more. Nothing is served past its TTL; a load that began before a
``drop`` is not cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["STALE_AFTER", "TtlCache"]

STALE_AFTER = 2.0  # seconds a node may act on a record changed elsewhere, if the event is lost

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(
        self, load: Callable[[str], Awaitable[V]], ttl: float, max_entries: int = 100_000
    ) -> None:
        self._load = load
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, V]] = {}
        self._drops = 0  # a load that saw another value of this counter is not kept
        self._reloading: dict[str, asyncio.Task[None]] = {}

    async def get(self, key: str) -> V:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            if hit[0] - now < self.ttl / 5 and key not in self._reloading:
                task = asyncio.get_running_loop().create_task(self._reload(key))
                self._reloading[key] = task
            return hit[1]
        return await self._fetch(key, now)

    async def _fetch(self, key: str, now: float) -> V:
        drops = self._drops
        value = await self._load(key)
        if drops == self._drops:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now + self.ttl, value)
        return value

    async def _reload(self, key: str) -> None:
        try:
            with contextlib.suppress(Exception):  # the entry expires; the next get loads
                await self._fetch(key, time.monotonic())
        finally:
            self._reloading.pop(key, None)

    def clear(self) -> None:
        self.drop(*self._entries)

    def drop(self, *keys: str) -> None:
        self._drops += 1
        for key in keys:
            self._entries.pop(key, None)
