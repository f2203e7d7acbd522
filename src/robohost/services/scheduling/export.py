"""Schedules as crontab lines or systemd timers that call ``robohost trigger``, for the system's own scheduler.

Each planned action becomes a command: ``robohost --home HOME trigger run --robot NAME`` at a session's
start, ``… trigger stop --robot NAME`` at its end, ``… trigger job JOB --robot NAME`` for a chore.
``robohost trigger`` asks the robot's server, which accepts ``run`` in modes ``manual`` and ``both`` only:
session starts and stops are written for those modes (``manual`` is the one where the system's scheduler,
not the server, decides when the robot trades), none for ``auto``. Chores are written in every mode.

Market-relative times move with holidays, early closes and daylight-saving changes, so they are written
as the concrete planned times of a window (``days``, from ``now``) and must be re-exported before the
window runs out (the files say when). A session started by cron is written the same way, since it only
runs on trading days. A cron chore is written once as a rule where the target can say exactly the same:

- crontab: the expression itself when it uses plain cron syntax, does not restrict both the day of the
  month and the day of the week (cron takes either, APScheduler both), and the server's zone is the
  exchange's — or, for an expression of minutes only (``*/5 * * * *``), the two zones are whole hours
  apart throughout the window. Otherwise its planned times, one line each.
- systemd: an ``OnCalendar=`` spec in the exchange's zone (``Mon..Fri *-*-* 09:30:00 America/New_York``),
  for the same plain syntax; otherwise its planned times.

Explicit crontab lines are in the server's zone (``local_zone``), carry a guard on the year (a line
``30 9 27 11 *`` would otherwise run again a year later) and a ``sleep`` for times that are not on a whole
minute. Explicit systemd times are in the exchange's zone, or in UTC when the local time is ambiguous
(the repeated hour when clocks go back).

Imports the schedule (``plan``) and the standard library only.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from robohost.services.scheduling.expressions import CronTime
from robohost.services.scheduling.plan import JobRule, Schedule

_ATOM = r"(?:\d+|[a-z]{3})"
_PLAIN_PART = re.compile(rf"^(?:\*(?:/\d+)?|{_ATOM}(?:-{_ATOM}(?:/\d+)?)?)$")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_OPEN_SESSION_LOOKBACK = timedelta(days=4)


@dataclass(frozen=True, slots=True)
class TriggerAction:
    """One thing the system's scheduler must call: a ``robohost trigger`` command, and when."""

    robot: str
    unit: str
    """The systemd unit name (without suffix), e.g. ``robohost-bot-backup``."""
    args: tuple[str, ...]
    """The arguments after ``robohost --home HOME``."""
    description: str
    rule: JobRule
    """The job's rule (for a session stop: the session's)."""
    cron: CronTime | None
    """The cron expression of a chore (written as a rule where possible); None for explicit times only."""
    times: tuple[datetime, ...]
    """The UTC times in the export window; empty for a cron chore (``action_times`` plans them on demand)."""


def trigger_actions(schedule: Schedule, start: datetime, end: datetime) -> list[TriggerAction]:
    """What to call for ``schedule`` in ``[start, end)``: session starts and stops (unless ``auto``), then chores.

    A ``ConfigError`` if the window goes past what the schedule's calendar knows.
    """
    schedule.check_plannable(end)
    robot = schedule.robot
    actions: list[TriggerAction] = []
    if schedule.manual_allowed:  # the server refuses 'trigger run' in auto mode
        rule = schedule.session_rule
        sessions = list(schedule.occurrences(rule, start - _OPEN_SESSION_LOOKBACK, end))
        actions.append(
            TriggerAction(
                robot,
                f"robohost-{robot}-session-start",
                ("trigger", "run", "--robot", robot),
                f"start the session of robot {robot} ({rule.when})",
                rule,
                None,
                tuple(job.at for job in sessions if job.at >= start),
            )
        )
        if rule.end is not None:
            stops = tuple(job.until for job in sessions if job.until is not None and start <= job.until < end)
            actions.append(
                TriggerAction(
                    robot,
                    f"robohost-{robot}-session-stop",
                    ("trigger", "stop", "--robot", robot),
                    f"stop the session of robot {robot} ({rule.end})",
                    rule,
                    None,
                    stops,
                )
            )
    for chore in schedule.chore_rules:
        cron = chore.when if isinstance(chore.when, CronTime) else None
        times = () if cron else tuple(job.at for job in schedule.occurrences(chore, start, end))
        actions.append(
            TriggerAction(
                robot,
                f"robohost-{robot}-{chore.job}",
                ("trigger", "job", chore.job, "--robot", robot),
                f"{chore.job} of robot {robot} ({chore.when})",
                chore,
                cron,
                times,
            )
        )
    return actions


def action_times(action: TriggerAction, schedule: Schedule, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """The action's UTC times in ``[start, end)`` (planned now for a cron chore)."""
    if action.cron is None:
        return action.times
    return tuple(job.at for job in schedule.occurrences(action.rule, start, end))


def command_line(command: str, home: Path, args: tuple[str, ...]) -> str:
    """``COMMAND --home HOME ARGS…`` quoted for a shell."""
    return shlex.join([command, "--home", str(home), *args])


# --- crontab ---------------------------------------------------------------------------------------------


def plain_cron(cron: CronTime) -> bool:
    """True if every field is plain cron syntax (numbers, 3-letter names, ``*``, ranges, steps, lists)."""
    return all(_PLAIN_PART.match(part) for value in cron.fields.values() for part in value.split(","))


def cron_as_is(cron: CronTime, exchange: ZoneInfo, local: ZoneInfo, start: datetime, end: datetime) -> bool:
    """Whether the system's cron, in zone ``local``, runs ``cron`` exactly when robohost plans it in ``exchange``."""
    fields = cron.fields
    if not plain_cron(cron) or (fields["day"] != "*" and fields["day_of_week"] != "*"):
        return False
    if exchange.key == local.key:
        return True
    if any(fields[name] != "*" for name in ("hour", "day", "month", "day_of_week")):
        return False
    t = start
    while t <= end:  # minutes only: the same wherever the two zones are whole hours apart
        if (_offset(t, local) - _offset(t, exchange)) % timedelta(hours=1):
            return False
        t += timedelta(hours=1)
    return True


def _offset(at: datetime, zone: ZoneInfo) -> timedelta:
    return at.astimezone(zone).utcoffset() or timedelta(0)


def export_cron(
    schedules: Mapping[str, Schedule],
    *,
    home: Path,
    command: str,
    now: datetime,
    days: int,
    local_zone: ZoneInfo,
) -> str:
    """A crontab for ``schedules``: explicit lines for the next ``days`` days in ``local_zone``, rules where exact."""
    start, end = now.astimezone(UTC), now.astimezone(UTC) + timedelta(days=days)
    runs_out = end.astimezone(local_zone)
    lines = [
        f"# robohost schedule for {home}: crontab lines that call 'robohost trigger'.",
        f"# Exported {start.astimezone(local_zone):%Y-%m-%d %H:%M %Z} by 'robohost schedule export --cron'.",
        f"# Times are in this server's time zone, {local_zone.key} (cron's); robohost plans in the exchange's.",
        f"# Lines with a date are planned times and run out on {runs_out:%Y-%m-%d %H:%M %Z}: re-export and",
        "# reinstall before then (holidays, early closes and daylight-saving changes move them).",
    ]
    for robot, schedule in schedules.items():
        lines += ["", f"# robot {robot}: calendar {schedule.calendar.name} ({schedule.zone.key}), mode {schedule.mode}"]
        if not schedule.manual_allowed:
            lines.append("# no session lines: in mode auto the server starts sessions itself and refuses 'trigger run'")
        for action in trigger_actions(schedule, start, end):
            cmd = command_line(command, home, action.args).replace("%", "\\%")
            lines.append(f"# {action.description}")
            if action.cron is not None and cron_as_is(action.cron, schedule.zone, local_zone, start, end):
                lines.append(f"{action.cron.expression} {cmd}")
                continue
            lines += dict.fromkeys(_cron_line(t, local_zone, cmd) for t in action_times(action, schedule, start, end))
    return "\n".join(lines) + "\n"


def _cron_line(at: datetime, zone: ZoneInfo, cmd: str) -> str:
    local = at.astimezone(zone)
    sleep = f"sleep {local.second} && " if local.second else ""
    return f'{local.minute} {local.hour} {local.day} {local.month} * [ "$(date +\\%Y)" = {local.year} ] && {sleep}{cmd}'


# --- systemd ---------------------------------------------------------------------------------------------


def systemd_calendar(cron: CronTime, zone: ZoneInfo) -> str | None:
    """The systemd ``OnCalendar=`` spec that matches ``cron`` in ``zone``; None where there is none as plain."""
    if not plain_cron(cron):
        return None
    fields = cron.fields
    minute = _systemd_field(fields["minute"], 0)
    hour = _systemd_field(fields["hour"], 0)
    day = _systemd_field(fields["day"], 1)
    month = _systemd_field(fields["month"], 1)
    weekday = _systemd_weekdays(fields["day_of_week"])
    if None in (minute, hour, day, month, weekday):
        return None
    return f"{weekday + ' ' if weekday else ''}*-{month}-{day} {hour}:{minute}:00 {zone.key}"


def _number(atom: str) -> int:
    return _MONTHS[atom] if atom in _MONTHS else int(atom)


def _systemd_field(value: str, lowest: int) -> str | None:
    if value == "*":
        return "*"
    out: list[str] = []
    for part in value.split(","):
        span, _, step = part.partition("/")
        first, dash, last = span.partition("-")
        if span == "*":
            out.append(f"{lowest:02d}/{step}")
        elif not first.isdigit() and first not in _MONTHS:
            return None
        elif step and dash:
            out += [f"{v:02d}" for v in range(_number(first), _number(last) + 1, int(step))]
        elif dash:
            out.append(f"{_number(first):02d}..{_number(last):02d}")
        else:
            out.append(f"{_number(first):02d}")
    return ",".join(out)


def _systemd_weekdays(value: str) -> str | None:
    if value == "*":
        return ""
    out: list[str] = []
    for part in value.split(","):
        first, dash, last = part.partition("-")
        if "/" in part or first not in _WEEKDAYS or (dash and last not in _WEEKDAYS):
            return None
        out.append(first.title() + (f"..{last.title()}" if dash else ""))
    return ",".join(out)


def systemd_time(at: datetime, zone: ZoneInfo) -> str:
    """An ``OnCalendar=`` spec for the single time ``at``: in ``zone``, or in UTC where that is ambiguous."""
    local = at.astimezone(zone)
    if local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset():
        return f"{at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return f"{local:%Y-%m-%d %H:%M:%S} {zone.key}"


def export_systemd(
    schedules: Mapping[str, Schedule], *, home: Path, command: str, now: datetime, days: int
) -> dict[str, str]:
    """Systemd units for ``schedules``: file name -> text, a oneshot ``.service`` and a ``.timer`` per action."""
    start, end = now.astimezone(UTC), now.astimezone(UTC) + timedelta(days=days)
    files: dict[str, str] = {}
    for schedule in schedules.values():
        for action in trigger_actions(schedule, start, end):
            spec = systemd_calendar(action.cron, schedule.zone) if action.cron is not None else None
            if spec is not None:
                calendars, note = [spec], ""
            else:
                calendars = [systemd_time(t, schedule.zone) for t in action_times(action, schedule, start, end)]
                note = (
                    f"# These are planned times up to {end:%Y-%m-%d %H:%M} UTC: re-export before then "
                    "(holidays, early closes and daylight-saving changes move them).\n"
                )
            if not calendars:
                continue
            header = f"# Generated by 'robohost schedule export --systemd' for {home}.\n"
            files[f"{action.unit}.service"] = "\n".join(
                [
                    header + "[Unit]",
                    f"Description=robohost: {action.description}",
                    "",
                    "[Service]",
                    "Type=oneshot",
                    f"ExecStart={_systemd_escape(command_line(command, home, action.args))}",
                    "",
                ]
            )
            files[f"{action.unit}.timer"] = "\n".join(
                [
                    header + note + "[Unit]",
                    f"Description=robohost: when to run {action.unit}.service",
                    "",
                    "[Timer]",
                    *(f"OnCalendar={c}" for c in calendars),
                    "Persistent=true",
                    "AccuracySec=1s",
                    f"Unit={action.unit}.service",
                    "",
                    "[Install]",
                    "WantedBy=timers.target",
                    "",
                ]
            )
    return files


def _systemd_escape(text: str) -> str:
    return text.replace("%", "%%").replace("$", "$$")
