"""Leases: one holder per robot at a time, freed by release or by the holder's death, on both backends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import sqlalchemy as sa

from robohost.adapters.db.lease import read_lease, robot_lease
from robohost.adapters.db.tables import leases


def test_second_holder_is_refused_until_release(engine: sa.Engine) -> None:
    first = robot_lease(engine, "bot", "first")
    second = robot_lease(engine, "bot", "second")
    other_robot = robot_lease(engine, "other", "second")
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert other_robot.try_acquire(), "leases are per robot"
        assert first.check()
        row = read_lease(engine, "bot")
        assert row is not None and row.holder == "first" and row.released_at is None
        first.release()
        assert not first.held and not first.check()
        assert second.try_acquire()
        assert second.previous is not None and second.previous.holder == "first"
        assert second.previous.released_at is not None
        row = read_lease(engine, "bot")
        assert row is not None and row.holder == "second"
    finally:
        for lease in (first, second, other_robot):
            lease.release()


def test_heartbeat_moves_forward(engine: sa.Engine) -> None:
    lease = robot_lease(engine, "bot", "me")
    try:
        assert lease.try_acquire()
        with engine.begin() as conn:
            conn.execute(sa.update(leases).values(heartbeat_at=1))
        assert lease.check()
        after = read_lease(engine, "bot")
        assert after is not None and after.heartbeat_at > 1
    finally:
        lease.release()


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from robohost.adapters.db.engine import make_engine
    from robohost.adapters.db.lease import robot_lease
    lease = robot_lease(make_engine(sys.argv[1]), "bot", "child")
    assert lease.try_acquire()
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_the_lease_is_freed_when_its_holder_is_killed(engine: sa.Engine) -> None:
    url = engine.url.render_as_string(hide_password=False)
    child = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdout=subprocess.PIPE, text=True)
    waiter = robot_lease(engine, "bot", "waiter")
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert not waiter.try_acquire()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        deadline = time.monotonic() + 10
        while not waiter.try_acquire():
            assert time.monotonic() < deadline, "the dead holder's lease was not freed within 10 s"
            time.sleep(0.05)
        assert waiter.previous is not None and waiter.previous.holder == "child"
        assert waiter.previous.released_at is None, "a killed holder never released: the row shows it"
    finally:
        waiter.release()
        if child.stdout is not None:
            child.stdout.close()
        if child.poll() is None:
            child.kill()
            child.wait()
