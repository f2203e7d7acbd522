"""``robohost schedule show`` and ``robohost schedule export --cron | --systemd``: the robots' planned jobs.

Both read only the configuration (no database). The hidden option ``--now ISO`` fixes the current time
(tests; see DEVELOPERS.md); ``--local-zone`` fixes the server's zone.
"""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from robohost.cli.common import HomeOption, JsonOption, RobotOption, console, print_json, resolve_home
from robohost.config.loader import Home, load_home
from robohost.engine.clock import WallClock
from robohost.errors import ConfigError
from robohost.services.scheduling.export import export_cron, export_systemd
from robohost.services.scheduling.plan import SESSION, PlannedJob, Schedule
from robohost.services.scheduling.zones import local_zone, zone_named

schedule_app = typer.Typer(
    help="The robots' schedules: what runs when, and exports for the system's cron or systemd timers.",
    no_args_is_help=True,
)

NowOption = Annotated[
    str | None,
    typer.Option("--now", hidden=True, help="Take this ISO time as now (for tests); naive times are UTC."),
]
LocalZoneOption = Annotated[
    str | None,
    typer.Option("--local-zone", help="The server's IANA time zone (default: the system's).", show_default=False),
]


def parse_now(text: str | None) -> datetime:
    """The time given by ``--now`` (naive: UTC), else the wall clock; aware, in UTC."""
    if text is None:
        return datetime.fromtimestamp(WallClock().now_ns() / 1e9, UTC)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--now: expected an ISO time like 2026-11-27T14:00:00Z, got {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _local(name: str | None) -> ZoneInfo:
    return zone_named(name) if name else local_zone()


def load_schedules(home: Path | None, robot: str | None) -> tuple[Home, dict[str, Schedule]]:
    """The home and the schedules of its robots (or of the one named ``robot``)."""
    loaded = load_home(resolve_home(home))
    if robot is not None:
        name, cfg = loaded.robot(robot)
        return loaded, {name: Schedule.for_robot(name, cfg)}
    return loaded, {name: Schedule.for_robot(name, cfg) for name, cfg in loaded.config.robots.items()}


def _when(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return local.strftime("%a %Y-%m-%d %H:%M" + (":%S" if local.second else "") + " %Z")


def _until(job: PlannedJob, zone: ZoneInfo) -> str:
    if job.job != SESSION:
        return ""
    if job.until is None:
        return "(continuous)"
    end, start = job.until.astimezone(zone), job.at.astimezone(zone)
    return end.strftime("%H:%M %Z") if end.date() == start.date() else _when(job.until, zone)


def _job_json(job: PlannedJob, exchange: ZoneInfo, local: ZoneInfo) -> dict[str, Any]:
    def times(value: datetime | None, prefix: str) -> dict[str, str | None]:
        return {
            prefix: None if value is None else value.isoformat().replace("+00:00", "Z"),
            f"{prefix}_exchange": None if value is None else value.astimezone(exchange).isoformat(),
            f"{prefix}_local": None if value is None else value.astimezone(local).isoformat(),
        }

    return {"robot": job.robot, "job": job.job, **times(job.at, "at"), **times(job.until, "until"), "key": job.key}


@schedule_app.command("show")
def show(
    home: HomeOption = None,
    robot: RobotOption = None,
    count: Annotated[int, typer.Option("--count", help="Show the next N runs of each job.", min=1)] = 10,
    local_zone_name: LocalZoneOption = None,
    as_json: JsonOption = False,
    now: NowOption = None,
) -> None:
    """The next runs of each robot's jobs, in the exchange's time and local time; sessions with their end."""
    moment = parse_now(now)
    local = _local(local_zone_name)
    _, schedules = load_schedules(home, robot)
    jobs = sorted(
        (job for schedule in schedules.values() for job in schedule.next_jobs(moment, count, per_job=True)),
        key=lambda job: (job.at, job.robot, job.job),
    )
    open_sessions = {name: schedule.session_at(moment) for name, schedule in schedules.items()}
    robots = []
    for name, schedule in schedules.items():
        open_session = open_sessions[name]
        robots.append(
            {
                "robot": name,
                "mode": schedule.mode,
                "calendar": schedule.calendar.name,
                "zone": schedule.zone.key,
                "open_session": None if open_session is None else _job_json(open_session, schedule.zone, local),
            }
        )
    if as_json:
        print_json(
            {
                "now": moment.isoformat().replace("+00:00", "Z"),
                "local_zone": local.key,
                "robots": robots,
                "jobs": [_job_json(job, schedules[job.robot].zone, local) for job in jobs],
            }
        )
        return
    for name, schedule in schedules.items():
        session = open_sessions[name]
        state = {
            "auto": "sessions by schedule only",
            "manual": "sessions only when a person asks (robohost trigger run)",
            "both": "sessions by schedule or when a person asks",
        }[schedule.mode]
        calendar = f"{schedule.calendar.name} ({schedule.zone.key})"
        line = f"[bold]{name}[/bold]: calendar {calendar}, mode {schedule.mode}: {state}"
        if session is not None:
            line += f"; a session is open now, until {_until(session, schedule.zone)}"
        console.print(line)
    table = Table(
        "robot",
        "job",
        "exchange time",
        f"local time ({local.key})",
        "until",
        title=f"next {count} runs of each job after {_when(moment, local)}",
    )
    for job in jobs:
        zone = schedules[job.robot].zone
        table.add_row(job.robot, job.job, _when(job.at, zone), _when(job.at, local), _until(job, zone))
    console.print(table)


def _robohost_executable() -> str:
    beside = Path(sys.executable).with_name("robohost")
    return str(beside) if beside.exists() else shutil.which("robohost") or "robohost"


@schedule_app.command("export")
def export(
    home: HomeOption = None,
    robot: RobotOption = None,
    cron: Annotated[bool, typer.Option("--cron", help="Write crontab lines.")] = False,
    systemd: Annotated[bool, typer.Option("--systemd", help="Write systemd .service and .timer units.")] = False,
    days: Annotated[
        int, typer.Option("--days", help="Plan market-relative times this many days ahead.", min=1, max=366)
    ] = 31,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the files into this folder (default: print them).")
    ] = None,
    command: Annotated[
        str | None,
        typer.Option("--command", help="The robohost executable to call (default: this one).", show_default=False),
    ] = None,
    local_zone_name: LocalZoneOption = None,
    now: NowOption = None,
) -> None:
    """Write the schedules for cron or systemd timers that call 'robohost trigger'; re-export before they run out."""
    if cron == systemd:
        raise ConfigError("choose one of --cron or --systemd")
    moment = parse_now(now)
    loaded, schedules = load_schedules(home, robot)
    executable = command or _robohost_executable()
    if cron:
        text = export_cron(
            schedules, home=loaded.path, command=executable, now=moment, days=days, local_zone=_local(local_zone_name)
        )
        if out is None:
            typer.echo(text, nl=False)
            return
        out.mkdir(parents=True, exist_ok=True)
        path = out / "robohost.crontab"
        path.write_text(text)
        typer.echo(f"wrote {path}: merge it into the crontab of the user that runs robohost (crontab -e)")
        return
    files = export_systemd(schedules, home=loaded.path, command=executable, now=moment, days=days)
    if out is None:
        for name, text in sorted(files.items()):
            typer.echo(f"# ---- {name} ----\n{text}")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(files.items()):
        (out / name).write_text(text)
    timers = " ".join(sorted(name for name in files if name.endswith(".timer")))
    typer.echo(
        f"wrote {len(files)} files into {out}: copy them to /etc/systemd/system, then run "
        f"'systemctl daemon-reload && systemctl enable --now {timers}'"
    )
