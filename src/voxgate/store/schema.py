"""Tables. Times are stored as epoch seconds (float) so SQLite and Postgres compare them alike."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
)

from voxgate.domain.timeutil import from_epoch

__all__ = [
    "api_keys",
    "assistants",
    "audit_events",
    "call_reports",
    "connections",
    "credentials",
    "deployment",
    "metadata",
    "phone_numbers",
    "revoked_tokens",
    "signing_keys",
    "trunks",
]


class Instant(TypeDecorator[datetime]):
    impl = Float(precision=53)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> float | None:
        return None if value is None else value.timestamp()

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_epoch(float(value))


metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("label", String(200), nullable=False),
    Column("digest", String(64), nullable=False, unique=True),
    Column("created_at", Instant, nullable=False),
    Column("revoked_at", Instant, nullable=True),
    Column("scope", String(16), nullable=False, server_default="admin"),
    Column("prefix", String(16), nullable=False, server_default=""),
    Column("last_used_at", Instant, nullable=True),
)

connections = Table(
    "credential_connections",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("connection_name", String(255), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("user_name_key", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("settings", JSON, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("digest", LargeBinary, nullable=True),  # sealed HA1s (auth/digest.py)
    Index("ix_connections_created_at", "created_at"),
    Index("ix_connections_name", "connection_name"),
)

credentials = Table(
    "telephony_credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "connection_id",
        String(24),
        ForeignKey("credential_connections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(255), nullable=False),
    Column("tag", String(255), nullable=True),
    Column("sip_username", String(64), nullable=False, unique=True),
    Column("sip_password_hash", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("tokens_valid_after", Instant, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Column("registration_policy", String(16), nullable=True),
    Column("max_registrations", Integer, nullable=True),
    Column("sip_digest", LargeBinary, nullable=True),  # sealed HA1s (auth/digest.py)
    Index("ix_credentials_connection", "connection_id"),
    Index("ix_credentials_tag", "tag"),
    Index("ix_credentials_name", "name"),
    Index("ix_credentials_status", "status"),
    Index("ix_credentials_created_at", "created_at"),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("sealed_secret", LargeBinary, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("retired_at", Instant, nullable=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("credential_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", Instant, nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_audit_credential_at", "credential_id", "at"),
)

assistants = Table(
    "assistants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("settings", JSON, nullable=False),
    Column("created_at", Instant, nullable=False),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("credential_id", String(36), nullable=False),
    Column("expires_at", Instant, nullable=False),
    Column("revoked_at", Instant, nullable=False),
    Index("ix_revoked_tokens_expires_at", "expires_at"),
)

call_reports = Table(
    "call_reports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("call_id", String(64), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("credential_id", String(36), nullable=True),
    Column("connection_id", String(24), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("final", Boolean, nullable=False),
    Column("segment", Integer, nullable=True),
    Column("received_at", Instant, nullable=False),
    Column("body", JSON, nullable=False),
    Index("ix_call_reports_call", "call_id", "received_at"),
    Index("ix_call_reports_credential", "credential_id", "received_at"),
    Index("ix_call_reports_received", "received_at"),
)

trunks = Table(
    "sip_trunks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("host", String(253), nullable=False),
    Column("port", Integer, nullable=False),
    Column("transport", String(8), nullable=False),
    Column("username", String(128), nullable=True),
    Column("secret", LargeBinary, nullable=True),  # the sealed password (services/trunks.py)
    Column("caller_id", String(16), nullable=True),
    Column("register", Boolean, nullable=False),
    Column("source_addresses", JSON, nullable=False),
    Column("concurrent_call_limit", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_sip_trunks_created_at", "created_at"),
)

phone_numbers = Table(
    "phone_numbers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("phone_number", String(16), nullable=False, unique=True),  # E.164
    Column(
        "connection_id",
        String(24),
        ForeignKey("credential_connections.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "credential_id",
        String(36),
        ForeignKey("telephony_credentials.id", ondelete="CASCADE"),
        nullable=True,
    ),
    Column("trunk_id", String(36), ForeignKey("sip_trunks.id", ondelete="SET NULL"), nullable=True),
    Column("created_at", Instant, nullable=False),
    Column("updated_at", Instant, nullable=False),
    Index("ix_phone_numbers_connection", "connection_id"),
    Index("ix_phone_numbers_credential", "credential_id"),
    Index("ix_phone_numbers_trunk", "trunk_id"),
    Index("ix_phone_numbers_created_at", "created_at"),
)

deployment = Table(
    "deployment",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(1024), nullable=False),
)
