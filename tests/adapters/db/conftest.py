"""Fixtures for the database adapter tests: a migrated engine per backend, and record builders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from db_records import Records

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.db.migrate import upgrade
from robohost.adapters.db.queries import ReadModel


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """Yield an engine on a freshly migrated database of each backend."""
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def journal(engine: sa.Engine) -> SqlJournal:
    """Return a journal on the migrated database."""
    return SqlJournal(engine)


@pytest.fixture
def read(engine: sa.Engine) -> ReadModel:
    """Return a read model on the migrated database."""
    return ReadModel(engine)


@pytest.fixture
def records() -> Records:
    """Return builders for run ``run-1`` of robot ``bot``."""
    return Records()


@pytest.fixture
def make_records() -> type[Records]:
    """Return the record builder class, for tests that need several runs."""
    return Records


@pytest.fixture
def started(journal: SqlJournal, records: Records) -> Records:
    """Start run ``run-1`` and return its builders."""
    journal.start_run(records.run())
    return records
