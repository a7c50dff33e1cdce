"""Sealed SIP digest secrets (HA1 per algorithm, one realm) next to the argon2 hashes, and the
deployment's facts (the SIP realm those HA1s are computed under).

Rows written before this revision have none: such a credential registers over SIP once its
password is set again (``actions/reset_password``) or after its next WebRTC password login.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployment",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(1024), nullable=False),
    )
    with op.batch_alter_table("telephony_credentials") as batch:
        batch.add_column(sa.Column("sip_digest", sa.LargeBinary, nullable=True))
    with op.batch_alter_table("credential_connections") as batch:
        batch.add_column(sa.Column("digest", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    op.drop_table("deployment")
    with op.batch_alter_table("credential_connections") as batch:
        batch.drop_column("digest")
    with op.batch_alter_table("telephony_credentials") as batch:
        batch.drop_column("sip_digest")
