"""Consistent snapshots of the trading database, taken while the robot trades, and their restore.

- SQLite: the online backup API (``sqlite3.Connection.backup``) copies every page in one step, inside one
  read transaction, so the copy is one consistent moment. robohost runs SQLite in WAL mode, where a reader
  never blocks the writer: the engine keeps committing while the copy is made (its commits go to the WAL).
  The backup is deliberately *not* done in small ``pages=`` steps: SQLite restarts a stepped backup from
  the first page whenever another connection writes between two steps, so against a robot that commits
  every few milliseconds a stepped backup of a large database would never finish.
- PostgreSQL: ``pg_dump --format=custom`` of robohost's schema, in the snapshot that a REPEATABLE READ
  transaction exports, so the row counts written in the manifest are those of the dump. pg_dump takes only
  ACCESS SHARE locks, which never block inserts and updates.

While a backup is made, ``stall_probe`` runs a thread beside it that wakes every few milliseconds and
reports how late it got to run (``max_stall_ms``): the time a thread next to the backup, such as the robot's
session when ``robohost serve`` makes the backup, waited for the interpreter or the CPU. On PostgreSQL the
probe also takes, and at once releases, the lock an ``INSERT`` takes (``ROW EXCLUSIVE``) on every robohost
table, so any lock that would block the robot's writes is measured too. On SQLite it does not take the
write lock: that would measure the robot's own commits (SQLite has one writer), while the backup, a reader
in WAL mode, never blocks the writer by construction. ``bench/backup_stall.py`` measures the engine itself.

Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import NullPool

from robohost.errors import BackupError

DatabaseKind = Literal["sqlite", "postgresql"]
SNAPSHOT_FILES: dict[str, str] = {"sqlite": "robohost.db", "postgresql": "robohost.pgdump"}
"""The snapshot's file name inside an archive, by database kind."""
PROBE_INTERVAL_S = 0.005
PG_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Snapshot:
    """A snapshot file of the database and what is known about it."""

    path: Path
    kind: DatabaseKind
    row_counts: dict[str, int]
    schema_revision: str | None
    seconds: float
    schema: str | None = None
    """PostgreSQL: the schema the dump holds."""


def database_kind(url: str) -> DatabaseKind:
    """``sqlite`` or ``postgresql``, from the database URL."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend in ("postgresql", "postgres"):
        return "postgresql"
    raise BackupError(f"cannot back up a {backend} database: robohost supports SQLite and PostgreSQL")


def sqlite_path(url: str) -> Path:
    """The file of a SQLite URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


# -- the stall probe ------------------------------------------------------------------------------------------
@dataclass
class StallProbe:
    """Wakes every ``interval_s`` on a thread and runs ``probe``; keeps the longest delay (late wake-up + probe)."""

    probe: Callable[[], None] = lambda: None
    interval_s: float = PROBE_INTERVAL_S
    max_ms: float = 0.0
    samples: int = 0
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def running(self) -> Iterator[StallProbe]:
        """Probe on a thread while the ``with`` block runs."""
        thread = threading.Thread(target=self._loop, name="backup-stall-probe", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=60)

    def _loop(self) -> None:
        due = time.perf_counter()
        while not self._stop.is_set():
            try:
                self.probe()
            except Exception as exc:  # a failing probe must not fail the backup; it is reported
                self.error = f"{type(exc).__name__}: {exc}"
                return
            self.max_ms = max(self.max_ms, (time.perf_counter() - due) * 1000)  # woke late + the probe itself
            self.samples += 1
            due = time.perf_counter() + self.interval_s
            if self._stop.wait(self.interval_s):
                return


# -- SQLite ---------------------------------------------------------------------------------------------------
def _sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [name for (name,) in rows]


def sqlite_row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table of a SQLite database."""
    return {name: int(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]) for name in _sqlite_tables(conn)}


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    if "alembic_version" not in _sqlite_tables(conn):
        return None
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def snapshot_sqlite(database: Path, dest: Path) -> Snapshot:
    """Copy the live SQLite ``database`` to ``dest`` as one consistent moment, without stopping its writer."""
    if not database.is_file():
        raise BackupError(f"the database {database} does not exist")
    started = time.perf_counter()
    source = sqlite3.connect(database, timeout=60)
    target = sqlite3.connect(dest)
    try:
        source.backup(target)  # every page in one step: one read transaction (see the module's docstring)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        counts = sqlite_row_counts(target)
        revision = _sqlite_revision(target)
    except sqlite3.Error as exc:
        raise BackupError(f"snapshot of {database} failed: {exc}") from None
    finally:
        target.close()
        source.close()
    return Snapshot(dest, "sqlite", counts, revision, time.perf_counter() - started)


def check_sqlite(path: Path) -> tuple[list[str], dict[str, int], str | None]:
    """Run ``PRAGMA integrity_check`` and ``foreign_key_check`` on a SQLite file; return problems, counts, revision."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key violation in {r[0]} (row {r[1]})" for r in conn.execute("PRAGMA foreign_key_check")]
        return problems, sqlite_row_counts(conn), _sqlite_revision(conn)
    except sqlite3.DatabaseError as exc:
        return [f"not a readable SQLite database: {exc}"], {}, None
    finally:
        conn.close()


def sqlite_counts(path: Path) -> tuple[dict[str, int], str | None]:
    """Row counts and schema revision of a SQLite file (no integrity check)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return sqlite_row_counts(conn), _sqlite_revision(conn)
    finally:
        conn.close()


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_files(database: Path) -> list[Path]:
    """The database file and the WAL, shared-memory and journal files beside it that exist."""
    return [p for p in (database, *(Path(f"{database}{s}") for s in SQLITE_SIDE_FILES)) if p.exists()]


def place_sqlite(snapshot: Path, database: Path) -> None:
    """Put a snapshot file in place as ``database`` (copied beside it first, then renamed over it)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    staging = database.with_name(f".{database.name}.restoring-{uuid.uuid4().hex[:8]}")
    shutil.copyfile(snapshot, staging)
    with open(staging, "rb") as fh:
        os.fsync(fh.fileno())
    for side in SQLITE_SIDE_FILES:
        Path(f"{database}{side}").unlink(missing_ok=True)
    os.replace(staging, database)


# -- PostgreSQL -----------------------------------------------------------------------------------------------
def _pg_url(url: str) -> URL:
    return make_url(url).set(drivername="postgresql+psycopg")


def libpq_target(url: str, database: str | None = None) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for pg_dump/pg_restore and the environment carrying the password (never argv)."""
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    conninfo = parsed.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return conninfo, env


def _pg_program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client of the server's version (postgresql-client)"
        )
    return path


def _run_pg(args: list[str], env: dict[str, str], what: str) -> str:
    try:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise BackupError(f"{what}: {Path(args[0]).name} did not finish within {PG_TIMEOUT_S} s") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split())[:500]
        raise BackupError(f"{what}: {Path(args[0]).name} failed (exit {done.returncode}): {message}")
    return done.stdout


def _pg_tables(conn: sa.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        sa.text(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = :schema AND table_type = 'BASE TABLE' ORDER BY table_name"
        ),
        {"schema": schema},
    )
    return [str(name) for (name,) in rows]


def pg_row_counts(conn: sa.Connection, schema: str) -> dict[str, int]:
    """Rows per table of a PostgreSQL schema."""
    return {
        name: int(conn.exec_driver_sql(f'SELECT count(*) FROM "{schema}"."{name}"').scalar_one())
        for name in _pg_tables(conn, schema)
    }


def _pg_revision(conn: sa.Connection, schema: str) -> str | None:
    if "alembic_version" not in _pg_tables(conn, schema):
        return None
    value = conn.exec_driver_sql(f'SELECT version_num FROM "{schema}".alembic_version').scalar()
    return None if value is None else str(value)


@contextmanager
def stall_probe(url: str) -> Iterator[StallProbe]:
    """A ``StallProbe`` for the database at ``url`` running during the ``with`` block (see the module's docstring)."""
    if database_kind(url) == "sqlite":
        with StallProbe().running() as stall:
            yield stall
        return
    engine = sa.create_engine(_pg_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
            names = ", ".join(f'"{schema}"."{t}"' for t in _pg_tables(conn, schema))
            conn.commit()

            def probe() -> None:
                with conn.begin():
                    conn.exec_driver_sql("SET LOCAL lock_timeout = '60s'")
                    conn.exec_driver_sql(f"LOCK TABLE {names} IN ROW EXCLUSIVE MODE" if names else "SELECT 1")

            with StallProbe(probe).running() as stall:
                yield stall
    finally:
        engine.dispose()


def snapshot_postgres(url: str, dest: Path) -> Snapshot:
    """``pg_dump`` robohost's schema in custom format, in one exported snapshot, while the robot trades."""
    pg_dump = _pg_program("pg_dump")
    started = time.perf_counter()
    engine = sa.create_engine(_pg_url(url), poolclass=NullPool)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
            snapshot_id = str(conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one())
            schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
            counts = pg_row_counts(conn, schema)
            revision = _pg_revision(conn, schema)
            conninfo, env = libpq_target(url)
            _run_pg(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot_id}",
                    f"--schema={schema}",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={dest}",
                    f"--dbname={conninfo}",
                ],
                env,
                "snapshot of the PostgreSQL database",
            )
    except sa.exc.DBAPIError as exc:
        raise BackupError(f"snapshot of the PostgreSQL database failed: {type(exc.orig).__name__}") from None
    finally:
        engine.dispose()
    return Snapshot(dest, "postgresql", counts, revision, time.perf_counter() - started, schema)


def _dump_listing(dump: Path, env: dict[str, str]) -> tuple[list[str], list[str], str | None]:
    """The dump's table of contents without its SCHEMA entries, its tables, and the schema it holds."""
    listing = _run_pg([_pg_program("pg_restore"), "--list", str(dump)], env, "reading the PostgreSQL dump")
    keep, tables, schema = [], [], None
    for line in listing.splitlines():
        head, _, rest = line.partition(";")
        fields = rest.split()
        if not head.strip() or head.lstrip().startswith(";") or len(fields) < 3:
            keep.append(line)
            continue
        kind = fields[2]
        if kind == "SCHEMA":
            schema = fields[4] if len(fields) > 4 else schema
            continue
        if kind == "COMMENT" and fields[3:5] == ["-", "SCHEMA"]:
            continue
        if kind == "TABLE" and len(fields) == 6:  # "OID OID TABLE schema name owner" (not "TABLE DATA …")
            schema = schema or fields[3]
            tables.append(fields[4])
        keep.append(line)
    return keep, tables, schema


def restore_postgres(dump: Path, url: str, extra_tables: Iterable[str] = ()) -> dict[str, int]:
    """Replace robohost's tables in the database at ``url`` by the dump's, in one transaction; return row counts.

    The dump's schema must be the connection's current schema (it is when the dump was made from this
    database). Tables the dump holds, and ``extra_tables``, are dropped first; nothing else is touched.
    """
    conninfo, env = libpq_target(url)
    listing, tables, dump_schema = _dump_listing(dump, env)
    engine = sa.create_engine(_pg_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            schema = str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())
        if dump_schema is not None and dump_schema != schema:
            raise BackupError(
                f"the backup holds the PostgreSQL schema {dump_schema!r} but the database's current schema is "
                f"{schema!r}: set the search_path of the database URL to {dump_schema!r}"
            )
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            for table in sorted({*tables, *extra_tables}):
                conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{schema}"."{table}" CASCADE')
        _pg_restore(dump, listing, conninfo, env)
        with engine.connect() as conn:
            return pg_row_counts(conn, schema)
    except sa.exc.DBAPIError as exc:
        raise BackupError(f"restore of the PostgreSQL database failed: {type(exc.orig).__name__}") from None
    finally:
        engine.dispose()


def _pg_restore(dump: Path, listing: list[str], conninfo: str, env: dict[str, str]) -> None:
    list_file = dump.with_name(dump.name + ".list")
    list_file.write_text("\n".join(listing) + "\n", encoding="utf-8")
    try:
        _run_pg(
            [
                _pg_program("pg_restore"),
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                "--no-privileges",
                f"--use-list={list_file}",
                f"--dbname={conninfo}",
                str(dump),
            ],
            env,
            "restore of the PostgreSQL dump",
        )
    finally:
        list_file.unlink(missing_ok=True)


def check_postgres(dump: Path, url: str) -> tuple[list[str], dict[str, int], str | None]:
    """Restore a dump into a new temporary database on the server at ``url``; return problems, counts, revision.

    The temporary database is dropped afterwards. Needs the CREATEDB privilege.
    """
    _, env = libpq_target(url)
    listing, _tables, dump_schema = _dump_listing(dump, env)
    schema = dump_schema or "public"
    name = f"robohost_verify_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(_pg_url(url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    scratch = sa.create_engine(_pg_url(url).set(database=name, query={}), poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.DBAPIError as exc:
        admin.dispose()
        raise BackupError(
            f"cannot create a temporary database to verify the PostgreSQL dump ({type(exc.orig).__name__}): "
            "the database user needs the CREATEDB privilege"
        ) from None
    try:
        with scratch.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conninfo, env = libpq_target(url, database=name)
        try:
            _pg_restore(dump, listing, conninfo, env)
        except BackupError as exc:
            return [str(exc)], {}, None
        with scratch.connect() as conn:
            return [], pg_row_counts(conn, schema), _pg_revision(conn, schema)
    finally:
        scratch.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def snapshot_database(url: str, dest_dir: Path) -> Snapshot:
    """Snapshot the database at ``url`` into ``dest_dir`` (``robohost.db`` or ``robohost.pgdump``)."""
    kind = database_kind(url)
    dest = dest_dir / SNAPSHOT_FILES[kind]
    if kind == "sqlite":
        return snapshot_sqlite(sqlite_path(url), dest)
    return snapshot_postgres(url, dest)
