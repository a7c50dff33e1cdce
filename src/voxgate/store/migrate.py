"""Alembic, driven from code so ``voxgate serve`` and ``voxgate migrate`` need no ini file.

Several nodes may start at once against one Postgres: each upgrade takes a transaction-scoped
advisory lock first, so they run one after the other and the later ones find nothing to do.
A node started with ``--no-migrate`` only checks that the schema is current and refuses to
run against an older one (upgrade first with ``voxgate migrate``, then roll the nodes).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from voxgate.domain.errors import ConfigurationError

__all__ = ["alembic_config", "check_current", "head", "revision", "upgrade"]

_SCRIPTS = Path(__file__).with_name("migrations")
_LOCK = 0x766F7867  # "voxg": the advisory lock every node's upgrade takes


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None
    return found


def revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    command.upgrade(alembic_config(connection), "head")


def check_current(connection: Connection) -> None:
    """For ``--no-migrate``: the schema must be exactly the one this version runs on."""
    current, wanted = revision(connection), head()
    if current != wanted:
        raise ConfigurationError(
            f"the database schema is at revision {current or 'none'}, this voxgate needs "
            f"{wanted}: run `voxgate migrate` first (or start without --no-migrate)"
        )
