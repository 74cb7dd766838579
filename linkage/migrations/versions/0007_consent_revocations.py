"""Final revocations: every revoked consent id, so a later grant under it is ignored.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_revocations",
        sa.Column("consent_id", sa.String(64), primary_key=True),
        sa.Column("revoked_ms", sa.BigInteger, nullable=False),
        sa.Column("applied_ms", sa.BigInteger, nullable=False),
    )
    op.execute(
        "INSERT INTO consent_revocations (consent_id, revoked_ms, applied_ms) "
        "SELECT consent_id, revoked_ms, applied_ms FROM consents WHERE revoked_ms IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("consent_revocations")
