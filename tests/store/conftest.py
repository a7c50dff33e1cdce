"""The store suites' control plane, on SQLite and on the real Postgres of this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from voxgate.auth.keyring import Sealer
from voxgate.bus.base import Revoked
from voxgate.bus.local import LocalBus
from voxgate.services.control import ControlPlane
from voxgate.store.sql import SqlStore, open_store


@pytest.fixture(params=["sqlite", "postgres"])
async def plane(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ControlPlane]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    else:
        url = request.getfixturevalue("pg_url")
    store = await open_store(url)
    bus = LocalBus()
    plane = ControlPlane(store, bus, Sealer.from_file(tmp_path / "kek"))
    if request.param == "postgres":
        await _clear(store)
    await plane.load_keys()
    events: list[Revoked] = []

    async def record(ev: object) -> None:
        if isinstance(ev, Revoked):
            events.append(ev)

    bus.subscribe(record)
    plane.revocations = events  # type: ignore[attr-defined]
    yield plane
    await store.close()


async def _clear(store: SqlStore) -> None:
    """The Postgres database lives for the run; each test starts from empty tables."""
    async with store.engine.begin() as db:
        for table in (
            "phone_numbers",
            "sip_trunks",
            "audit_events",
            "telephony_credentials",
            "credential_connections",
            "api_keys",
            "assistants",
            "signing_keys",
        ):
            await db.execute(text(f"DELETE FROM {table}"))
