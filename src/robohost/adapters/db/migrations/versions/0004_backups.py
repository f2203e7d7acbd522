"""Backups: the history of every backup, its targets and its last verification.

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

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``backups``."""
    op.create_table(
        "backups",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.Text(), nullable=True),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("max_stall_ms", sa.Double(), nullable=True),
        sa.Column("verified_at", sa.BigInteger(), nullable=True),
        sa.Column("verify_outcome", sa.Text(), nullable=True),
        sa.Column("verify_detail", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('running', 'ok', 'partial', 'failed', 'interrupted')", name="ck_backups_outcome"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_backups"),
        sa.UniqueConstraint("file_name", name="backups_file_name_key"),
    )
    op.create_index("ix_backups_label_started", "backups", ["label", "started_at"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_backups_label_started", table_name="backups")
    op.drop_table("backups")
