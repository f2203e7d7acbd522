"""The live-latency benchmark's instrumentation (not its speed: the targets live in ``bench/``): a short run at
a low rate, every bar received, and each bar's arrival, acceptance and durability stamped in that order."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import live_latency


def test_every_bar_is_stamped_on_arrival_acceptance_and_commit_in_that_order() -> None:
    run = live_latency.run_live(rate=200.0, symbols=10, seconds=2.0, warmup=0.0)

    assert run.bars_sent == 400 and run.bars_received == run.bars_sent
    assert run.orders_accepted == run.bars_received  # an order on every bar
    for stamps in (run.arrival, run.accepted, run.durable):
        assert len(stamps) == run.bars_received and (stamps > 0).all()
    decision = run.accepted - run.arrival
    durable = run.durable - run.arrival
    assert (decision > 0).all() and (durable >= decision).all()
    assert np.isfinite(decision / 1e6).all() and np.isfinite(durable / 1e6).all()

    lines = live_latency.report(run)
    assert lines[0]["dropped"] == 0
    assert [line.get("latency") for line in lines[1:4]] == ["decision", "durable", "wire"]
    assert all(line["count"] == run.bars_received for line in lines[1:4])
    targets = lines[-1]["targets"]
    assert isinstance(targets, dict) and set(targets) == {"decision_p99_ms", "durable_p99_ms", "dropped"}
