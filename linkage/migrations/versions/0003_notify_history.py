"""Notify by source time: the links newer versions replaced, and which changes consumers were told of.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "link_history",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("entity_key", sa.String(64), nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("party_kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.String(32), nullable=False),
        sa.Column("valid_from_ms", sa.BigInteger, nullable=False),
        sa.Column("valid_to_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_link_history_party", "link_history", ["party_kind", "party_id"])
    op.create_table(
        "notified",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("party_id", sa.String(32), primary_key=True),
        sa.Column("notified_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notified")
    op.drop_table("link_history")
