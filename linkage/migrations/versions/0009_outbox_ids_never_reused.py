"""Notify-outbox ids never used twice on SQLite (AUTOINCREMENT): forgetting a sent notice by id
must not drop a newer one queued under a reused id.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # PostgreSQL's sequences never reuse an id
        with op.batch_alter_table("notify_outbox", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("notify_outbox", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
            pass
