"""Retention: the times by which a worker prunes what the index needs only for a while.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_processed_events_ms", "processed_events", "processed_ms"),
    ("ix_version_gaps_ms", "version_gaps", "recorded_ms"),
    ("ix_link_history_to", "link_history", "valid_to_ms"),
    ("ix_notified_ms", "notified", "notified_ms"),
)


def upgrade() -> None:
    for name, table, column in _INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
