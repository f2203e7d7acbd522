"""The trading database schema as SQLAlchemy Core tables (the Alembic revisions must match it).

Timestamps are BIGINT nanoseconds since the epoch, UTC. Money and position quantities use ``Money``:
NUMERIC(28, 10) on PostgreSQL and decimal text on SQLite, so Decimals come back exactly on both
(rounded half away from zero to 10 places, as PostgreSQL does). Prices and order quantities are
floats. Column names equal the field names of ``robohost.engine.records``. Must not import
``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_PRECISION = 28
MONEY_SCALE = 10
RUN_STATUSES = ("running", "completed", "halted", "failed", "abandoned")
ROBOT_STATUSES = ("idle", "running", "halted", "degraded")

_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_MONEY_CONTEXT = Context(prec=MONEY_PRECISION, rounding=ROUND_HALF_UP, traps=[InvalidOperation])


class Money(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC(28, 10) on PostgreSQL, text on SQLite (which has no exact decimals)."""

    impl = sa.Numeric(MONEY_PRECISION, MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """Use text on SQLite, NUMERIC elsewhere."""
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(MONEY_PRECISION, MONEY_SCALE))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Round to the column's scale and render as plain decimal text on SQLite."""
        if value is None or dialect.name != "sqlite":
            return value
        try:
            return format(Decimal(value).quantize(_QUANTUM, context=_MONEY_CONTEXT), "f")
        except InvalidOperation:
            raise ValueError(f"{value} does not fit NUMERIC({MONEY_PRECISION}, {MONEY_SCALE})") from None

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        """Parse the stored text back into a Decimal on SQLite."""
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(value)


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements only INTEGER keys

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _run_fk(ondelete: str = "CASCADE") -> sa.ForeignKey:
    return sa.ForeignKey("runs.id", ondelete=ondelete)


def _statuses(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("ended_at", sa.BigInteger),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("starting_cash", Money, nullable=False),
    sa.Column("strategy", sa.Text, nullable=False),
    sa.Column("feed_signature", sa.Text, nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
    sa.Column("last_ts", sa.BigInteger),
    sa.Column("events_processed", sa.BigInteger, nullable=False),
    sa.Column("rejected_count", sa.BigInteger, nullable=False),
    sa.Column("summary", sa.JSON),
    sa.CheckConstraint(f"status IN ({_statuses(RUN_STATUSES)})", name="ck_runs_status"),
    sa.Index("ix_runs_robot_started_at", "robot", "started_at"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, _run_fk(), nullable=False),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("symbol", sa.Text, nullable=False),
    sa.Column("side", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("qty", sa.Double, nullable=False),
    sa.Column("limit_price", sa.Double),
    sa.Column("stop_price", sa.Double),
    sa.Column("tif", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("filled_qty", sa.Double, nullable=False),
    sa.Column("avg_fill_price", sa.Double),
    sa.Column("fees", Money, nullable=False),
    sa.Column("created_ts", sa.BigInteger, nullable=False),
    sa.Column("updated_ts", sa.BigInteger, nullable=False),
    sa.Column("parent_id", sa.Text),
    sa.Column("oco_id", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_orders_run_id", "run_id"),
    sa.Index("ix_orders_robot", "robot"),
)

fills = sa.Table(
    "fills",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Text, _run_fk(), nullable=False),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("order_id", sa.Text, nullable=False),
    sa.Column("symbol", sa.Text, nullable=False),
    sa.Column("side", sa.Text, nullable=False),
    sa.Column("qty", sa.Double, nullable=False),
    sa.Column("price", sa.Double, nullable=False),
    sa.Column("fee", Money, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("liquidity", sa.Text, nullable=False),
    sa.Column("tier", sa.Text, nullable=False),
    sa.Column("ambiguous", sa.Boolean, nullable=False),
    sa.Column("realized_pnl", Money, nullable=False),
    sa.Index("ix_fills_run_id", "run_id"),
    sa.Index("ix_fills_robot", "robot"),
)

positions = sa.Table(
    "positions",
    metadata,
    sa.Column("run_id", sa.Text, _run_fk(), primary_key=True),
    sa.Column("symbol", sa.Text, primary_key=True),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("qty", Money, nullable=False),
    sa.Column("avg_price", Money, nullable=False),
    sa.Column("realized_pnl", Money, nullable=False),
    sa.Column("last_price", sa.Double, nullable=False),
    sa.Column("updated_ts", sa.BigInteger, nullable=False),
)

equity_points = sa.Table(
    "equity_points",
    metadata,
    sa.Column("run_id", sa.Text, _run_fk(), primary_key=True),
    sa.Column("ts", sa.BigInteger, primary_key=True),
    sa.Column("equity", sa.Double, nullable=False),
    sa.Column("cash", sa.Double, nullable=False),
    sqlite_with_rowid=False,
)

risk_events = sa.Table(
    "risk_events",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, _run_fk(), nullable=False),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("order_id", sa.Text),
    sa.Index("ix_risk_events_run_id", "run_id"),
)

rejected_data = sa.Table(
    "rejected_data",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, _run_fk(), nullable=False),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("symbol", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("values", sa.JSON, nullable=False),  # floats; NaN/inf as "nan"/"inf"/"-inf"
    sa.Index("ix_rejected_data_run_id", "run_id"),
)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Text, _run_fk(), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("hash", sa.Text),  # order and fill lines: the hex link of the run's hash chain (adapters/db/chain.py)
    sa.Index("ix_journal_run_id", "run_id"),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("run_id", sa.Text, _run_fk(), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("events_processed", sa.BigInteger, nullable=False),
    sa.Column("rejected_count", sa.BigInteger, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

robot_state = sa.Table(
    "robot_state",
    metadata,
    sa.Column("robot", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("run_id", sa.Text, _run_fk("SET NULL")),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.CheckConstraint(f"status IN ({_statuses(ROBOT_STATUSES)})", name="ck_robot_state_status"),
)

JOB_OUTCOMES = ("running", "ok", "failed", "retrying", "missed", "skipped", "stopped", "interrupted")
JOB_TRIGGERS = ("schedule", "late", "manual", "startup")
REQUEST_ACTIONS = ("run", "stop", "job")

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("key", sa.Text, nullable=False, unique=True),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("planned_at", sa.BigInteger),
    sa.Column("until", sa.BigInteger),
    sa.Column("started_at", sa.BigInteger),
    sa.Column("ended_at", sa.BigInteger),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("run_id", sa.Text),
    sa.Column("runner", sa.Text),
    sa.CheckConstraint(f"outcome IN ({_statuses(JOB_OUTCOMES)})", name="ck_jobs_outcome"),
    sa.CheckConstraint(f"trigger IN ({_statuses(JOB_TRIGGERS)})", name="ck_jobs_trigger"),
    sa.Index("ix_jobs_robot_planned", "robot", "planned_at"),
)
"""Job history: one row per planned or requested job (its key makes a planned job run at most once)."""

requests = sa.Table(
    "requests",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("robot", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("job", sa.Text),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("requested_at", sa.BigInteger, nullable=False),
    sa.Column("handled_at", sa.BigInteger),
    sa.Column("handled_by", sa.Text),
    sa.Column("outcome", sa.Text),
    sa.CheckConstraint(f"action IN ({_statuses(REQUEST_ACTIONS)})", name="ck_requests_action"),
    sa.Index("ix_requests_robot_pending", "robot", "handled_at"),
)
"""What people asked for (``robohost trigger``, the dashboard): handled by the robot's runner."""

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("robot", sa.Text, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("acquired_at", sa.BigInteger, nullable=False),
    sa.Column("heartbeat_at", sa.BigInteger, nullable=False),
    sa.Column("released_at", sa.BigInteger),
)
"""Who runs each robot (the lock itself is a PostgreSQL advisory lock or a file lock; this row shows it)."""

BACKUP_OUTCOMES = ("running", "ok", "partial", "failed", "interrupted")

backups = sa.Table(
    "backups",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("file_name", sa.Text, nullable=False, unique=True),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("started_at", sa.BigInteger, nullable=False),
    sa.Column("ended_at", sa.BigInteger),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger),
    sa.Column("sha256", sa.Text),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("targets", sa.JSON, nullable=False),
    sa.Column("duration_ms", sa.BigInteger),
    sa.Column("max_stall_ms", sa.Double),
    sa.Column("verified_at", sa.BigInteger),
    sa.Column("verify_outcome", sa.Text),
    sa.Column("verify_detail", sa.Text),
    sa.Column("error", sa.Text),
    sa.CheckConstraint(f"outcome IN ({_statuses(BACKUP_OUTCOMES)})", name="ck_backups_outcome"),
    sa.Index("ix_backups_label_started", "label", "started_at"),
)
"""Every backup: when, how it went, its size and SHA-256, where it was copied (``targets``: one object per
target with its outcome), how long the database was held up, and the last verification."""

TOKEN_SCOPES = ("read", "operate")

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("totp_secret", sa.Text),
    sa.Column("totp_last_step", sa.BigInteger),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_login_at", sa.BigInteger),
)
"""People who may sign in to the dashboard: argon2 password hash, optional TOTP secret (``robohost user``)."""

recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", _ID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("code_hash", sa.Text, nullable=False),
    sa.Column("used_at", sa.BigInteger),
    sa.Index("ix_recovery_codes_user_id", "user_id"),
)
"""One-time codes that stand in for a lost TOTP device: SHA-256 of each code, and when it was used."""

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.Text, primary_key=True),
    sa.Column("user_id", _ID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_seen_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("ip", sa.Text),
    sa.Column("user_agent", sa.Text),
    sa.Index("ix_web_sessions_user_id", "user_id"),
)
"""Signed-in browsers: only the SHA-256 of the session id (the cookie) is kept; idle and absolute expiry."""

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("user_id", _ID, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("token_hash", sa.Text, nullable=False, unique=True),
    sa.Column("scope", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("last_used_at", sa.BigInteger),
    sa.CheckConstraint(f"scope IN ({_statuses(TOKEN_SCOPES)})", name="ck_api_tokens_scope"),
    sa.Index("ix_api_tokens_user_id", "user_id"),
)
"""API tokens for scripts: SHA-256 of the token only, scoped ``read`` or ``operate``."""

login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("user_name", sa.Text, nullable=False),
    sa.Column("ip", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Index("ix_login_failures_user_ts", "user_name", "ts"),
    sa.Index("ix_login_failures_ip_ts", "ip", "ts"),
)
"""Failed sign-ins (``bad-password``, ``unknown-user``, ``bad-totp``, ``locked``): the lock-out policy counts them."""

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.Text),
    sa.Column("ip", sa.Text),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("robot", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Index("ix_audit_log_ts", "ts"),
)
"""Who did what through the dashboard, the API and ``robohost user``: sign-ins, failures, run, stop, resume,
downloads."""

OPEN_ORDER_STATUSES = ("pending", "working", "partially_filled")
sa.Index("ix_fills_run_ts", fills.c.run_id, fills.c.ts)
sa.Index("ix_orders_run_created", orders.c.run_id, orders.c.created_ts)
sa.Index(
    "ix_orders_open",
    orders.c.run_id,
    orders.c.created_ts,
    sqlite_where=orders.c.status.in_(OPEN_ORDER_STATUSES),
    postgresql_where=orders.c.status.in_(OPEN_ORDER_STATUSES),
)
"""The dashboard's newest fills and orders of a run, and its working orders, without reading all of them."""
