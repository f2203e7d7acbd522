"""``robohost run``: a paper session now, with a progress bar for replays."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from robohost.adapters.db.lease import read_lease
from robohost.bootstrap import ReplayOverrides
from robohost.cli.common import HomeOption, JsonOption, RobotOption, console, opened, print_json
from robohost.errors import ConfigError, LeaseError
from robohost.services.paper import RunOutcome, default_database_note


def run(
    home: HomeOption = None,
    robot: RobotOption = None,
    resume: Annotated[bool, typer.Option("--resume", help="Resume the unfinished run; fail if there is none.")] = False,
    new: Annotated[bool, typer.Option("--new", help="Abandon any unfinished run and start afresh.")] = False,
    speed: Annotated[str | None, typer.Option("--speed", help="Replay pace: max, 1x, 60x...")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Replay from this date/time (inclusive).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Replay up to this date/time (exclusive).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Paper-trade the robot now; an unfinished run (after a crash) is resumed automatically."""
    if resume and new:
        raise ConfigError("--resume and --new exclude each other")
    mode = "resume" if resume else "new" if new else "auto"
    with opened(home) as app:
        service = app.paper(robot, ReplayOverrides(speed=speed, start=start, end=end))
        lease = app.lease(service.robot, "run")
        if not lease.try_acquire():
            holder = read_lease(app.engine, service.robot)
            who = holder.holder if holder is not None else "another process"
            raise LeaseError(
                f"robot {service.robot!r} is being run by {who}: one robot never runs twice at once; "
                f"ask that server with 'robohost trigger run|stop --robot {service.robot}'"
            )
        previous = signal.getsignal(signal.SIGTERM)

        def stop(_sig: int, _frame: FrameType | None) -> None:
            service.stop()

        signal.signal(signal.SIGTERM, stop)
        try:
            if progress and not as_json and console.is_terminal:
                with Progress(
                    TextColumn(f"[bold]{service.robot}[/bold]"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=True,
                ) as bar:
                    task = bar.add_task("replay", total=None)
                    outcome = service.run(mode, lambda done, total: bar.update(task, completed=done, total=total))
            else:
                outcome = service.run(mode)
        finally:
            signal.signal(signal.SIGTERM, previous)
            lease.release()
        where = default_database_note(app.home.database_url)
    if as_json:
        print_json({**_outcome_dict(outcome), "database": where})
        return
    _print_outcome(outcome, where)


def _outcome_dict(o: RunOutcome) -> dict[str, object]:
    return {
        "run_id": o.run_id,
        "robot": o.robot,
        "status": o.status,
        "resumed_after_event": o.resumed_from,
        "events": o.result.events_processed,
        "rejected_market_data": o.result.rejected_count,
        "halt_reason": o.result.halt_reason,
        **o.summary.as_dict(),
    }


def _print_outcome(o: RunOutcome, where: str) -> None:
    s = o.summary
    table = Table(title=f"robot {o.robot} — run {o.run_id} {o.status}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    if o.resumed_from is not None:
        table.add_row("resumed after event", str(o.resumed_from))
    table.add_row("events", f"{o.result.events_processed:,}")
    table.add_row("rejected market data", f"{o.result.rejected_count:,}")
    table.add_row("trades (round trips)", f"{s.round_trips:,}")
    table.add_row("fills", f"{s.fills:,}")
    table.add_row("fees", f"{s.fees:,.2f}")
    table.add_row("starting equity", f"{s.starting_equity:,.2f}")
    table.add_row("final equity", f"{s.final_equity:,.2f}")
    table.add_row("return", f"{s.total_return:+.2%}")
    table.add_row("max drawdown", f"{s.max_drawdown:.2%}")
    console.print(table)
    if o.result.halt_reason:
        console.print(f"[red]halted:[/red] {o.result.halt_reason}")
    console.print(f"database: {where}")
