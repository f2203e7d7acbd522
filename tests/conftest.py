"""Fixtures shared by the whole suite, and the strict rule: under ROBOHOST_STRICT_TESTS=1 a skip fails.

``db_url`` runs a test against SQLite (a file in ``tmp_path``) and against PostgreSQL (a fresh schema
in the database named by ROBOHOST_TEST_PG, selected through ``search_path`` and dropped afterwards).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

PG_ENV = "ROBOHOST_TEST_PG"
STRICT_ENV = "ROBOHOST_STRICT_TESTS"


def strict_tests() -> bool:
    """Return whether skips count as failures (CI sets ROBOHOST_STRICT_TESTS=1)."""
    return os.environ.get(STRICT_ENV) == "1"


def _fail_skip(report: Any) -> None:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped, which {STRICT_ENV}=1 counts as a failure: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under strict mode, report a skipped test (setup or call) as failed; xfail is left alone."""
    report = yield
    if strict_tests() and report.skipped and not hasattr(report, "wasxfail"):
        _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Under strict mode, report a module skipped at collection (importorskip…) as a collection error."""
    report = yield
    if strict_tests() and report.skipped:
        _fail_skip(report)
    return report


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'robohost.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        message = f"set {PG_ENV}=postgresql://USER@HOST:PORT/DB to run the PostgreSQL tests"
        if strict_tests():
            pytest.fail(f"{message} ({STRICT_ENV}=1 forbids skipping them)")
        pytest.skip(message)
    yield from _pg_schema_url(base)


def _pg_schema_url(base: str) -> Iterator[str]:
    url = make_url(base)
    schema = f"rh_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(url.set(drivername="postgresql+psycopg"), poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        try:
            yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        admin.dispose()
