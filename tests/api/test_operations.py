"""Operations: migrations run once for several nodes, nodes that must not migrate refuse an
older schema, and a live SQLite database is backed up consistently."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.harness import Voxgate, create_pg_database, drop_pg_database, free_port


def voxgate(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voxgate", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_no_migrate_refuses_an_old_schema_until_voxgate_migrate_ran(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    secret = ["--secret-file", str(tmp_path / "s.secret")]
    ports = ["--api-port", str(free_port()), "--rtc-port", str(free_port())]
    refused = voxgate("--database-url", url, *secret, "serve", "--no-migrate", *ports, cwd=tmp_path)
    assert refused.returncode == 1
    assert "run `voxgate migrate` first" in refused.stderr
    assert "revision none" in refused.stderr
    done = voxgate("--database-url", url, *secret, "migrate", cwd=tmp_path)
    assert done.returncode == 0 and "(current)" in done.stdout
    again = voxgate("--database-url", url, *secret, "migrate", cwd=tmp_path)
    assert again.stdout == done.stdout  # nothing left to do
    vg = Voxgate(tmp_path / "node", database_url=url, extra_args=["--no-migrate"])
    vg.env["VOXGATE_SECRET_FILE"] = str(tmp_path / "s.secret")
    vg.start()  # the schema is current: a --no-migrate node starts
    vg.stop()


def test_several_nodes_migrating_one_postgres_at_once_all_succeed(tmp_path: Path) -> None:
    url = create_pg_database()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            runs = list(
                pool.map(
                    lambda _: voxgate("--database-url", url, "migrate", cwd=tmp_path), range(4)
                )
            )
        assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
        assert len({r.stdout for r in runs}) == 1
    finally:
        drop_pg_database(url)


def test_a_live_database_is_backed_up_consistently(server: Voxgate, tmp_path: Path) -> None:
    conn = server.cli("connections", "create", "--name", "kept-in-backup").stdout
    dest = tmp_path / "backup.db"
    out = server.cli("backup", str(dest))
    assert f"to {dest}" in out.stdout and "voxgate.secret" in out.stdout
    with sqlite3.connect(dest) as db:
        names = {r[0] for r in db.execute("SELECT connection_name FROM credential_connections")}
        assert "kept-in-backup" in names and conn
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    twice = server.cli("backup", str(dest), check=False)
    assert twice.returncode == 1 and "exists" in twice.stderr
    pg = voxgate(
        "--database-url", "postgresql+asyncpg://postgres@127.0.0.1/none", "backup", "x.db",
        cwd=tmp_path,
    )  # fmt: skip
    assert pg.returncode == 1 and "pg_dump" in pg.stderr


def test_the_head_constant_is_the_newest_migration() -> None:
    """The fast start path compares against ``HEAD``; it must be Alembic's own head."""
    from alembic.script import ScriptDirectory

    from voxgate.store.migrate import HEAD, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD
