"""The phone network: SIP trunks (carriers' peers, their passwords sealed) and the numbers
voxgate holds, each assigned to a credential connection (and optionally one credential).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

T = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "sip_trunks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("username", sa.String(128), nullable=True),
        sa.Column("secret", sa.LargeBinary, nullable=True),
        sa.Column("caller_id", sa.String(16), nullable=True),
        sa.Column("register", sa.Boolean, nullable=False),
        sa.Column("source_addresses", sa.JSON, nullable=False),
        sa.Column("concurrent_call_limit", sa.Integer, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", T, nullable=False),
        sa.Column("updated_at", T, nullable=False),
    )
    op.create_index("ix_sip_trunks_created_at", "sip_trunks", ["created_at"])
    op.create_table(
        "phone_numbers",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("phone_number", sa.String(16), nullable=False, unique=True),
        sa.Column(
            "connection_id",
            sa.String(24),
            sa.ForeignKey("credential_connections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "credential_id",
            sa.String(36),
            sa.ForeignKey("telephony_credentials.id", ondelete="CASCADE"),
            nullable=True,
        ),
        sa.Column(
            "trunk_id",
            sa.String(36),
            sa.ForeignKey("sip_trunks.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("created_at", T, nullable=False),
        sa.Column("updated_at", T, nullable=False),
    )
    for name, column in (
        ("ix_phone_numbers_connection", "connection_id"),
        ("ix_phone_numbers_credential", "credential_id"),
        ("ix_phone_numbers_trunk", "trunk_id"),
        ("ix_phone_numbers_created_at", "created_at"),
    ):
        op.create_index(name, "phone_numbers", [column])


def downgrade() -> None:
    op.drop_table("phone_numbers")
    op.drop_table("sip_trunks")
