"""Initial schema: api keys, connections, credentials, signing keys, audit, assistants.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

T = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", T, nullable=False),
        sa.Column("revoked_at", T, nullable=True),
    )
    op.create_table(
        "credential_connections",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("connection_name", sa.String(255), nullable=False),
        sa.Column("user_name", sa.String(64), nullable=False),
        sa.Column("user_name_key", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", T, nullable=False),
        sa.Column("updated_at", T, nullable=False),
    )
    op.create_index("ix_connections_created_at", "credential_connections", ["created_at"])
    op.create_index("ix_connections_name", "credential_connections", ["connection_name"])
    op.create_table(
        "telephony_credentials",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "connection_id",
            sa.String(24),
            sa.ForeignKey("credential_connections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(255), nullable=True),
        sa.Column("sip_username", sa.String(64), nullable=False, unique=True),
        sa.Column("sip_password_hash", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", T, nullable=False),
        sa.Column("tokens_valid_after", T, nullable=False),
        sa.Column("created_at", T, nullable=False),
        sa.Column("updated_at", T, nullable=False),
    )
    for name, cols in {
        "ix_credentials_connection": ["connection_id"],
        "ix_credentials_tag": ["tag"],
        "ix_credentials_name": ["name"],
        "ix_credentials_status": ["status"],
        "ix_credentials_created_at": ["created_at"],
    }.items():
        op.create_index(name, "telephony_credentials", cols)
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("sealed_secret", sa.LargeBinary, nullable=False),
        sa.Column("created_at", T, nullable=False),
        sa.Column("retired_at", T, nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("credential_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", T, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_credential_at", "audit_events", ["credential_id", "at"])
    op.create_table(
        "assistants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("created_at", T, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "assistants",
        "audit_events",
        "signing_keys",
        "telephony_credentials",
        "credential_connections",
        "api_keys",
    ):
        op.drop_table(table)
