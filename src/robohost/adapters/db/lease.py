"""One robot, one runner: an exclusive lease per robot, held by a live process and freed when it dies.

- PostgreSQL: a session-level advisory lock on a connection of its own (``pg_try_advisory_lock``), keyed by
  the schema and the robot. When the holder dies its connection closes and the server frees the lock at
  once; when its host vanishes, the TCP keepalives set on the session (about 11 s) do. Two hosts sharing
  one database are covered.
- SQLite: an exclusive ``flock`` on ``<database>.lease-<robot>`` beside the database file; the kernel
  frees it when the holder dies. (SQLite is one host's database: a file lock over NFS is not supported.)

Both also keep a row in ``leases`` (holder, since, heartbeat) so that people and the next holder can see
who runs the robot and when it was last looked after. Must not import ``robohost.config``, ``robohost.cli``
or ``robohost.services``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from robohost.adapters.db.tables import leases

_PG_KEY = "SELECT hashtextextended('robohost-lease:' || current_schema() || ':' || :robot, 0)"
_PG_KEEPALIVE = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """The ``leases`` row of a robot: who holds (or last held) it and since when (ns since the epoch)."""

    robot: str
    holder: str
    acquired_at: int
    heartbeat_at: int
    released_at: int | None


def read_lease(engine: sa.Engine, robot: str) -> LeaseRow | None:
    """The robot's lease row, if it was ever taken."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(leases).where(leases.c.robot == robot)).first()
    return None if row is None else LeaseRow(**row._mapping)


class RobotLease(ABC):
    """The exclusive right to run one robot. ``try_acquire`` never blocks; ``check`` says if it is still held."""

    def __init__(self, engine: sa.Engine, robot: str, holder: str, clock: Callable[[], int] = time.time_ns) -> None:
        self.engine = engine
        self.clock = clock
        """Wall time for the row's stamps (ns since the epoch); tests inject a simulated one."""
        self.robot = robot
        self.holder = holder
        self.previous: LeaseRow | None = None
        """The row as the previous holder left it (read when this lease was acquired)."""
        self._held = False

    @property
    def held(self) -> bool:
        """True between a successful ``try_acquire`` and ``release`` (or a failed ``check``)."""
        return self._held

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; record this holder. Returns whether it is held now."""
        if self._held:
            return True
        if not self._lock():
            return False
        self._held = True
        self.previous = read_lease(self.engine, self.robot)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(leases).where(leases.c.robot == self.robot))
            conn.execute(
                sa.insert(leases).values(robot=self.robot, holder=self.holder, acquired_at=now, heartbeat_at=now)
            )
        return True

    def check(self) -> bool:
        """Confirm the lock is still held and record a heartbeat; on loss, mark the lease released."""
        if not self._held:
            return False
        if not self._still_locked():
            self._held = False
            self._unlock()
            return False
        with contextlib.suppress(DBAPIError), self.engine.begin() as conn:
            conn.execute(
                sa.update(leases)
                .where(leases.c.robot == self.robot, leases.c.holder == self.holder)
                .values(heartbeat_at=self.clock())
            )
        return True

    def release(self) -> None:
        """Give the lease up (idempotent)."""
        if not self._held:
            return
        self._held = False
        with contextlib.suppress(DBAPIError), self.engine.begin() as conn:
            now = self.clock()
            conn.execute(
                sa.update(leases)
                .where(leases.c.robot == self.robot, leases.c.holder == self.holder)
                .values(heartbeat_at=now, released_at=now)
            )
        self._unlock()

    def __enter__(self) -> RobotLease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()

    @abstractmethod
    def _lock(self) -> bool: ...

    @abstractmethod
    def _still_locked(self) -> bool: ...

    @abstractmethod
    def _unlock(self) -> None: ...


class FileLease(RobotLease):
    """SQLite: an exclusive ``flock`` on a file beside the database."""

    def __init__(
        self, engine: sa.Engine, robot: str, holder: str, path: Path, clock: Callable[[], int] = time.time_ns
    ) -> None:
        super().__init__(engine, robot, holder, clock)
        self.path = path
        self._file: IO[str] | None = None

    def _lock(self) -> bool:
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while the lease is held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{self.holder}\n")
        handle.flush()
        self._file = handle
        return True

    def _still_locked(self) -> bool:
        return self._file is not None and not self._file.closed

    def _unlock(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class AdvisoryLease(RobotLease):
    """PostgreSQL: a session-level advisory lock on a connection kept for the lease alone."""

    def __init__(self, engine: sa.Engine, robot: str, holder: str, clock: Callable[[], int] = time.time_ns) -> None:
        super().__init__(engine, robot, holder, clock)
        self._lock_engine = sa.create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5, "tcp_user_timeout": 5000},
        )
        self._conn: sa.Connection | None = None
        self._key: int | None = None

    def _lock(self) -> bool:
        conn = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            for setting in _PG_KEEPALIVE:
                conn.exec_driver_sql(setting)
            key = conn.execute(sa.text(_PG_KEY), {"robot": self.robot}).scalar_one()
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one()
        except DBAPIError:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn, self._key = conn, key
        return True

    def _still_locked(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.exec_driver_sql("SELECT 1")
        except DBAPIError:
            return False
        return True

    def _unlock(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(DBAPIError):
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        with contextlib.suppress(DBAPIError):
            conn.close()
        self._lock_engine.dispose()


def robot_lease(engine: sa.Engine, robot: str, holder: str, clock: Callable[[], int] = time.time_ns) -> RobotLease:
    """The lease that fits the database: an advisory lock on PostgreSQL, a file lock beside a SQLite file."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLease(engine, robot, holder, clock)
    database = engine.url.database or ""
    if not database or database == ":memory:":
        raise ValueError("a lease needs a SQLite database file, not an in-memory database")
    return FileLease(engine, robot, holder, Path(f"{database}.lease-{robot}"), clock)


def process_holder(role: str) -> str:
    """A holder name people can read: ``serve pid 123@host``."""
    return f"{role} pid {os.getpid()}@{os.uname().nodename}"
