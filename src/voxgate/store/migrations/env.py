"""Alembic environment: always handed a live connection by ``voxgate.store.migrate``."""

from __future__ import annotations

from alembic import context

from voxgate.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable by calling alembic by hand
    raise RuntimeError("run migrations through voxgate (voxgate serve migrates at start)")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
