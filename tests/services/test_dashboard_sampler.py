"""The overview's equity curve: one point per time slice, found by probing the primary key, kept up to date
as the curve grows, and equal to the last point of each slice taken from all the rows (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from robohost.adapters.db import tables as t
from robohost.adapters.db.dashboard import DashboardQueries
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.migrate import upgrade
from robohost.adapters.db.queries import EquityPoint
from robohost.services.dashboard import EquitySampler

MINUTE = 60_000_000_000


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    run = {
        "id": "r1", "robot": "bot", "mode": "replay", "status": "running", "started_at": 0, "seed": 1,
        "starting_cash": 100, "strategy": "s", "feed_signature": "f", "config": {}, "last_seq": 0,
        "events_processed": 0, "rejected_count": 0,
    }  # fmt: skip
    with engine.begin() as conn:
        conn.execute(sa.insert(t.runs).values(**run))
    try:
        yield engine
    finally:
        engine.dispose()


def _add(engine: sa.Engine, start: int, stop: int) -> None:
    rows = [
        {"run_id": "r1", "ts": i * MINUTE + (i % 7) * 1000, "equity": 100.0 + (i % 97) - (i % 13), "cash": 1.0}
        for i in range(start, stop)
        if i % 11 != 5  # gaps: some slices are sparser than others
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(t.equity_points), rows)


def _expected(engine: sa.Engine, origin: int, width: int) -> list[EquityPoint]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.equity_points.c.ts, t.equity_points.c.equity, t.equity_points.c.cash)).all()
    last: dict[int, EquityPoint] = {}
    for row in sorted(rows):
        last[(row.ts - origin) // width] = EquityPoint(row.ts, row.equity, row.cash)
    return [last[n] for n in sorted(last)]


def test_the_sample_follows_the_growing_curve(engine: sa.Engine) -> None:
    queries = DashboardQueries(engine)
    sampler = EquitySampler(queries, "r1", 50)
    assert sampler.refresh() == []
    _add(engine, 0, 400)
    points = sampler.refresh()
    assert 40 <= len(points) <= 50 and points[-1].ts == 399 * MINUTE + 0 * 1000 + (399 % 7) * 1000
    widths = {sampler.width}
    for start in range(400, 6000, 700):  # the curve grows well past its first span: the slices get wider
        _add(engine, start, start + 700)
        points = sampler.refresh()
        widths.add(sampler.width)
        assert len(points) <= 50 and points == _expected(engine, sampler.origin or 0, sampler.width)
    assert len(widths) > 2
    assert queries.equity_count("r1") == sum(1 for i in range(6000) if i % 11 != 5)
