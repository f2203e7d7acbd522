"""make_engine: SQLite connection settings, PostgreSQL driver choice, and refused URLs."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from robohost.adapters.db.engine import make_engine
from robohost.errors import ConfigError


def test_sqlite_settings_apply_to_every_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with engine.connect() as first, engine.connect() as second:
            for conn in (first, second):
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    finally:
        engine.dispose()


def test_sqlite_ddl_is_transactional(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.rollback()
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://robo:secret@db.example/robohost",
        "postgresql+psycopg://robo:secret@db.example/robohost",
        "postgres://robo:secret@db.example/robohost",
    ],
)
def test_postgresql_urls_use_psycopg(url: str) -> None:
    engine = make_engine(url)
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.url.password == "secret"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://robo:hunter2@db.example/robohost",
        "postgresql+psycopg2://robo:hunter2@db.example/robohost",
        "oracle://robo:hunter2@db.example/robohost",
    ],
)
def test_unknown_scheme_is_a_config_error_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_engine(url)
    message = str(info.value)
    assert "hunter2" not in message
    assert "***" in message
    assert "\n" not in message


def test_unparseable_url_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        make_engine("robo:hunter2@nowhere")
    assert "hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_connects_to_each_backend(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
            if engine.dialect.name == "postgresql":
                assert conn.exec_driver_sql("SELECT current_schema()").scalar().startswith("rh_")
    finally:
        engine.dispose()
