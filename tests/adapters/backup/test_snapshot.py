"""Database snapshots on SQLite and PostgreSQL: one consistent moment while a writer commits, and their restore."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import sqlalchemy as sa

from backup_support import fill_database, table_rows
from robohost.adapters.backup.snapshot import (
    StallProbe,
    check_postgres,
    check_sqlite,
    database_kind,
    place_sqlite,
    restore_postgres,
    snapshot_database,
    sqlite_path,
)
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.migrate import head_revision, upgrade
from robohost.adapters.db.tables import metadata

BASE_ROWS = 5000
PER_COMMIT = 10


def _migrated(db_url: str) -> sa.Engine:
    engine = make_engine(db_url)
    upgrade(engine)
    fill_database(engine, BASE_ROWS)
    return engine


def _check(db_url: str, snapshot: Path) -> tuple[list[str], dict[str, int], str | None]:
    if database_kind(db_url) == "sqlite":
        return check_sqlite(snapshot)
    return check_postgres(snapshot, db_url)


def test_a_snapshot_is_one_consistent_moment_while_a_writer_commits(db_url: str, tmp_path: Path) -> None:
    engine = _migrated(db_url)
    stop, commits = threading.Event(), [0]

    def writer() -> None:  # each commit adds one run and PER_COMMIT equity points: together or not at all
        for i in range(100_000):
            if stop.is_set():
                return
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO runs (id, robot, mode, status, started_at, seed, starting_cash, strategy,"
                        " feed_signature, config, last_seq, events_processed, rejected_count) VALUES (:id, 'r',"
                        " 'replay', 'running', 1, 1, 1, 's', 'f', '{}', 0, 0, 0)"
                    ),
                    {"id": f"W{i}"},
                )
                conn.execute(
                    sa.text("INSERT INTO equity_points (run_id, ts, equity, cash) VALUES (:run, :ts, 1.0, 1.0)"),
                    [{"run": f"W{i}", "ts": t} for t in range(PER_COMMIT)],
                )
            commits[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while commits[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert commits[0] >= 5, "the writer did not get going"
        (tmp_path / "snap").mkdir()
        snapshot = snapshot_database(db_url, tmp_path / "snap")
        during = commits[0]
    finally:
        stop.set()
        thread.join(timeout=60)
    counts = snapshot.row_counts
    assert counts["runs"] >= 6
    assert counts["equity_points"] == BASE_ROWS + PER_COMMIT * (counts["runs"] - 1)  # no half commit
    assert counts["journal"] == BASE_ROWS
    assert snapshot.schema_revision == head_revision()
    assert commits[0] >= during  # the writer was never stopped for good
    problems, restored, revision = _check(db_url, snapshot.path)
    assert problems == []
    assert restored == counts
    assert revision == snapshot.schema_revision
    engine.dispose()


def test_restore_puts_the_snapshot_back(db_url: str, tmp_path: Path) -> None:
    engine = _migrated(db_url)
    (tmp_path / "snap").mkdir()
    snapshot = snapshot_database(db_url, tmp_path / "snap")
    before = table_rows(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM journal WHERE seq < 100")
    fill_database(engine, 7, run_id="LATER")
    engine.dispose()
    assert table_rows(db_url) != before
    if database_kind(db_url) == "sqlite":
        place_sqlite(snapshot.path, sqlite_path(db_url))
    else:
        assert restore_postgres(snapshot.path, db_url, metadata.tables) == snapshot.row_counts
    assert table_rows(db_url) == before


def test_a_damaged_sqlite_file_fails_its_check(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = _migrated(url)
    engine.dispose()
    (tmp_path / "snap").mkdir()
    snapshot = snapshot_database(url, tmp_path / "snap")
    data = bytearray(snapshot.path.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 4096):
        data[offset] = 0xFF
    snapshot.path.write_bytes(bytes(data))
    problems, _, _ = check_sqlite(snapshot.path)
    assert problems, "a page of garbage must not pass the integrity check"


def test_the_stall_probe_sees_a_thread_held_up_by_the_interpreter() -> None:
    probe = StallProbe(interval_s=0.002)
    with probe.running():
        deadline = time.monotonic() + 10
        while probe.samples < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.perf_counter()
        sum(range(20_000_000))  # one C call that keeps the interpreter lock throughout
        held = (time.perf_counter() - started) * 1000
        time.sleep(0.05)
    assert probe.samples >= 3 and probe.error is None
    assert probe.max_ms >= held * 0.5, (probe.max_ms, held)
