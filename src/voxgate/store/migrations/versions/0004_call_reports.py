"""The SDK's call reports, kept per call leg for the retention period.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_reports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("credential_id", sa.String(36), nullable=True),
        sa.Column("connection_id", sa.String(24), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("final", sa.Boolean, nullable=False),
        sa.Column("segment", sa.Integer, nullable=True),
        sa.Column("received_at", sa.Float(precision=53), nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
    )
    op.create_index("ix_call_reports_call", "call_reports", ["call_id", "received_at"])
    op.create_index("ix_call_reports_credential", "call_reports", ["credential_id", "received_at"])
    op.create_index("ix_call_reports_received", "call_reports", ["received_at"])


def downgrade() -> None:
    op.drop_table("call_reports")
