"""The first linkage index: records, links, processed events, version gaps, notify outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("dataset", sa.String(64), primary_key=True),
        sa.Column("entity_key", sa.String(64), primary_key=True),
        sa.Column("agency", sa.String(8), nullable=False),
        sa.Column("dataset_code", sa.Integer, nullable=False),
        sa.Column("entity_version", sa.BigInteger, nullable=False),
        sa.Column("change_type", sa.String(8), nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("source_ms", sa.BigInteger, nullable=False),
        sa.Column("published_ms", sa.BigInteger, nullable=False),
        sa.Column("applied_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "links",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("entity_key", sa.String(64), nullable=False),
        sa.Column("relation", sa.String(32), nullable=False),
        sa.Column("party_kind", sa.String(16), nullable=False),
        sa.Column("party_id", sa.String(32), nullable=False),
        sa.Column("share", sa.String(32), nullable=True),
        sa.Column("linked_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_links_party", "links", ["party_kind", "party_id"])
    op.create_index("ix_links_record", "links", ["dataset", "entity_key"])
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("processed_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "version_gaps",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("entity_key", sa.String(64), nullable=False),
        sa.Column("held_version", sa.BigInteger, nullable=True),
        sa.Column("applied_version", sa.BigInteger, nullable=False),
        sa.Column("recorded_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notify_outbox",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("message_key", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("notify_outbox", "version_gaps", "processed_events", "links", "records"):
        op.drop_table(table)
