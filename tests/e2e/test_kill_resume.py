"""The crash test the foundation promises: kill -9 a replay at random instants, resume each time, and end
with exactly the orders, fills and equity of an uninterrupted run (on SQLite and on PostgreSQL).

Runs the real ``robohost`` command in subprocesses; the kill points are chosen at random (seeded per run
and printed) from the run's progress as stored in the database, so every kill lands mid-run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.feeds.synthetic import write_synthetic
from robohost.services.reports.track_record import chain_state

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
BARS_PER_SYMBOL = 6000
KILLS = 6

CHURN = '''
from robohost import Strategy


class Churn(Strategy):
    """Trades a lot, with every order type, history, indicators and the seeded touch fills."""

    params = {"qty": 10, "every": 7}

    def on_start(self, ctx):
        self.fast = {s: ctx.ema(s, 5) for s in ctx.symbols}
        self.slow = {s: ctx.sma(s, 20) for s in ctx.symbols}
        self.count = 0

    def on_bar(self, bar, ctx):
        self.count += 1
        s = bar.symbol
        if not self.slow[s].ready:
            return
        closes = ctx.history(s, 10).close
        low = float(closes.min())
        pos = ctx.position(s)
        if self.count % self.params.every == 0 and pos == 0:
            ctx.buy(s, self.params.qty, stop_loss=round(bar.close * 0.998, 2), take_profit=round(bar.close * 1.002, 2),
                    tif="gtc")
        elif self.count % 11 == 0:
            ctx.buy(s, self.params.qty, limit=round(low, 2), tif="day")
        elif self.count % 13 == 0 and pos > 0 and self.fast[s].value < self.slow[s].value:
            ctx.close(s)
        elif self.count % 17 == 0 and pos > 0:
            ctx.sell(s, min(pos, self.params.qty), stop=round(bar.low * 0.999, 2), limit=round(bar.low * 0.997, 2))
'''

CONFIG = """
[database]
url = "sqlite:///robohost.db"

[robots.{name}]
strategy = "strategies/churn.py:Churn"
starting_cash = 1000000
timezone = "America/New_York"
seed = 1234
history = 50
commit_every = {commit_every}

[robots.{name}.data]
path = ["data/a.parquet", "data/b.parquet"]

[robots.{name}.fills]
latency_ms = 250
slippage_bps = 2.0
slippage_range_fraction = 0.1
touch_fill_probability = 0.5
participation = 0.05

[robots.{name}.fees]
per_share = 0.01
percent = 0.01
minimum = 1.0

[robots.{name}.risk]
max_orders_per_minute = 30
"""


def _home(tmp_path: Path, name: str, commit_every: int) -> Path:
    home = tmp_path / name
    (home / "strategies").mkdir(parents=True)
    (home / "data").mkdir()
    (home / "strategies" / "churn.py").write_text(CHURN)
    write_synthetic(home / "data" / "a.parquet", BARS_PER_SYMBOL, symbol="AAA", seed=11, price=50.0)
    write_synthetic(home / "data" / "b.parquet", BARS_PER_SYMBOL, symbol="BBB", seed=12, price=120.0)
    (home / "robohost.toml").write_text(CONFIG.format(name=name, commit_every=commit_every))
    return home


def _env(db_url: str) -> dict[str, str]:
    return {**os.environ, "ROBOHOST_DATABASE_URL": db_url}


def _run(home: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ROBOHOST, "--home", str(home), "run", "--no-progress"],
        env=_env(db_url),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _progress(engine: sa.Engine, robot: str) -> int:
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT max(events_processed) FROM runs WHERE robot = :robot AND status = 'running'"),
            {"robot": robot},
        ).scalar()
    return int(value or 0)


def _kill_at(home: Path, db_url: str, engine: sa.Engine, robot: str, target: int) -> int:
    """Start (or resume) the run and kill -9 it once its committed progress reaches ``target``."""
    errors = home / "stderr.txt"
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [ROBOHOST, "--home", str(home), "run", "--no-progress"],
            env=_env(db_url),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        deadline = time.monotonic() + 300
        try:
            while proc.poll() is None and time.monotonic() < deadline:
                if _progress(engine, robot) >= target:
                    break
                time.sleep(0.005)  # polling the database for progress, not waiting for an outcome
            assert proc.poll() is None, f"the run ended before the kill point {target}: {errors.read_text()}"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return _progress(engine, robot)


def _strip(run_id: str, value: Any) -> Any:
    return value.replace(run_id, "RUN") if isinstance(value, str) else value


def _record(engine: sa.Engine, robot: str) -> dict[str, Any]:
    read = ReadModel(engine)
    run = read.latest_run(robot)
    assert run is not None
    orders = [
        tuple(_strip(run.id, v) for k, v in vars_of(o).items() if k not in ("run_id", "robot"))
        for o in read.orders(robot, run.id)
    ]
    fills = [
        tuple(_strip(run.id, v) for k, v in vars_of(f).items() if k not in ("run_id", "robot"))
        for f in read.fills(robot, run.id)
    ]
    equity = [(p.ts, p.equity, p.cash) for p in read.equity(robot, run.id)]
    positions = [(p.symbol, p.qty, p.avg_price, p.realized_pnl) for p in read.positions(run.id)]
    chain = chain_state(engine, run.id)
    return {
        "chain": (chain.length, chain.problems),
        "status": run.status,
        "orders": sorted(orders),
        "fills": sorted(fills),
        "equity": equity,
        "positions": sorted(positions),
        "final": (run.summary or {}).get("final_equity"),
    }


def vars_of(record: Any) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


@pytest.mark.slow
def test_kill_minus_nine_at_random_points_then_resume_matches_an_uninterrupted_run(tmp_path: Path, db_url: str) -> None:
    seed = random.randrange(1_000_000)
    print(f"kill points seed: {seed}")
    rng = random.Random(seed)
    ref_home = _home(tmp_path, "ref", commit_every=40)
    victim_home = _home(tmp_path, "victim", commit_every=40)
    done = _run(ref_home, db_url)
    assert done.returncode == 0, done.stderr
    engine = make_engine(db_url)
    try:
        total = 2 * BARS_PER_SYMBOL
        targets = sorted(rng.sample(range(total // 20, total - total // 10), KILLS))
        reached: list[int] = []
        for target in targets:
            reached.append(_kill_at(victim_home, db_url, engine, "victim", max(target, (reached or [0])[-1] + 1)))
        assert len(reached) == KILLS and all(0 < r < total for r in reached), reached
        assert reached == sorted(reached), "each resume must continue from the last checkpoint, not restart"
        status = subprocess.run(
            [ROBOHOST, "--home", str(victim_home), "status", "--json"],
            env=_env(db_url),
            capture_output=True,
            text=True,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["state"] == "interrupted"
        finished = _run(victim_home, db_url)
        assert finished.returncode == 0, finished.stderr
        assert "resuming run" in (victim_home / "logs" / "robohost.log").read_text()
        ref, victim = _record(engine, "ref"), _record(engine, "victim")
    finally:
        engine.dispose()
    assert ref["status"] == victim["status"] == "completed"
    assert len(ref["fills"]) > 200, "the scenario must trade enough to be meaningful"
    assert victim["orders"] == ref["orders"]
    assert victim["fills"] == ref["fills"]
    assert victim["positions"] == ref["positions"]
    assert victim["equity"] == ref["equity"]
    assert victim["final"] == ref["final"]
    assert victim["chain"] == ref["chain"] and ref["chain"][1] == (), "the hash chain runs unbroken across resumes"
    assert ref["chain"][0] > 400
