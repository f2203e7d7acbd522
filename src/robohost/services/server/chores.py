"""The chores a robot's runner does on schedule besides trading: health checks, reports, backups.

A chore is a callable taking the robot's name and returning one line saying what it did; it raises to
fail (the runner retries per the schedule, then alerts). The composition root (``robohost.bootstrap``)
builds the set from what this installation has.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa

from robohost.adapters.db.queries import ReadModel
from robohost.errors import StateError
from robohost.services.status import robot_status

Chore = Callable[[str], str]
"""``chore(robot) -> summary``; raises ``ChoreError`` (or anything) when it fails."""

MIN_FREE_DISK = 0.05
"""The health chore fails when the robot home's file system has less than this fraction free."""


class ChoreError(Exception):
    """A chore could not do its job; the message says why."""


class UnavailableChore:
    """A chore this installation cannot do yet: it is recorded as skipped with the reason, never faked."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def health_chore(engine: sa.Engine, read: ReadModel, home: Path) -> Chore:
    """Check what a runner can check of its own: the database answers, disk space, the robot's state."""

    def check(robot: str) -> str:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        usage = shutil.disk_usage(home)
        free = usage.free / usage.total if usage.total else 0.0
        if free < MIN_FREE_DISK:
            raise ChoreError(f"disk of {home} is {1 - free:.1%} full (less than {MIN_FREE_DISK:.0%} free)")
        status = robot_status(read, robot)
        if status.state in ("halted", "degraded"):
            raise ChoreError(f"robot {robot} is {status.state}: {status.reason}")
        return f"database answers; disk {free:.1%} free; robot {status.state}"

    return check


def report_chore(
    read: ReadModel,
    reports_dir: Path,
    days: int | None = None,
    today: Callable[[], date] = date.today,
    sign_in: Path | None = None,
) -> Chore:
    """Write the P&L report of the robot's latest run into the home's ``reports/`` folder.

    ``days``: only the last so many days (the weekly report); a period without trading is said, not failed.
    ``sign_in``: the home whose key signs the report.
    """

    def report(robot: str) -> str:
        from robohost.services.reports.pnl import pnl_report  # matplotlib, reportlab: only when used

        if read.latest_run(robot) is None:
            return "no run to report on yet"
        start = today() - timedelta(days=days) if days else None
        try:
            written = pnl_report(read, robot, reports_dir, start=start, sign_in=sign_in)
        except StateError as exc:
            if start is None:
                raise
            return f"nothing to report since {start}: {exc}"
        return "wrote " + ", ".join(path.name for path in written.files.values())

    return report


def known_chores(chores: Mapping[str, Chore | UnavailableChore]) -> list[str]:
    """The chore names, sorted (for messages)."""
    return sorted(chores)
