"""Alembic, driven from code so ``voxgate serve`` and ``voxgate migrate`` need no ini file.

Several nodes may start at once against one Postgres: each upgrade takes a transaction-scoped
advisory lock first, so they run one after the other and the later ones find nothing to do.
A node started with ``--no-migrate`` only checks that the schema is current and refuses to
run against an older one (upgrade first with ``voxgate migrate``, then roll the nodes).

The schema's revision is read with one query; Alembic itself (a third of a second to import)
is loaded only when there is something to upgrade, so a CLI command starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from voxgate.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "alembic_config", "check_current", "ensure_current", "revision", "upgrade"]

HEAD = "0006"  # the newest file in migrations/versions (a test holds the two together)
_SCRIPTS = Path(__file__).with_name("migrations")
_LOCK = 0x766F7867  # "voxg": the advisory lock every node's upgrade takes


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return str(row[0]) if row else None


def upgrade(connection: Connection) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    command.upgrade(alembic_config(connection), "head")


def _behind(current: str | None) -> bool:
    """Revisions are numbered (0001, 0002, ...) and only ever add: a schema at or past ours
    is one this version runs on (a node of the previous version during a rolling upgrade)."""
    return current is None or int(current) < int(HEAD)


def ensure_current(connection: Connection) -> None:
    """Upgrade if the schema is behind this version's (the common case costs one query)."""
    if _behind(revision(connection)):
        upgrade(connection)


def check_current(connection: Connection) -> None:
    """For ``--no-migrate``: refuse a schema this version would have to upgrade."""
    current = revision(connection)
    if _behind(current):
        raise ConfigurationError(
            f"the database schema is at revision {current or 'none'}, this voxgate needs "
            f"{HEAD}: run `voxgate migrate` first (or start without --no-migrate)"
        )
