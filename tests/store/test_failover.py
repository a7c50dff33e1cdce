"""What a store needs to follow a Postgres primary: multi-host URLs (both forms SQLAlchemy reads)
that skip a server that is gone, a clear refusal of a URL that would not follow the primary,
and audit batches that can be written twice without a duplicate (a retried batch whose first
commit was lost on the way back). The switchover itself: tests/cluster/test_pg_failover.py."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.harness import free_port
from voxgate.domain import ids
from voxgate.domain.errors import ConfigurationError
from voxgate.domain.records import AuditEvent
from voxgate.domain.timeutil import utcnow
from voxgate.services.control import ControlPlane
from voxgate.store.sql import SqlStore, open_store


@pytest.mark.parametrize(
    "hosts",
    [
        "host=127.0.0.1:{dead}&host=127.0.0.1:5432",
        "host=127.0.0.1,127.0.0.1&port={dead},5432",
    ],
)
async def test_a_multi_host_url_skips_a_server_that_is_gone(pg_url: str, hosts: str) -> None:
    name = pg_url.rsplit("/", 1)[1]
    query = hosts.format(dead=free_port()) + "&target_session_attrs=read-write"
    store = await open_store(f"postgresql+asyncpg://postgres@/{name}?{query}")
    try:
        async with store.engine.begin() as db:
            assert (await db.execute(text("SELECT NOT pg_is_in_recovery()"))).scalar_one()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql+asyncpg://u:pw-secret@/db?host=a:1&host=b:2", "target_session_attrs"),
        (
            "postgresql+asyncpg://u:pw-secret@/db?host=a,b&port=1,2&target_session_attrs=any",
            "target_session_attrs=read-write",
        ),
        (
            "postgresql+asyncpg://u:pw-secret@/db?host=a&host=b:2&target_session_attrs=read-write",
            "All ports are required",
        ),
        ("postgresql+asyncpg://u:pw-secret@h:port/db", "not a SQLAlchemy URL"),
    ],
)
async def test_a_url_that_cannot_follow_the_primary_is_refused_clearly(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        await open_store(url)
    assert says in refused.value.detail and "pw-secret" not in refused.value.detail


def test_serve_refuses_such_a_url_in_one_line(tmp_path: Path) -> None:
    url = "postgresql+asyncpg://u:pw-secret@/db?host=127.0.0.1:1&host=127.0.0.1:2"
    done = subprocess.run(
        [sys.executable, "-m", "voxgate", "serve", "--database-url", url,
         "--api-port", "0", "--rtc-port", "0"],
        env={**os.environ, "VOXGATE_HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: the database URL names several hosts: add "), done.stderr
    assert "pw-secret" not in done.stderr and "Traceback" not in done.stderr


async def test_an_audit_batch_written_twice_is_stored_once(plane: ControlPlane) -> None:
    store = plane.store
    assert isinstance(store, SqlStore)
    now = utcnow()
    batch = [
        AuditEvent(ids.new_time_uuid(), "cred-twice", "login_ok", now + timedelta(seconds=i), {})
        for i in range(3)
    ]
    await store.add_audits(batch[:2])  # the first attempt, committed but never confirmed
    await store.add_audits(batch)  # the retry: the whole batch again
    page = await store.list_audit("cred-twice", 1, 10)
    assert sorted(e.id for e in page.items) == sorted(e.id for e in batch)
