"""Operations: the schema (``migrate``) and backups of the embedded database (``backup``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from voxgate.cli.common import app, run_plain, settings

__all__ = ["backup", "migrate"]


@app.command()
def migrate() -> None:
    """Upgrade the database schema to this version's (what `serve` does at start). With
    several nodes: run this once, then start the nodes with --no-migrate."""
    from voxgate.store.migrate import revision
    from voxgate.store.sql import open_store

    async def go() -> str:
        store = await open_store(settings().database_url, migrate=True)
        try:
            async with store.engine.connect() as db:
                return str(await db.run_sync(revision))
        finally:
            await store.close()

    typer.echo(f"database schema at revision {run_plain(go)} (current)")


@app.command()
def backup(path: Path) -> None:
    """Copy the SQLite database, consistently, while the server runs (Postgres: pg_dump)."""
    from voxgate.store.backup import backup_sqlite

    chosen = settings()
    size = run_plain(lambda: asyncio.to_thread(backup_sqlite, chosen.database_url, path))
    typer.echo(f"backed up {size} bytes to {path}")
    typer.echo(
        f"keep a copy of {chosen.secret_file} with it: it unseals the token signing keys "
        "and is not in the database"
    )
