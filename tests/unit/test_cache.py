"""The read-through cache the login and mint paths use: hot entries reload in the background,
nothing is served past its TTL, and a load that raced a drop is not kept."""

from __future__ import annotations

import asyncio

from voxgate.services.cache import TtlCache


class Store:
    def __init__(self) -> None:
        self.value = "v1"
        self.loads = 0
        self.gate: asyncio.Event | None = None

    async def load(self, key: str) -> str:
        self.loads += 1
        value = self.value
        if self.gate is not None:
            await self.gate.wait()
        return f"{key}:{value}"


async def test_a_hot_entry_near_its_ttl_reloads_without_making_anyone_wait() -> None:
    store = Store()
    cache = TtlCache(store.load, ttl=0.5)
    assert await cache.get("k") == "k:v1"
    await asyncio.sleep(0.1)
    assert await cache.get("k") == "k:v1" and store.loads == 1  # early: no reload yet
    await asyncio.sleep(0.32)  # in the last fifth of the TTL, not expired
    store.value, store.gate = "v2", asyncio.Event()
    # served at once from the entry although the store is blocked: the reload runs aside
    assert await asyncio.wait_for(cache.get("k"), 0.05) == "k:v1"
    assert await asyncio.wait_for(cache.get("k"), 0.05) == "k:v1"
    assert store.loads == 2  # one background reload, not one per get
    store.gate.set()
    await asyncio.sleep(0.01)
    assert await cache.get("k") == "k:v2"
    assert store.loads == 2


async def test_nothing_is_served_past_its_ttl() -> None:
    store = Store()
    cache = TtlCache(store.load, ttl=0.1)
    await cache.get("k")
    store.value = "v2"
    await asyncio.sleep(0.15)
    assert await cache.get("k") == "k:v2"  # expired: loaded inline


async def test_a_load_that_raced_a_drop_is_not_kept() -> None:
    store = Store()
    cache = TtlCache(store.load, ttl=5)
    store.gate = asyncio.Event()
    loading = asyncio.create_task(cache.get("k"))
    await asyncio.sleep(0.01)
    cache.drop("k")  # e.g. the credential was deactivated while its old row was in flight
    store.value = "deactivated"
    store.gate.set()
    assert await loading == "k:v1"  # that caller raced the change
    assert await cache.get("k") == "k:deactivated"  # but nobody after it
