"""Database URLs, checked before an engine is made from one.

A Postgres URL may name several servers (a primary and its standbys). asyncpg then connects to
the first one that answers unless ``target_session_attrs`` asks for the one taking writes; a
node that settled on a standby would answer every write with a 503 until restarted, so such a
URL is refused at start instead. Messages never repeat the URL: it may hold a password.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from voxgate.domain.errors import ConfigurationError

__all__ = ["FOLLOWS_PRIMARY", "check_database_url", "engine_error"]

FOLLOWS_PRIMARY = ("read-write", "primary")  # asyncpg's target_session_attrs for "the primary"


def check_database_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigurationError(
            "the database URL is not a SQLAlchemy URL (dialect+driver://user@host/database)"
        ) from None
    hosts = parsed.query.get("host")
    several = isinstance(hosts, tuple) or (isinstance(hosts, str) and "," in hosts)
    if several and parsed.query.get("target_session_attrs") not in FOLLOWS_PRIMARY:
        raise ConfigurationError(
            "the database URL names several hosts: add target_session_attrs=read-write, so "
            "that every node writes to the primary and follows it when a standby is promoted"
        )
    return parsed


def engine_error(exc: ArgumentError) -> ConfigurationError:
    """SQLAlchemy's own complaint (an unknown driver, a host without its port), which names
    options and dialects, never the URL's values."""
    return ConfigurationError(f"the database URL: {exc}")
