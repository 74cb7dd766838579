"""No table of every event id seen: a re-delivery is recognised by its record's event id and version.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_processed_events_ms", table_name="processed_events")
    op.drop_table("processed_events")


def downgrade() -> None:
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("processed_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_processed_events_ms", "processed_events", ["processed_ms"])
