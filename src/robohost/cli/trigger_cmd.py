"""``robohost trigger``: ask the robot's server to run or stop it, or to do a chore now; ``robohost jobs``."""

from __future__ import annotations

import getpass
import socket
import time
from typing import Annotated

import typer
from rich.table import Table

from robohost.adapters.db.jobs import JobStore, RequestRow, RequestStore
from robohost.adapters.db.lease import read_lease
from robohost.bootstrap import App
from robohost.cli.common import HomeOption, JsonOption, RobotOption, console, iso, opened, print_json
from robohost.errors import StateError

trigger_app = typer.Typer(help="Ask the robot's server (robohost serve) to run or stop it, or to do a chore.")
WaitOption = Annotated[
    float, typer.Option("--wait", help="Wait up to this many seconds for the server's answer (0: don't wait).")
]
LIVE_HEARTBEAT_S = 30.0
"""A lease whose heartbeat is older than this is taken to have no live server behind it."""


@trigger_app.command("run")
def trigger_run(home: HomeOption = None, robot: RobotOption = None, wait: WaitOption = 0.0) -> None:
    """Run the robot now (modes manual and both; in auto mode only the schedule runs it)."""
    _request(home, robot, "run", None, wait)


@trigger_app.command("stop")
def trigger_stop(home: HomeOption = None, robot: RobotOption = None, wait: WaitOption = 0.0) -> None:
    """Stop the robot's session now (it stops at its next commit; 'trigger run' resumes it)."""
    _request(home, robot, "stop", None, wait)


@trigger_app.command("job")
def trigger_job(
    job: Annotated[str, typer.Argument(help="The chore: health, report, backup…")],
    home: HomeOption = None,
    robot: RobotOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Do one of the robot's chores now."""
    _request(home, robot, "job", job, wait)


def _request(home: HomeOption, robot: str | None, action: str, job: str | None, wait: float) -> None:
    with opened(home) as app:
        name, _ = app.home.robot(robot)
        by = f"{getpass.getuser()}@{socket.gethostname()} (cli)"
        store = RequestStore(app.engine)
        request_id = store.add(name, action, job, by, time.time_ns())
        what = f"{action} {job}" if job else action
        console.print(f"request {request_id}: {what} robot [bold]{name}[/bold]")
        if not _server_alive(app, name):
            console.print(
                "[yellow]no robohost serve is running this robot now: the request waits until one starts[/yellow]"
            )
        if wait > 0:
            answer = _await(store, request_id, wait)
            if answer is None:
                raise StateError(f"request {request_id} was not handled within {wait:g} s (is robohost serve up?)")
            console.print(f"{answer.handled_by}: {answer.outcome}")
            if (answer.outcome or "").startswith("refused"):
                raise StateError(f"request {request_id} refused: {answer.outcome}")


def _server_alive(app: App, robot: str) -> bool:
    row = read_lease(app.engine, robot)
    fresh = row is not None and time.time_ns() - row.heartbeat_at < LIVE_HEARTBEAT_S * 1e9
    return row is not None and row.released_at is None and row.holder.startswith("serve") and fresh


def _await(store: RequestStore, request_id: int, seconds: float) -> RequestRow | None:
    deadline = time.monotonic() + seconds
    while True:
        row = store.get(request_id)
        if row is not None and row.handled_at is not None:
            return row
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def jobs(
    home: HomeOption = None,
    robot: RobotOption = None,
    limit: Annotated[int, typer.Option("--limit", help="How many jobs, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The job history: planned and requested sessions and chores, and how each ended."""
    with opened(home) as app:
        name = app.home.robot(robot)[0] if robot or len(app.home.config.robots) == 1 else None
        rows = JobStore(app.engine).history(name, limit)
    if as_json:
        print_json([_row_dict(row) for row in rows])
        return
    table = Table(title="jobs (newest first)")
    for column in ("id", "robot", "job", "trigger", "planned", "started", "ended", "outcome", "tries", "note"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.id), r.robot, r.job, r.trigger, iso(r.planned_at), iso(r.started_at), iso(r.ended_at),
            r.outcome, str(r.attempts), (r.error or r.run_id or "")[:80],
        )  # fmt: skip
    console.print(table)


def _row_dict(row: object) -> dict[str, object]:
    return {name: getattr(row, name) for name in row.__slots__}  # type: ignore[attr-defined]
