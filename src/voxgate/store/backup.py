"""``voxgate backup``: a consistent copy of the embedded SQLite database while it is in use.

SQLite's online backup API copies page by page under its own locking, so writers may carry on
and the copy is one consistent snapshot (WAL included), unlike copying the file. Postgres has
its own tools (``pg_dump``); docs/deployment.md says how.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from voxgate.domain.errors import ConfigurationError

__all__ = ["backup_sqlite"]


def backup_sqlite(database_url: str, dest: Path) -> int:
    """Copies the database to ``dest`` (which must not exist); returns its size in bytes."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise ConfigurationError(
            "voxgate backup copies the embedded SQLite database; for Postgres use pg_dump "
            "(docs/deployment.md, Backups)"
        )
    source = Path(url.database or "")
    if not source.is_file():
        raise ConfigurationError(f"no database at {source}")
    if dest.exists():
        raise ConfigurationError(f"{dest} exists; give a new file name")
    with sqlite3.connect(source) as src, sqlite3.connect(dest) as out:
        src.backup(out)
    with sqlite3.connect(dest) as check:
        if check.execute("PRAGMA integrity_check").fetchone() != ("ok",):
            raise ConfigurationError(f"the copy at {dest} failed its integrity check")
    return dest.stat().st_size
