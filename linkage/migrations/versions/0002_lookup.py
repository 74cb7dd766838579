"""The lookup service: consents applied from gdx.consent.v1, and the data subjects' access log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.String(64), primary_key=True),
        sa.Column("subject_id", sa.String(13), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("datasets", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("granted_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger, nullable=True),
        sa.Column("used_ms", sa.BigInteger, nullable=True),
        sa.Column("applied_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_consents_subject", "consents", ["subject_id", "consumer", "purpose"])
    op.create_table(
        "access_log",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.String(13), nullable=False),
        sa.Column("request_id", sa.String(36), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("datasets", sa.Text, nullable=False),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("audit_partition", sa.Integer, nullable=False),
        sa.Column("audit_offset", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_access_log_subject", "access_log", ["subject_id", "time_ms"])


def downgrade() -> None:
    op.drop_table("access_log")
    op.drop_table("consents")
