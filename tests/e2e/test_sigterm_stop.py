"""SIGTERM stops a run cleanly at its next commit, and the next ``robohost run`` finishes it exactly.

Runs the real ``robohost`` command on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.feeds.synthetic import write_synthetic

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
BARS = 20_000

CONFIG = """
[robots.{name}]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
commit_every = 200
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.{name}.data]
path = ["data/bars.parquet"]
speed = "{speed}"
"""


def _home(tmp_path: Path, name: str, speed: str) -> Path:
    home = tmp_path / name
    (home / "data").mkdir(parents=True)
    write_synthetic(home / "data" / "bars.parquet", BARS, symbol="SYN", seed=5)
    (home / "robohost.toml").write_text(CONFIG.format(name=name, speed=speed))
    return home


def _progress(engine: sa.Engine, robot: str) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT max(events_processed) FROM runs WHERE robot = :robot AND status = 'running'")
        return int(conn.execute(query, {"robot": robot}).scalar() or 0)


def test_sigterm_stops_at_a_commit_and_the_next_run_resumes_it(tmp_path: Path, db_url: str) -> None:
    env = {**os.environ, "ROBOHOST_DATABASE_URL": db_url}
    reference = _home(tmp_path, "ref", "max")
    done = subprocess.run(
        [ROBOHOST, "--home", str(reference), "run", "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    expected = json.loads(done.stdout)

    home = _home(tmp_path, "paced", "20000x")  # minute bars at 20,000x: about 3 bars per millisecond
    engine = make_engine(db_url)
    try:
        with (home / "stderr.txt").open("w") as err:
            proc = subprocess.Popen(
                [ROBOHOST, "--home", str(home), "run", "--json"], env=env, stdout=subprocess.PIPE, stderr=err, text=True
            )
            deadline = time.monotonic() + 120
            while _progress(engine, "paced") < 1000 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)  # polling the database for progress, not waiting for an outcome
            assert proc.poll() is None, (home / "stderr.txt").read_text()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, (home / "stderr.txt").read_text()
        stopped = json.loads(out)
        assert stopped["status"] == "stopped"
        assert 1000 <= stopped["events"] < BARS
        read = ReadModel(engine)
        state = read.robot_state("paced")
        assert state is not None and state.status == "idle" and "resumes it" in (state.reason or "")
        run = read.unfinished_run("paced")
        assert run is not None and run.last_seq == stopped["events"] - 1

        fast = home / "robohost.toml"
        fast.write_text(fast.read_text().replace('speed = "20000x"', 'speed = "max"'))
        resumed = subprocess.run(
            [ROBOHOST, "--home", str(home), "run", "--json"], env=env, capture_output=True, text=True
        )
        assert resumed.returncode == 0, resumed.stderr
        finished = json.loads(resumed.stdout)
    finally:
        engine.dispose()
    assert finished["status"] == "completed"
    assert finished["resumed_after_event"] == stopped["events"] - 1
    for key in ("final_equity", "round_trips", "fills", "fees", "equity_points", "max_drawdown"):
        assert finished[key] == expected[key], key
