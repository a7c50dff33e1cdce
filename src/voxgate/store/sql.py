"""SQLAlchemy 2 async implementation for SQLite (embedded, WAL) and Postgres (scale-out)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Table, and_, delete, event, func, insert, select, update
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from voxgate.domain.errors import Conflict
from voxgate.domain.records import (
    ApiKey,
    Assistant,
    AuditEvent,
    Connection,
    Credential,
    CredentialStatus,
    Page,
    SigningKey,
)
from voxgate.store import schema
from voxgate.store.base import ConnectionFilter, CredentialFilter
from voxgate.store.deployment import DeploymentRows
from voxgate.store.migrate import check_current, ensure_current
from voxgate.store.reports import CallReportRows
from voxgate.store.tokens import RevokedTokenRows
from voxgate.store.trunks import TrunkRows
from voxgate.store.urls import check_database_url, engine_error

__all__ = ["SqlStore", "open_store"]

R = TypeVar("R")


def _row_to(cls: type[R], row: Row[Any]) -> R:
    data = row._mapping
    return cls(**{f.name: data[f.name] for f in fields(cls)})  # type: ignore[arg-type]


def _values(record: object) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}  # type: ignore[arg-type]


async def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """Backend chosen by URL scheme; migrations run before the store is handed out."""
    parsed = check_database_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if not is_sqlite:
        # pre-ping: a pooled connection to a primary that went away (switchover, restart) is
        # replaced on checkout, so a node follows a promoted standby without a restart.
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True, pool_timeout=5)
    try:
        engine = create_async_engine(parsed, **kwargs)
    except ArgumentError as exc:
        raise engine_error(exc) from None
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if parsed.database and parsed.database != ":memory:":  # VOXGATE_HOME on first start
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    async with engine.begin() as conn:
        await conn.run_sync(ensure_current if migrate else check_current)
    return SqlStore(engine)


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL + NORMAL: a committed transaction survives a crash of the process (kill -9); only an
    # OS crash or power loss can drop the last moments, which FULL would trade throughput for.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    # The audit table grows by a few rows per login; a 2 MB page cache (the default) made its
    # index inserts read pages back from the OS during a reconnect storm.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


_AUDIT_COLUMNS = "INSERT INTO audit_events (id, credential_id, kind, at, details) VALUES "
# A batch whose commit was sent but never confirmed (the primary died in between) is retried;
# its rows keep their ids, so the second attempt skips what the first one did store.
_AUDIT_AGAIN = " ON CONFLICT (id) DO NOTHING"
_AUDIT_INSERT = {  # by the driver's placeholder style (aiosqlite: qmark; asyncpg: numeric_dollar)
    "qmark": _AUDIT_COLUMNS + "(?, ?, ?, ?, ?)" + _AUDIT_AGAIN,
    "numeric_dollar": _AUDIT_COLUMNS + "($1, $2, $3, $4, $5)" + _AUDIT_AGAIN,
    "format": _AUDIT_COLUMNS + "(%s, %s, %s, %s, %s)" + _AUDIT_AGAIN,
}


class SqlStore(CallReportRows, RevokedTokenRows, DeploymentRows, TrunkRows):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._audit_insert = _AUDIT_INSERT[engine.dialect.paramstyle]
        # SQLite has one writer at a time and makes the others wait in its busy handler, which
        # sleeps in steps of up to 100 ms: the revocation latency tail (``make bench``). Our own
        # writers queue here instead and take the lock the moment it is free.
        self._one_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        async with self._one_writer or contextlib.nullcontext(), self.engine.begin() as db:
            yield db

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    # -- helpers ---------------------------------------------------------------------------
    async def _insert(self, table: Table, record: object) -> None:
        try:
            async with self._begin() as conn:
                await conn.execute(insert(table).values(**_values(record)))
        except IntegrityError:
            raise Conflict("a resource with the same unique value already exists") from None

    async def _one(self, cls: type[R], table: Table, cond: ColumnElement[bool]) -> R | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(table).where(cond))).first()
        return _row_to(cls, row) if row else None

    async def _page(
        self,
        cls: type[R],
        table: Table,
        conds: list[ColumnElement[bool]],
        order: list[Any],
        number: int,
        size: int,
    ) -> Page[R]:
        where = and_(*conds) if conds else None
        count_q = select(func.count()).select_from(table)
        rows_q = select(table).order_by(*order).limit(size).offset((number - 1) * size)
        if where is not None:
            count_q, rows_q = count_q.where(where), rows_q.where(where)
        async with self.engine.connect() as conn:
            total = int((await conn.execute(count_q)).scalar_one())
            rows = (await conn.execute(rows_q)).all()
        return Page([_row_to(cls, r) for r in rows], total, number, size)

    async def _update(
        self, conn: AsyncConnection, table: Table, key: Any, changes: dict[str, Any]
    ) -> Row[Any] | None:
        if changes:
            await conn.execute(update(table).where(key).values(**changes))
        return (await conn.execute(select(table).where(key))).first()

    # -- api keys --------------------------------------------------------------------------
    async def add_api_key(self, key: ApiKey) -> None:
        await self._insert(schema.api_keys, key)

    async def api_key_by_digest(self, digest: str) -> ApiKey | None:
        t = schema.api_keys
        return await self._one(ApiKey, t, and_(t.c.digest == digest, t.c.revoked_at.is_(None)))

    async def revoke_api_key(self, key_id: str, at: datetime) -> ApiKey | None:
        t = schema.api_keys
        async with self._begin() as db:
            live = and_(t.c.id == key_id, t.c.revoked_at.is_(None))
            done = await db.execute(update(t).where(live).values(revoked_at=at))
            row = (await db.execute(select(t).where(t.c.id == key_id))).first()
        return _row_to(ApiKey, row) if row and done.rowcount else None

    async def touch_api_key(self, key_id: str, at: datetime) -> None:
        t = schema.api_keys
        async with self._begin() as db:
            await db.execute(update(t).where(t.c.id == key_id).values(last_used_at=at))

    async def list_api_keys(self) -> list[ApiKey]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(schema.api_keys))).all()
        return [_row_to(ApiKey, r) for r in rows]

    # -- connections -----------------------------------------------------------------------
    async def add_connection(self, conn: Connection) -> None:
        values = _values(conn) | {"user_name_key": conn.user_name.lower()}
        try:
            async with self._begin() as db:
                await db.execute(insert(schema.connections).values(**values))
        except IntegrityError:
            raise Conflict("user_name is already taken", pointer="/user_name") from None

    async def get_connection(self, conn_id: str) -> Connection | None:
        return await self._one(Connection, schema.connections, schema.connections.c.id == conn_id)

    async def connection_by_user_name(self, user_name: str) -> Connection | None:
        t = schema.connections
        return await self._one(Connection, t, t.c.user_name_key == user_name.lower())

    async def list_connections(
        self, flt: ConnectionFilter, number: int, size: int
    ) -> Page[Connection]:
        t = schema.connections
        conds: list[ColumnElement[bool]] = []
        if flt.name_contains:
            conds.append(func.lower(t.c.connection_name).contains(flt.name_contains.lower()))
        column = t.c[flt.sort.lstrip("-")]
        order = [column.desc() if flt.sort.startswith("-") else column.asc(), t.c.id.asc()]
        if flt.outbound_voice_profile_id is None:
            return await self._page(Connection, t, conds, order, number, size)
        # Nested JSON filter: rare, so filter in Python over the name-filtered set.
        everything = await self._page(Connection, t, conds, order, 1, 1_000_000)
        wanted = [
            c
            for c in everything.items
            if str((c.settings.get("outbound") or {}).get("outbound_voice_profile_id"))
            == flt.outbound_voice_profile_id
        ]
        start = (number - 1) * size
        return Page(wanted[start : start + size], len(wanted), number, size)

    async def update_connection(self, conn_id: str, **changes: Any) -> Connection | None:
        if "user_name" in changes:
            changes["user_name_key"] = changes["user_name"].lower()
        t = schema.connections
        try:
            async with self._begin() as db:
                row = await self._update(db, t, t.c.id == conn_id, changes)
        except IntegrityError:
            raise Conflict("user_name is already taken", pointer="/user_name") from None
        return _row_to(Connection, row) if row else None

    async def delete_connection(self, conn_id: str) -> Connection | None:
        t = schema.connections
        async with self._begin() as db:
            row = (await db.execute(select(t).where(t.c.id == conn_id))).first()
            if row is None:
                return None
            await db.execute(
                delete(schema.credentials).where(schema.credentials.c.connection_id == conn_id)
            )
            await db.execute(delete(t).where(t.c.id == conn_id))
        return _row_to(Connection, row)

    # -- credentials -----------------------------------------------------------------------
    async def add_credential(self, cred: Credential) -> None:
        await self._insert(schema.credentials, cred)

    async def get_credential(self, cred_id: str) -> Credential | None:
        return await self._one(Credential, schema.credentials, schema.credentials.c.id == cred_id)

    async def credential_by_sip_username(self, sip_username: str) -> Credential | None:
        t = schema.credentials
        return await self._one(Credential, t, t.c.sip_username == sip_username)

    async def list_credentials(
        self, flt: CredentialFilter, number: int, size: int
    ) -> Page[Credential]:
        t = schema.credentials
        conds: list[ColumnElement[bool]] = []
        for column, value in (
            (t.c.tag, flt.tag),
            (t.c.name, flt.name),
            (t.c.connection_id, flt.connection_id),
            (t.c.sip_username, flt.sip_username),
        ):
            if value is not None:
                conds.append(column == value)
        if flt.status is not None:
            conds.append(self._status_condition(flt.status, flt.now))
        return await self._page(
            Credential, t, conds, [t.c.created_at.desc(), t.c.id.asc()], number, size
        )

    @staticmethod
    def _status_condition(status: str, now: datetime | None) -> ColumnElement[bool]:
        t = schema.credentials
        if now is None:
            return t.c.status == status
        not_expired = and_(t.c.status != CredentialStatus.EXPIRED, t.c.expires_at > now)
        if status == CredentialStatus.EXPIRED:
            return ~not_expired
        return and_(t.c.status == status, not_expired)

    async def credential_ids_of_connection(self, conn_id: str) -> list[str]:
        t = schema.credentials
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t.c.id).where(t.c.connection_id == conn_id))).all()
        return [r[0] for r in rows]

    async def update_credential(self, cred_id: str, **changes: Any) -> Credential | None:
        t = schema.credentials
        async with self._begin() as db:
            row = await self._update(db, t, t.c.id == cred_id, changes)
        return _row_to(Credential, row) if row else None

    async def delete_credential(self, cred_id: str) -> Credential | None:
        t = schema.credentials
        async with self._begin() as db:
            row = (await db.execute(select(t).where(t.c.id == cred_id))).first()
            if row is not None:
                await db.execute(delete(t).where(t.c.id == cred_id))
        return _row_to(Credential, row) if row else None

    async def expire_credentials(self, now: datetime) -> list[str]:
        """Marks credentials whose ``expires_at`` passed; returns the ids that just expired."""
        t = schema.credentials
        due = and_(t.c.status != CredentialStatus.EXPIRED, t.c.expires_at <= now)
        async with self._begin() as db:
            ids = [r[0] for r in (await db.execute(select(t.c.id).where(due))).all()]
            if ids:
                await db.execute(
                    update(t)
                    .where(t.c.id.in_(ids))
                    .values(status=CredentialStatus.EXPIRED, updated_at=now)
                )
        return ids

    # -- signing keys ----------------------------------------------------------------------
    async def add_signing_key(self, key: SigningKey) -> None:
        t = schema.signing_keys
        async with self._begin() as db:
            await db.execute(
                insert(t).values(
                    kid=key.kid,
                    sealed_secret=key.secret,
                    created_at=key.created_at,
                    retired_at=key.retired_at,
                )
            )

    async def list_signing_keys(self) -> list[SigningKey]:
        t = schema.signing_keys
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(t).order_by(t.c.created_at))).all()
        return [SigningKey(r.kid, bytes(r.sealed_secret), r.created_at, r.retired_at) for r in rows]

    async def retire_signing_key(self, kid: str, at: datetime) -> bool:
        t = schema.signing_keys
        async with self._begin() as db:
            res = await db.execute(
                update(t)
                .where(and_(t.c.kid == kid, t.c.retired_at.is_(None)))
                .values(retired_at=at)
            )
        return bool(res.rowcount)

    # -- audit -----------------------------------------------------------------------------
    async def add_audit(self, event: AuditEvent) -> None:
        await self._insert(schema.audit_events, event)

    async def add_audits(self, events: list[AuditEvent]) -> None:
        """One driver-level ``executemany``: every login writes audit rows, and SQLAlchemy's
        per-row parameter processing cost more than the insert (``make bench`` profile).
        Idempotent: rows already stored (same id) are skipped, so a failed batch can be retried."""
        if not events:
            return
        rows = [
            (e.id, e.credential_id, e.kind, e.at.timestamp(), json.dumps(e.details)) for e in events
        ]
        async with self._begin() as db:
            await db.exec_driver_sql(self._audit_insert, rows)

    async def list_audit(self, credential_id: str, number: int, size: int) -> Page[AuditEvent]:
        t = schema.audit_events
        return await self._page(
            AuditEvent,
            t,
            [t.c.credential_id == credential_id],
            [t.c.at.desc(), t.c.id],
            number,
            size,
        )

    # -- assistants ------------------------------------------------------------------------
    async def add_assistant(self, assistant: Assistant) -> None:
        await self._insert(schema.assistants, assistant)

    async def get_assistant(self, assistant_id: str) -> Assistant | None:
        return await self._one(Assistant, schema.assistants, schema.assistants.c.id == assistant_id)

    async def list_assistants(self, number: int, size: int) -> Page[Assistant]:
        t = schema.assistants
        return await self._page(Assistant, t, [], [t.c.created_at.desc(), t.c.id], number, size)

    async def delete_assistant(self, assistant_id: str) -> Assistant | None:
        t = schema.assistants
        async with self._begin() as db:
            row = (await db.execute(select(t).where(t.c.id == assistant_id))).first()
            if row is not None:
                await db.execute(delete(t).where(t.c.id == assistant_id))
        return _row_to(Assistant, row) if row else None
