"""The chores a robot's runner does on schedule besides trading: health checks, reports, backups.

A chore is a callable taking the robot's name and returning one line saying what it did; it raises to
fail (the runner retries per the schedule, then alerts). The composition root (``robohost.bootstrap``)
builds the set from what this installation has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

from robohost.adapters.db.queries import ReadModel
from robohost.errors import StateError
from robohost.services.health import EXIT_CODES, Check, summary, worst

Chore = Callable[[str], str]
"""``chore(robot) -> summary``; raises ``ChoreError`` (or anything) when it fails."""


class ChoreError(Exception):
    """A chore could not do its job; the message says why."""


class UnavailableChore:
    """A chore this installation cannot do yet: it is recorded as skipped with the reason, never faked."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def health_chore(
    measure: Callable[[str], Sequence[Check]], report: Callable[[Sequence[Check]], None] | None = None
) -> Chore:
    """Run the capacity and health checks (``robohost.services.health``) for the robot and the machine.

    ``report`` gets every check (the alerts raise the bad ones and clear the good ones; the metrics note them).
    At warn the chore still succeeds, saying what is wrong; at critical it fails (the runner records it).
    """

    def check(robot: str) -> str:
        checks = measure(robot)
        if report is not None:
            report(checks)
        text = summary(checks)
        if EXIT_CODES[worst(checks)] >= EXIT_CODES["critical"]:
            raise ChoreError(text[:2000])
        return text

    return check


def report_chore(
    read: ReadModel,
    reports_dir: Path,
    days: int | None = None,
    today: Callable[[], date] = date.today,
    before: Callable[[str], None] | None = None,
    sign_in: Path | None = None,
) -> Chore:
    """Write the P&L report of the robot's latest run into the home's ``reports/`` folder.

    ``days``: only the last so many days (the weekly report); a period without trading is said, not failed.
    ``before(robot)`` runs first (the daily P&L notification, when it is switched on). ``sign_in``: the home
    whose key signs the report.
    """

    def report(robot: str) -> str:
        from robohost.services.reports.pnl import pnl_report  # matplotlib, reportlab: only when used

        if before is not None:
            before(robot)
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
