"""Create the first schema: runs, orders, fills, positions, equity, risk, rejected data, journal, state.

Revision ID: 0001
Revises:
Create Date: 2025-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(28, 10).with_variant(sa.Text(), "sqlite")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TABLES = (
    "robot_state",
    "checkpoints",
    "journal",
    "rejected_data",
    "risk_events",
    "equity_points",
    "positions",
    "fills",
    "orders",
    "runs",
)


def _fk_run(table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=f"fk_{table}_run_id_runs", ondelete=ondelete)


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "runs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("mode", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("starting_cash", MONEY, nullable=False),
        sa.Column("strategy", sa.Text(), nullable=False),
        sa.Column("feed_signature", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_ts", sa.BigInteger(), nullable=True),
        sa.Column("events_processed", sa.BigInteger(), nullable=False),
        sa.Column("rejected_count", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'halted', 'failed', 'abandoned')", name="ck_runs_status"
        ),
    )
    op.create_index("ix_runs_robot_started_at", "runs", ["robot", "started_at"])

    op.create_table(
        "orders",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("qty", sa.Double(), nullable=False),
        sa.Column("limit_price", sa.Double(), nullable=True),
        sa.Column("stop_price", sa.Double(), nullable=True),
        sa.Column("tif", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("filled_qty", sa.Double(), nullable=False),
        sa.Column("avg_fill_price", sa.Double(), nullable=True),
        sa.Column("fees", MONEY, nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.Column("parent_id", sa.Text(), nullable=True),
        sa.Column("oco_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
        _fk_run("orders"),
    )
    op.create_index("ix_orders_run_id", "orders", ["run_id"])
    op.create_index("ix_orders_robot", "orders", ["robot"])

    op.create_table(
        "fills",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("side", sa.Text(), nullable=False),
        sa.Column("qty", sa.Double(), nullable=False),
        sa.Column("price", sa.Double(), nullable=False),
        sa.Column("fee", MONEY, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("liquidity", sa.Text(), nullable=False),
        sa.Column("tier", sa.Text(), nullable=False),
        sa.Column("ambiguous", sa.Boolean(), nullable=False),
        sa.Column("realized_pnl", MONEY, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fills"),
        _fk_run("fills"),
    )
    op.create_index("ix_fills_run_id", "fills", ["run_id"])
    op.create_index("ix_fills_robot", "fills", ["robot"])

    op.create_table(
        "positions",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("qty", MONEY, nullable=False),
        sa.Column("avg_price", MONEY, nullable=False),
        sa.Column("realized_pnl", MONEY, nullable=False),
        sa.Column("last_price", sa.Double(), nullable=False),
        sa.Column("updated_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "symbol", name="pk_positions"),
        _fk_run("positions"),
    )

    op.create_table(
        "equity_points",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("equity", sa.Double(), nullable=False),
        sa.Column("cash", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "ts", name="pk_equity_points"),
        _fk_run("equity_points"),
        sqlite_with_rowid=False,
    )

    op.create_table(
        "risk_events",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("order_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_risk_events"),
        _fk_run("risk_events"),
    )
    op.create_index("ix_risk_events_run_id", "risk_events", ["run_id"])

    op.create_table(
        "rejected_data",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_data"),
        _fk_run("rejected_data"),
    )
    op.create_index("ix_rejected_data_run_id", "rejected_data", ["run_id"])

    op.create_table(
        "journal",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_journal"),
        _fk_run("journal"),
    )
    op.create_index("ix_journal_run_id", "journal", ["run_id"])

    op.create_table(
        "checkpoints",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("events_processed", sa.BigInteger(), nullable=False),
        sa.Column("rejected_count", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_checkpoints"),
        _fk_run("checkpoints"),
    )

    op.create_table(
        "robot_state",
        sa.Column("robot", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_id", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("robot", name="pk_robot_state"),
        _fk_run("robot_state", ondelete="SET NULL"),
        sa.CheckConstraint("status IN ('idle', 'running', 'halted')", name="ck_robot_state_status"),
    )


def downgrade() -> None:
    """Drop every table (and its data)."""
    for table in TABLES:
        op.drop_table(table)
