"""Registration policy per credential, and tokens revoked one by one (token reuse).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

T = sa.Float(precision=53)


def upgrade() -> None:
    with op.batch_alter_table("telephony_credentials") as batch:
        batch.add_column(sa.Column("registration_policy", sa.String(16), nullable=True))
        batch.add_column(sa.Column("max_registrations", sa.Integer, nullable=True))
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("credential_id", sa.String(36), nullable=False),
        sa.Column("expires_at", T, nullable=False),
        sa.Column("revoked_at", T, nullable=False),
    )
    op.create_index("ix_revoked_tokens_expires_at", "revoked_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_tokens_expires_at", "revoked_tokens")
    op.drop_table("revoked_tokens")
    with op.batch_alter_table("telephony_credentials") as batch:
        batch.drop_column("max_registrations")
        batch.drop_column("registration_policy")
