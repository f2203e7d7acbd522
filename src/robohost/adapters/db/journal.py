"""``SqlJournal``: the engine's ``Journal`` port on SQLite or PostgreSQL.

Every public method is one transaction; ``commit`` writes a whole ``Batch`` (orders, fills, positions,
equity points, risk events, rejected data, journal events, checkpoint and run progress) or nothing.
Equity points, the bulk of the data, go through the driver's ``executemany``. Database errors are not
translated: a failed commit raises the driver's error after rolling back. Must not import
``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from decimal import Decimal
from itertools import repeat
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from robohost.adapters.db import tables as t
from robohost.adapters.db.bulk import BulkWriter
from robohost.adapters.db.chain import GENESIS, chained, link
from robohost.engine.records import Batch, Checkpoint, EventRecord, RunRecord
from robohost.errors import StateError

FINISHED_STATUSES = ("completed", "halted", "failed")
_EQUITY_SQL = (
    "INSERT INTO equity_points (run_id, ts, equity, cash) VALUES ({p}, {p}, {p}, {p}) "
    "ON CONFLICT (run_id, ts) DO UPDATE SET equity = excluded.equity, cash = excluded.cash"
)


class SqlJournal:
    """Durable storage of runs in the trading database; each call is one atomic transaction."""

    def __init__(self, engine: sa.Engine) -> None:
        """Use ``engine``, whose database must already be migrated to the head revision."""
        self._engine = engine
        self._equity_sql = _EQUITY_SQL.format(p="?" if engine.dialect.name == "sqlite" else "%s")
        self._writers = _Writers(engine.dialect)
        self._heads: dict[str, bytes] = {}  # each run's last committed chain link

    def start_run(self, run: RunRecord) -> None:
        """Record a new run as running and mark its robot running."""
        row = as_row(run) | {
            "config": json_safe(run.config),
            "status": "running",
            "last_seq": -1,
            "events_processed": 0,
            "rejected_count": 0,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(t.runs.insert(), row)
                write_robot_state(conn, run.robot, "running", None, run.started_at, run_id=run.id)
        except sa.exc.IntegrityError:
            raise StateError(f"run {run.id} already exists: start the run under a new id") from None

    def commit(self, batch: Batch) -> None:
        """Write everything in ``batch`` in one transaction; on any error nothing of it is kept."""
        self.commit_all((batch,))

    def commit_all(self, batches: Sequence[Batch]) -> None:
        """Write ``batches`` in order in one transaction (a group commit): all of them or nothing.

        Only the last checkpoint of each run is written: each one replaces the one before.
        """
        w = self._writers
        checkpoints = {b.checkpoint.run_id: b.checkpoint for b in batches if b.checkpoint is not None}
        heads: dict[str, bytes] = {}  # new chain heads: kept only once the transaction has committed
        with self._engine.begin() as conn:
            for batch in batches:
                if batch.orders:
                    w.orders.write(conn, batch.orders.values())
                if batch.fills:
                    w.fills.write(conn, batch.fills)
                if batch.positions:
                    w.positions.write(conn, batch.positions.values())
                if batch.equity_ts:
                    self._insert_equity(conn, batch)
                if batch.risk_events:
                    w.risk_events.write(conn, batch.risk_events)
                if batch.rejected:
                    w.rejected.write(conn, batch.rejected)
                if batch.events:
                    w.events.write(conn, self._linked(conn, batch.events, heads))
            for checkpoint in checkpoints.values():
                w.save_checkpoint(conn, checkpoint)
        self._heads.update(heads)

    def _linked(self, conn: sa.Connection, events: Iterable[EventRecord], heads: dict[str, bytes]) -> list[_Linked]:
        """The events with their chain links (order and fill lines; see ``chain.py``)."""
        out = []
        for e in events:
            digest: str | None = None
            if chained(e.type):
                previous = heads.get(e.run_id) or self._heads.get(e.run_id) or _last_link(conn, e.run_id)
                heads[e.run_id] = link(previous, e.seq, e.ts, e.type, json_safe(e.data))
                digest = heads[e.run_id].hex()
            out.append(_Linked(e.run_id, e.seq, e.ts, e.type, e.data, digest))
        return out

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """Return the run's last committed checkpoint, or None."""
        c = t.checkpoints.c
        query = sa.select(c.run_id, c.seq, c.ts, c.events_processed, c.rejected_count, c.state)
        with self._engine.connect() as conn:
            row = conn.execute(query.where(c.run_id == run_id)).one_or_none()
        if row is None:
            return None
        return Checkpoint(
            run_id=row.run_id,
            seq=row.seq,
            ts=row.ts,
            events_processed=row.events_processed,
            rejected_count=row.rejected_count,
            state=bytes(row.state),
        )

    def finish_run(self, run_id: str, status: str, ended_at: int, summary: dict[str, object]) -> None:
        """Mark a run completed, halted or failed; a halted run halts its robot, others leave it idle."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"finish status must be one of {FINISHED_STATUSES}, not {status!r}")
        runs = t.runs.c
        stmt = (
            t.runs.update()
            .where(runs.id == run_id)
            .values(status=status, ended_at=ended_at, summary=json_safe(summary))
            .returning(runs.robot)
        )
        with self._engine.begin() as conn:
            robot = conn.execute(stmt).scalar_one_or_none()
            if robot is None:
                raise StateError(f"run {run_id} does not exist: nothing to finish")
            if status == "halted":
                reason = summary.get("halt_reason")
                state, why = "halted", None if reason is None else str(reason)
            else:
                state, why = "idle", None
            write_robot_state(conn, robot, state, why, ended_at, run_id=run_id)

    def abandon_run(self, run_id: str, ended_at: int | None = None) -> None:
        """Mark a running run abandoned (it will never be resumed); its robot goes idle.

        ``ended_at`` defaults to the wall clock. Raises ``StateError`` if the run is not running.
        """
        ended = time.time_ns() if ended_at is None else ended_at
        runs = t.runs.c
        stmt = (
            t.runs.update()
            .where(runs.id == run_id, runs.status == "running")
            .values(status="abandoned", ended_at=ended)
            .returning(runs.robot)
        )
        with self._engine.begin() as conn:
            robot = conn.execute(stmt).scalar_one_or_none()
            if robot is None:
                found = conn.execute(sa.select(runs.status).where(runs.id == run_id)).scalar_one_or_none()
                what = "does not exist" if found is None else f"is {found}, not running"
                raise StateError(f"run {run_id} {what}: nothing to abandon")
            rs = t.robot_state.c
            conn.execute(
                t.robot_state.update()
                .where(rs.robot == robot, rs.run_id == run_id, rs.status == "running")
                .values(status="idle", reason=None, updated_at=ended)
            )

    def _insert_equity(self, conn: sa.Connection, batch: Batch) -> None:
        ts, equity, cash = batch.equity_ts, batch.equity, batch.cash
        if not len(ts) == len(equity) == len(cash):
            raise ValueError(f"equity columns differ in length: ts {len(ts)}, equity {len(equity)}, cash {len(cash)}")
        conn.exec_driver_sql(self._equity_sql, list(zip(repeat(batch.run_id), ts, equity, cash)))


class _Writers:
    """The bulk writers of the tables a batch fills, for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.orders = BulkWriter(t.orders, dialect, conflict_keys=("id",))
        self.fills = BulkWriter(t.fills, dialect)
        self.positions = BulkWriter(t.positions, dialect, conflict_keys=("run_id", "symbol"))
        self.risk_events = BulkWriter(t.risk_events, dialect)
        self.rejected = BulkWriter(t.rejected_data, dialect, prepare={"values": json_safe})
        self.events = BulkWriter(t.journal, dialect, prepare={"data": json_safe})
        self.checkpoints = BulkWriter(t.checkpoints, dialect, conflict_keys=("run_id",))
        p = "?" if dialect.paramstyle == "qmark" else "%s"
        self.progress = f"UPDATE runs SET last_seq = {p}, last_ts = {p}, events_processed = {p}, rejected_count = {p} "
        self.progress += f"WHERE id = {p}"

    def save_checkpoint(self, conn: sa.Connection, cp: Checkpoint) -> None:
        """Replace the run's checkpoint and record its progress (plain SQL: a live run does this ~100 times/s)."""
        row = _CheckpointRow(cp.run_id, cp.seq, cp.ts, cp.events_processed, cp.rejected_count, cp.state, time.time_ns())
        self.checkpoints.write(conn, (row,))
        updated = conn.exec_driver_sql(
            self.progress, (cp.seq, cp.ts, cp.events_processed, cp.rejected_count, cp.run_id)
        )
        if updated.rowcount != 1:
            raise StateError(f"run {cp.run_id} does not exist: start the run before committing to it")


class _CheckpointRow(NamedTuple):
    """A checkpoint as its table's row."""

    run_id: str
    seq: int
    ts: int
    events_processed: int
    rejected_count: int
    state: bytes
    updated_at: int


class _Linked:
    """A journal line with its chain link, as the bulk writer reads it."""

    __slots__ = ("data", "hash", "run_id", "seq", "ts", "type")

    def __init__(self, run_id: str, seq: int, ts: int, type_: str, data: Any, digest: str | None) -> None:
        self.run_id, self.seq, self.ts, self.type, self.data, self.hash = run_id, seq, ts, type_, data, digest


def _last_link(conn: sa.Connection, run_id: str) -> bytes:
    """The run's last stored chain link (the genesis link before its first)."""
    j = t.journal
    query = sa.select(j.c.hash).where(j.c.run_id == run_id, j.c.hash.is_not(None)).order_by(j.c.id.desc()).limit(1)
    stored = conn.execute(query).scalar()
    return bytes.fromhex(stored) if stored else GENESIS


def upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], keys: Iterable[str]) -> None:
    """Insert ``rows`` into ``table``, replacing the other columns of rows whose ``keys`` exist."""
    insert = sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert
    stmt = insert(table)
    key_set = frozenset(keys)
    update = {c.name: stmt.excluded[c.name] for c in table.c if c.name not in key_set and c.name in rows[0]}
    conn.execute(stmt.on_conflict_do_update(index_elements=sorted(key_set), set_=update), rows)


def write_robot_state(
    conn: sa.Connection, robot: str, status: str, reason: str | None, ts: int, *, run_id: str | None = None
) -> None:
    """Set a robot's status and reason at ``ts``; its run id changes only when ``run_id`` is given."""
    row: dict[str, Any] = {"robot": robot, "status": status, "reason": reason, "updated_at": ts}
    if run_id is not None:
        row["run_id"] = run_id
    upsert(conn, t.robot_state, [row], ("robot",))


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def as_row(record: Any) -> dict[str, Any]:
    """Return a record dataclass as a column-name → value dict."""
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(f.name for f in fields(record))
    return {name: getattr(record, name) for name in names}


def json_safe(value: Any) -> Any:
    """Return ``value`` as JSON-storable data.

    NaN and infinities become "nan", "inf", "-inf"; Decimals their exact text; tuples lists;
    numpy-style scalars their Python value; anything else unknown its ``str``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)
