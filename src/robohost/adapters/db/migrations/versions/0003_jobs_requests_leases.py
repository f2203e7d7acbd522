"""Hands-free operation: job history, requests from people, and who holds each robot's lease.

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

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OUTCOMES = "'running', 'ok', 'failed', 'retrying', 'missed', 'skipped', 'stopped', 'interrupted'"
_TRIGGERS = "'schedule', 'late', 'manual', 'startup'"


def upgrade() -> None:
    """Create ``jobs``, ``requests`` and ``leases``."""
    op.create_table(
        "jobs",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("job", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("planned_at", sa.BigInteger(), nullable=True),
        sa.Column("until", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("runner", sa.Text(), nullable=True),
        sa.CheckConstraint(f"outcome IN ({_OUTCOMES})", name="ck_jobs_outcome"),
        sa.CheckConstraint(f"trigger IN ({_TRIGGERS})", name="ck_jobs_trigger"),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("key", name="jobs_key_key"),
    )
    op.create_index("ix_jobs_robot_planned", "jobs", ["robot", "planned_at"])
    op.create_table(
        "requests",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("job", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("handled_at", sa.BigInteger(), nullable=True),
        sa.Column("handled_by", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.CheckConstraint("action IN ('run', 'stop', 'job')", name="ck_requests_action"),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
    )
    op.create_index("ix_requests_robot_pending", "requests", ["robot", "handled_at"])
    op.create_table(
        "leases",
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("acquired_at", sa.BigInteger(), nullable=False),
        sa.Column("heartbeat_at", sa.BigInteger(), nullable=False),
        sa.Column("released_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("robot", name="pk_leases"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("leases")
    op.drop_index("ix_requests_robot_pending", table_name="requests")
    op.drop_table("requests")
    op.drop_index("ix_jobs_robot_planned", table_name="jobs")
    op.drop_table("jobs")
