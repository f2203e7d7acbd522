"""``robohost serve`` as real processes: systemd readiness, one runner per robot, takeover after kill -9,
a clean SIGTERM, and the paper run ending exactly as an uninterrupted one (on SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.jobs import JobStore
from robohost.adapters.db.lease import read_lease
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.feeds.synthetic import write_synthetic

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
BARS = 20_000
CONFIG = """
[serve]
tick_s = 0.2
stop_timeout_s = 20

[robots.{name}]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"
commit_every = 200
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.{name}.data]
path = ["data/bars.parquet"]
speed = "{speed}"

[robots.{name}.schedule]
mode = "manual"
calendar = "24/7"

[robots.{name}.schedule.jobs]
health = "off"
backup = "off"
report = "off"
"""


def _home(tmp_path: Path, name: str, speed: str) -> Path:
    home = tmp_path / name
    (home / "data").mkdir(parents=True)
    write_synthetic(home / "data" / "bars.parquet", BARS, symbol="SYN", seed=5)
    (home / "robohost.toml").write_text(CONFIG.format(name=name, speed=speed))
    return home


class Notifications:
    """A stand-in for systemd's notification socket: a thread collects what the service sends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.arrived = threading.Condition()
        self.open = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while self.open:
            try:
                message = self.sock.recv(4096).decode()
            except (TimeoutError, OSError):
                continue
            with self.arrived:
                self.messages.append(message)
                self.arrived.notify_all()

    def wait_for(self, field: str, timeout: float = 60) -> None:
        with self.arrived:
            found = self.arrived.wait_for(lambda: any(field in m.split("\n") for m in self.messages), timeout)
        assert found, f"no {field} within {timeout} s; got {self.messages[-5:]}"

    def close(self) -> None:
        self.open = False
        self.reader.join(timeout=5)
        self.sock.close()


@contextmanager
def _serve(home: Path, env: dict[str, str], name: str) -> Iterator[tuple[subprocess.Popen[str], Notifications]]:
    notes = Notifications(home / f"notify-{name}.sock")
    log = (home / f"serve-{name}.log").open("w")
    proc = subprocess.Popen(
        [ROBOHOST, "--home", str(home), "serve"],
        env={**env, "NOTIFY_SOCKET": str(notes.path), "WATCHDOG_USEC": "2000000"},
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc, notes
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        log.close()
        notes.close()


def _until(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # polling the database for a state change, not waiting for an outcome


def _progress(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT max(events_processed) FROM runs WHERE robot = 'bot'")
        return int(conn.execute(query).scalar() or 0)


def _fills(read: ReadModel, robot: str) -> list[tuple[object, ...]]:
    return [(f.symbol, f.side, f.qty, f.price, f.fee, f.ts) for f in read.fills(robot)]


def test_serve_takes_over_after_kill_and_stops_cleanly_on_sigterm(tmp_path: Path, db_url: str) -> None:
    env = {**os.environ, "ROBOHOST_DATABASE_URL": db_url}
    reference = _home(tmp_path, "ref", "max")
    done = subprocess.run(
        [ROBOHOST, "--home", str(reference), "run", "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    expected = json.loads(done.stdout)

    home = _home(tmp_path, "bot", "50000x")  # minute bars at 50,000x: about 0.8 bar per millisecond
    engine = make_engine(db_url)
    read, jobs = ReadModel(engine), JobStore(engine)
    try:
        with _serve(home, env, "a") as (first, first_notes), _serve(home, env, "b") as (second, second_notes):
            first_notes.wait_for("READY=1")
            second_notes.wait_for("READY=1")
            first_notes.wait_for("WATCHDOG=1")
            _until(lambda: (row := read_lease(engine, "bot")) is not None and row.released_at is None, "a holder")
            holder = read_lease(engine, "bot")
            assert holder is not None
            active, standby = (first, second) if f"pid {first.pid}@" in holder.holder else (second, first)

            trigger = subprocess.run([ROBOHOST, "--home", str(home), "trigger", "run", "--wait", "30"], env=env,
                                     capture_output=True, text=True)  # fmt: skip
            assert trigger.returncode == 0, trigger.stderr
            assert "started session job" in trigger.stdout
            _until(lambda: _progress(engine) >= 1000, "the session to make progress", 120)

            by_hand = subprocess.run([ROBOHOST, "--home", str(home), "run"], env=env, capture_output=True, text=True)
            assert by_hand.returncode == 8 and "being run by serve pid" in by_hand.stderr

            os.kill(active.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            _until(lambda: f"pid {standby.pid}@" in (read_lease(engine, "bot") or holder).holder, "the takeover", 30)
            takeover_s = time.monotonic() - killed_at
            progress_at_takeover = _progress(engine)
            _until(lambda: _progress(engine) >= progress_at_takeover + 1000, "the resumed session to progress")

            standby.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            assert standby.wait(timeout=30) == 0
            stop_s = time.monotonic() - stopped_at
        row = read_lease(engine, "bot")
        assert row is not None and row.released_at is not None, "a clean stop releases the lease"
        session = jobs.newest("bot", "session")
        assert session is not None and session.outcome == "interrupted" and session.attempts == 2
        assert read.unfinished_run("bot") is not None

        config = home / "robohost.toml"
        config.write_text(config.read_text().replace('speed = "50000x"', 'speed = "max"'))  # finish quickly
        with _serve(home, env, "c") as (third, third_notes):
            third_notes.wait_for("READY=1")
            _until(
                lambda: (s := jobs.newest("bot", "session")) is not None and s.outcome == "ok", "the run to end", 120
            )
            third.send_signal(signal.SIGTERM)
            assert third.wait(timeout=30) == 0
            third_notes.wait_for("STOPPING=1")
        session = jobs.newest("bot", "session")
        assert session is not None and session.attempts == 3 and session.run_id is not None
        run = read.run(session.run_id)
        assert run is not None and run.status == "completed"
        assert _fills(read, "bot") == _fills(read, "ref") and len(_fills(read, "bot")) == expected["fills"]
        print(f"takeover after kill -9: {takeover_s:.2f} s; SIGTERM to exit: {stop_s:.2f} s")
        assert takeover_s < 10 and stop_s < 20
    finally:
        engine.dispose()
