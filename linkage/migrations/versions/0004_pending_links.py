"""Pending links kept as they change: `pending_links`, filled once from the links held now.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
_BACKFILL = (
    "INSERT INTO pending_links (link_id, dataset, entity_key, party_kind, party_id, linked_ms) "
    "SELECT l.id, l.dataset, l.entity_key, l.party_kind, l.party_id, l.linked_ms FROM links l "
    "WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.dataset = CASE l.party_kind "
    "WHEN 'citizen' THEN 'dopa.person' WHEN 'house' THEN 'dopa.house' WHEN 'juristic' THEN 'dbd.juristic-person' END "
    "AND r.entity_key = l.party_id AND NOT r.deleted)"
)


def upgrade() -> None:
    op.create_table(
        "pending_links",
        sa.Column("link_id", _ID, primary_key=True, autoincrement=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("entity_key", sa.String(64), nullable=False),
        sa.Column("party_kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.String(32), nullable=False),
        sa.Column("linked_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_pending_links_record", "pending_links", ["dataset", "entity_key"])
    op.create_index("ix_pending_links_party", "pending_links", ["party_kind", "party_id"])
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_table("pending_links")
