"""Fixtures of the runner tests: a home with a small replay robot on each database, worker threads, a harness."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from server_harness import CONFIG, Harness

from robohost.adapters.feeds.synthetic import write_synthetic
from robohost.bootstrap import App, open_app


@pytest.fixture
def app(tmp_path: Path, db_url: str) -> Iterator[App]:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    write_synthetic(home / "data" / "bars.parquet", 300, symbol="SYN", seed=3)
    (home / "robohost.toml").write_text(CONFIG.format(url=db_url))
    opened = open_app(home)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def workers() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=4)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True)


@pytest.fixture
def harness(app: App, workers: ThreadPoolExecutor) -> Harness:
    return Harness(app, workers)
