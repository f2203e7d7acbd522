"""Live/replay parity: the example robot paper-trading a live stream makes exactly the orders and fills it
makes in a replay of the same bars — also when the connection drops mid-stream and the gap is filled.

The live source is a protocol-faithful Alpaca server on 127.0.0.1 (``tests/fakes/alpaca.py``) that the real
alpaca-py client reaches through the robot's configuration (stream and REST URLs), in accelerated time.
Runs the real ``robohost`` command, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from fakes.alpaca import FakeAlpacaServer
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.feeds.synthetic import synthetic_bars

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
MINUTES = 150
KEY_ID, SECRET = "PKTEST-PARITY", "parity-secret-value"

ROBOT = """
[robots.{name}]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.{name}.data]
{data}
"""


def _bars() -> pd.DataFrame:
    frames = [synthetic_bars(MINUTES, symbol=s, seed=k, price=p) for k, (s, p) in enumerate([("AAA", 50), ("BBB", 90)])]
    return pd.concat(frames, ignore_index=True)


def _home(tmp_path: Path, name: str, data: str) -> Path:
    home = tmp_path / name
    (home / "data").mkdir(parents=True)
    (home / "robohost.toml").write_text(ROBOT.format(name=name, data=data))
    return home


def _env(db_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "ROBOHOST_DATABASE_URL": db_url,
        "ROBOHOST_ALPACA_KEY_ID": KEY_ID,
        "ROBOHOST_ALPACA_SECRET_KEY": SECRET,
    }


def _events(engine: sa.Engine, robot: str) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT max(events_processed) FROM runs WHERE robot = :robot")
        return int(conn.execute(query, {"robot": robot}).scalar() or 0)


def _trading(read: ReadModel, robot: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    run = read.latest_run(robot)
    assert run is not None
    orders = [
        (o.id.removeprefix(run.id), o.symbol, o.side, o.type, o.qty, o.status, o.filled_qty, o.avg_fill_price)
        for o in read.orders(robot, run.id)
    ]
    fills = [
        (f.id.removeprefix(run.id), f.symbol, f.side, f.qty, f.price, f.fee, f.ts) for f in read.fills(robot, run.id)
    ]
    return orders, fills


@pytest.mark.slow
@pytest.mark.parametrize(
    "faults",
    [{}, {60: "drop"}, {20: "duplicate", 40: "updated", 50: "malformed", 70: "halt"}],
    ids=["steady", "disconnect", "faults"],
)
def test_live_run_trades_exactly_like_a_replay_of_the_same_bars(
    tmp_path: Path, db_url: str, faults: dict[int, str]
) -> None:
    bars = _bars()
    replay_home = _home(tmp_path, "replayed", 'path = ["data/bars.parquet"]')
    bars.to_parquet(replay_home / "data" / "bars.parquet", index=False)
    env = _env(db_url)
    done = subprocess.run(
        [ROBOHOST, "--home", str(replay_home), "run", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    engine = make_engine(db_url)
    with FakeAlpacaServer(bars, key_id=KEY_ID, secret_key=SECRET, minute_s=0.03, faults=faults) as server:
        data = f'source = "alpaca"\nsymbols = ["AAA", "BBB"]\nurl = "{server.url}"\nrest_url = "{server.rest_url}"'
        live_home = _home(tmp_path, "live", data)
        with (live_home / "stderr.txt").open("w") as err:
            proc = subprocess.Popen([ROBOHOST, "--home", str(live_home), "run"], env=env, stdout=err, stderr=err)
            try:
                deadline = time.monotonic() + 120
                while _events(engine, "live") < len(bars) and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)  # polling the database for progress, not waiting for an outcome
                assert proc.poll() is None, (live_home / "stderr.txt").read_text()
                assert _events(engine, "live") == len(bars), (live_home / "stderr.txt").read_text()
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=60) == 0, (live_home / "stderr.txt").read_text()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
        if "drop" in faults.values():
            assert server.connections >= 2, "the drop must have forced a reconnect"
    try:
        read = ReadModel(engine)
        live_run = read.latest_run("live")
        assert live_run is not None and live_run.mode == "live"
        replay_orders, replay_fills = _trading(read, "replayed")
        live_orders, live_fills = _trading(read, "live")
        assert len(replay_fills) > 10, "the scenario must trade"
        assert live_orders == replay_orders
        assert live_fills == replay_fills
        assert read.counts(live_run.id)["rejected_data"] == 0
        recorded = {e.type for e in read.journal(live_run.id)}
        if 20 in faults:  # each fault is recorded, and none reached the robot (the trading is the replay's)
            expected = {"duplicate_bar_dropped", "updated_bar_ignored", "trading_status"}
            assert {f"feed_{kind}" for kind in expected} <= recorded, recorded
    finally:
        engine.dispose()
    everything = "".join(p.read_text(errors="replace") for p in live_home.rglob("*") if p.is_file())
    assert SECRET not in everything, "the secret must never reach a file of the home"


@pytest.mark.slow
def test_a_live_run_killed_mid_stream_resumes_with_the_gap_filled(tmp_path: Path, db_url: str) -> None:
    """kill -9 in the middle of the stream; the next ``robohost run`` resumes the run, fills the bars it
    missed from the source's history, and ends with the same orders and fills as a replay."""
    bars = _bars()
    replay_home = _home(tmp_path, "replayed", 'path = ["data/bars.parquet"]')
    bars.to_parquet(replay_home / "data" / "bars.parquet", index=False)
    env = _env(db_url)
    done = subprocess.run(
        [ROBOHOST, "--home", str(replay_home), "run", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    engine = make_engine(db_url)
    with FakeAlpacaServer(bars, key_id=KEY_ID, secret_key=SECRET, minute_s=0.05) as server:
        data = f'source = "alpaca"\nsymbols = ["AAA", "BBB"]\nurl = "{server.url}"\nrest_url = "{server.rest_url}"'
        live_home = _home(tmp_path, "live", data)
        log = live_home / "stderr.txt"
        with log.open("w") as err:
            first = subprocess.Popen([ROBOHOST, "--home", str(live_home), "run"], env=env, stdout=err, stderr=err)
            try:
                deadline = time.monotonic() + 120
                while _events(engine, "live") < len(bars) // 3 and first.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.02)  # polling the database for progress, not waiting for an outcome
                assert first.poll() is None, log.read_text()
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=30)
            finally:
                if first.poll() is None:
                    first.kill()
            killed_at = _events(engine, "live")
            assert 0 < killed_at < len(bars)
            second = subprocess.Popen([ROBOHOST, "--home", str(live_home), "run"], env=env, stdout=err, stderr=err)
            try:
                deadline = time.monotonic() + 120
                while _events(engine, "live") < len(bars) and second.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert _events(engine, "live") == len(bars), log.read_text()
                second.send_signal(signal.SIGTERM)
                assert second.wait(timeout=60) == 0, log.read_text()
            finally:
                if second.poll() is None:
                    second.kill()
                    second.wait(timeout=30)
    try:
        read = ReadModel(engine)
        live_run = read.latest_run("live")
        assert live_run is not None
        assert [r.id for r in read.runs("live")] == [live_run.id], "the second process resumed the same run"
        assert [e.type for e in read.journal(live_run.id, ["run_started", "run_resumed"])] == [
            "run_started",
            "run_resumed",
        ]
        assert _trading(read, "live") == _trading(read, "replayed")
    finally:
        engine.dispose()
    assert "resuming run" in log.read_text()


def test_feeds_check_shows_what_the_live_source_sends(tmp_path: Path) -> None:
    bars = _bars()
    with FakeAlpacaServer(bars, key_id=KEY_ID, secret_key=SECRET, minute_s=0.02) as server:
        data = f'source = "alpaca"\nsymbols = ["AAA", "BBB"]\nurl = "{server.url}"\nrest_url = "{server.rest_url}"'
        home = _home(tmp_path, "checked", data)
        env = {k: v for k, v in _env(f"sqlite:///{home / 'robohost.db'}").items()}
        done = subprocess.run(
            [ROBOHOST, "--home", str(home), "feeds", "check", "--seconds", "20", "--bars", "10", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == "alpaca"
    assert sum(s["bars"] for s in report["symbols"].values()) == 10
    assert all(s["median_latency_ms"] is not None for s in report["symbols"].values())
    assert SECRET not in done.stdout + done.stderr


def test_feeds_check_fails_when_nothing_arrives(tmp_path: Path) -> None:
    with FakeAlpacaServer(_bars(), key_id=KEY_ID, secret_key="another-secret", minute_s=0.02) as server:
        data = f'source = "alpaca"\nsymbols = ["AAA"]\nurl = "{server.url}"\nrest_url = "{server.rest_url}"'
        home = _home(tmp_path, "refused", data)
        done = subprocess.run(
            [ROBOHOST, "--home", str(home), "feeds", "check", "--seconds", "5"],
            env=_env(f"sqlite:///{home / 'robohost.db'}"),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert done.returncode == 2, done.stderr  # the credentials were refused: a configuration error
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert SECRET not in done.stderr
