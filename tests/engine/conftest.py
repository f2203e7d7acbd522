"""Fixtures of the engine tests: close the databases ``support.run_robot`` opened after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import dispose_engines


@pytest.fixture(autouse=True)
def _close_databases() -> Iterator[None]:
    yield
    dispose_engines()
