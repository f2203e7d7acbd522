"""Build a ``sqlalchemy.Engine`` for the trading database (SQLite file or PostgreSQL via psycopg 3).

SQLite connections get WAL, ``synchronous=NORMAL``, foreign keys and a busy timeout, and SQLAlchemy
(not the ``sqlite3`` module) emits ``BEGIN`` so that DDL and reads are transactional too. Resolving a
relative SQLite path is the caller's job. Must not import ``robohost.config``, ``robohost.cli`` or
``robohost.services``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from robohost.errors import ConfigError

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)
_SQLITE_DRIVERS = frozenset({"sqlite", "sqlite+pysqlite"})
_POSTGRES_DRIVERS = frozenset({"postgresql", "postgresql+psycopg", "postgres"})


def make_engine(url: str) -> sa.Engine:
    """Return an engine for ``url`` (``sqlite:///…`` or ``postgresql[+psycopg]://…``).

    Raises ``ConfigError`` for a URL that cannot be parsed or names another database or driver.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            "database url cannot be parsed: expected sqlite:///PATH or postgresql://USER@HOST/DB"
        ) from None
    if parsed.drivername in _SQLITE_DRIVERS:
        return _sqlite_engine(parsed.set(drivername="sqlite+pysqlite"))
    if parsed.drivername in _POSTGRES_DRIVERS:
        return sa.create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    shown = parsed.render_as_string(hide_password=True)
    raise ConfigError(
        f"database url {shown} uses the unsupported scheme {parsed.drivername!r}: "
        "use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def _sqlite_engine(url: URL) -> sa.Engine:
    engine = sa.create_engine(url)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module; _on_sqlite_begin emits BEGIN instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def _on_sqlite_begin(connection: sa.Connection) -> None:
    connection.exec_driver_sql("BEGIN")
