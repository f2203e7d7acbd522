"""Crontab lines and systemd timers that call ``robohost trigger`` when the schedule says.

``systemd-analyze calendar`` is not installed here, so the generated ``OnCalendar=`` specs are read back by
``on_calendar`` below (the subset of systemd's syntax the export writes) and compared with the plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from robohost.config.models import DEFAULT_JOBS, ScheduleConfig
from robohost.errors import ConfigError
from robohost.services.scheduling.export import (
    cron_as_is,
    export_cron,
    export_systemd,
    systemd_calendar,
    systemd_time,
)
from robohost.services.scheduling.expressions import CronTime, cron_times
from robohost.services.scheduling.plan import Schedule

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
HOME = Path("/srv/robo")
EXE = "/opt/robohost/bin/robohost"
GUARD = '[ "$(date +\\%Y)" = 2026 ] && '


def utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def only(*chores: str) -> dict[str, str]:
    """A ``jobs`` table that switches off every default chore but ``chores``."""
    return {name: "off" for name in DEFAULT_JOBS if name not in chores}


def schedules(robot: str = "bot", **settings: Any) -> dict[str, Schedule]:
    """One robot's schedule on XNYS with backup, report and health (by default)."""
    values: dict[str, Any] = {"calendar": "XNYS", "session_end": "close"} | settings
    values["jobs"] = only("backup", "report", "health") | values.get("jobs", {})
    return {robot: Schedule(robot, ScheduleConfig.model_validate(values))}


def body(text: str) -> list[str]:
    """The lines of a crontab that are not comments or blank."""
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def cmd(*args: str) -> str:
    """The command line the export writes for ``args``."""
    return " ".join([EXE, "--home", str(HOME), *args])


def test_a_crontab_for_thanksgiving_week_in_berlin() -> None:
    text = export_cron(schedules(), home=HOME, command=EXE, now=utc(2026, 11, 23), days=7, local_zone=BERLIN)
    run, stop = cmd("trigger", "run", "--robot", "bot"), cmd("trigger", "stop", "--robot", "bot")
    backup, report = (
        cmd("trigger", "job", "backup", "--robot", "bot"),
        cmd("trigger", "job", "report", "--robot", "bot"),
    )
    assert body(text) == [
        # New York 09:30 is Berlin 15:30; Thanksgiving (26th) has no line; the 27th closes at 13:00 New York
        *(f"30 15 {day} 11 * {GUARD}{run}" for day in (23, 24, 25, 27)),
        *(f"0 22 {day} 11 * {GUARD}{stop}" for day in (23, 24, 25)),
        f"0 19 27 11 * {GUARD}{stop}",
        *(f"15 22 {day} 11 * {GUARD}{backup}" for day in (23, 24, 25)),
        f"15 19 27 11 * {GUARD}{backup}",
        *(f"30 22 {day} 11 * {GUARD}{report}" for day in (23, 24, 25)),
        f"30 19 27 11 * {GUARD}{report}",
        # Berlin and New York are whole hours apart: every 5 minutes is the same rule in both
        f"*/5 * * * * {cmd('trigger', 'job', 'health', '--robot', 'bot')}",
    ]
    assert "Times are in this server's time zone, Europe/Berlin" in text
    assert "run out on 2026-11-30 01:00 CET: re-export" in text
    assert "# start the session of robot bot (open)" in text
    assert "# backup of robot bot (close + 15m)" in text


def test_a_crontab_crosses_the_daylight_saving_change_in_its_local_zone() -> None:
    text = export_cron(
        schedules(jobs=only()), home=HOME, command=EXE, now=utc(2026, 10, 30), days=4, local_zone=NEW_YORK
    )
    assert [line.split(" [")[0] for line in body(text)] == [
        "30 9 30 10 *",  # starts: 09:30 New York on both sides of 1 November (13:30 UTC, then 14:30 UTC)
        "30 9 2 11 *",
        "0 16 30 10 *",  # stops
        "0 16 2 11 *",
    ]


def test_the_session_open_at_export_time_still_gets_its_stop() -> None:
    text = export_cron(
        schedules(jobs=only()), home=HOME, command=EXE, now=utc(2026, 11, 27, 15), days=1, local_zone=NEW_YORK
    )
    assert body(text) == [f"0 13 27 11 * {GUARD}{cmd('trigger', 'stop', '--robot', 'bot')}"]


def test_explicit_lines_guard_the_year_and_sleep_to_the_second() -> None:
    text = export_cron(
        schedules(jobs=only(), session_start="open - 90s"),
        home=HOME,
        command=EXE,
        now=utc(2026, 11, 30),
        days=1,
        local_zone=BERLIN,
    )
    assert body(text)[0] == f"28 15 30 11 * {GUARD}sleep 30 && {cmd('trigger', 'run', '--robot', 'bot')}"
    yearly = export_cron(
        {"coin": Schedule("coin", ScheduleConfig(calendar="24/7", session_end="never", jobs=only()))},
        home=HOME,
        command=EXE,
        now=utc(2026, 12, 30, 12),
        days=3,
        local_zone=ZoneInfo("UTC"),
    )
    assert [line.split(" /opt")[0] for line in body(yearly)] == [
        '0 0 31 12 * [ "$(date +\\%Y)" = 2026 ] &&',
        '0 0 1 1 * [ "$(date +\\%Y)" = 2027 ] &&',
        '0 0 2 1 * [ "$(date +\\%Y)" = 2027 ] &&',
    ]
    assert "# start the session of robot coin (open)" in yearly
    assert "stop the session" not in yearly  # a continuous session is never stopped by schedule


def test_a_cron_rule_that_cron_would_read_otherwise_is_written_as_times() -> None:
    india = ZoneInfo("Asia/Kolkata")  # 10h30 / 9h30 from New York: minutes differ
    text = export_cron(
        schedules(jobs=only("health")), home=HOME, command=EXE, now=utc(2026, 11, 28), days=1, local_zone=india
    )
    lines = body(text)
    assert len(lines) == 288
    assert lines[0] == f"30 5 28 11 * {GUARD}{cmd('trigger', 'job', 'health', '--robot', 'bot')}"


@pytest.mark.parametrize(
    ("expression", "local", "as_is"),
    [
        ("*/5 * * * *", "America/New_York", True),
        ("*/5 * * * *", "UTC", True),
        ("*/5 * * * *", "Asia/Kolkata", False),
        ("30 9 * * mon-fri", "America/New_York", True),
        ("30 9 * * mon-fri", "UTC", False),  # the hour depends on the zone
        ("0 9 1 * mon", "America/New_York", False),  # cron takes the 1st OR Monday, APScheduler the 1st AND Monday
        ("0 9 last * *", "America/New_York", False),  # not cron syntax
        ("5/10 * * * *", "America/New_York", False),  # a step without a range: not every cron has it
    ],
)
def test_when_a_cron_rule_is_written_as_it_is(expression: str, local: str, as_is: bool) -> None:
    window = (utc(2026, 10, 25), utc(2026, 11, 25))
    assert cron_as_is(CronTime(expression), NEW_YORK, ZoneInfo(local), *window) is as_is


def test_sessions_are_exported_where_the_server_takes_requests_to_run() -> None:
    def export(mode: str) -> str:
        plan = schedules(mode=mode)
        return export_cron(plan, home=HOME, command=EXE, now=utc(2026, 11, 23), days=7, local_zone=NEW_YORK)

    manual, both, auto = export("manual"), export("both"), export("auto")
    assert body(manual) == body(both)  # manual: the system's scheduler decides when the robot trades
    assert "trigger run --robot bot" in manual
    assert "# robot bot: calendar XNYS (America/New_York), mode manual" in manual
    assert not any("trigger run" in line or "trigger stop" in line for line in body(auto))  # auto: the server's
    assert "# no session lines: in mode auto the server starts sessions itself and refuses 'trigger run'" in auto
    assert "trigger job backup --robot bot" in auto  # chores in every mode


def test_commands_are_quoted_and_escaped() -> None:
    home = Path("/srv/my robots/100%")
    text = export_cron(
        schedules(jobs=only()), home=home, command=EXE, now=utc(2026, 11, 27), days=1, local_zone=NEW_YORK
    )
    assert f"{GUARD}{EXE} --home '/srv/my robots/100\\%' trigger run --robot bot" in text
    units = export_systemd(schedules(jobs=only()), home=home, command=EXE, now=utc(2026, 11, 27), days=1)
    assert (
        f"ExecStart={EXE} --home '/srv/my robots/100%%' trigger run --robot bot"
        in units["robohost-bot-session-start.service"].splitlines()
    )


# --- systemd ---------------------------------------------------------------------------------------------

_SPEC = re.compile(r"^(?:(?P<dow>[A-Za-z.,]+) )?(?P<date>\S+) (?P<time>\S+) (?P<zone>\S+)$")
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _values(text: str, lowest: int, highest: int) -> set[int]:
    if text == "*":
        return set(range(lowest, highest + 1))
    out: set[int] = set()
    for item in text.split(","):
        if ".." in item:
            first, last = item.split("..")
            out |= set(range(int(first), int(last) + 1))
        elif "/" in item:
            first, step = item.split("/")
            out |= set(range(int(first), highest + 1, int(step)))
        else:
            out.add(int(item))
    return out


def _weekdays(text: str | None) -> set[int]:
    if text is None:
        return set(range(7))
    out: set[int] = set()
    for item in text.split(","):
        first, _, last = item.partition("..")
        out |= set(range(_DAYS.index(first), _DAYS.index(last or first) + 1))
    return out


def on_calendar(spec: str) -> Callable[[datetime], bool]:
    """Read an ``OnCalendar=`` spec of the form the export writes; return: does it match this UTC time?"""
    match = _SPEC.match(spec)
    assert match is not None, spec
    zone = ZoneInfo(match["zone"])
    year, month, day = match["date"].split("-")
    hour, minute, second = match["time"].split(":")
    fields = [
        (lambda t: t.year, _values(year, 1970, 2100)),
        (lambda t: t.month, _values(month, 1, 12)),
        (lambda t: t.day, _values(day, 1, 31)),
        (lambda t: t.hour, _values(hour, 0, 23)),
        (lambda t: t.minute, _values(minute, 0, 59)),
        (lambda t: t.second, _values(second, 0, 59)),
        (lambda t: t.weekday(), _weekdays(match["dow"])),
    ]

    def matches(at: datetime) -> bool:
        local = at.astimezone(zone)
        return all(get(local) in allowed for get, allowed in fields)

    return matches


def matching(spec: str, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)) -> list[datetime]:
    """The UTC times in ``[start, end)``, every ``step``, that ``spec`` matches."""
    test = on_calendar(spec)
    out, t = [], start
    while t < end:
        if test(t):
            out.append(t)
        t += step
    return out


@pytest.mark.parametrize(
    ("expression", "spec"),
    [
        ("*/5 * * * *", "*-*-* *:00/5:00 America/New_York"),
        ("30 9 * * mon-fri", "Mon..Fri *-*-* 09:30:00 America/New_York"),
        ("15 8,20 * * sat,sun", "Sat,Sun *-*-* 08,20:15:00 America/New_York"),
        ("0 */6 1-10/3 * *", "*-*-01,04,07,10 00/6:00:00 America/New_York"),
        ("45 23 * oct-nov fri", "Fri *-10..11-* 23:45:00 America/New_York"),
    ],
)
def test_cron_rules_become_systemd_calendars_that_match_the_same_times(expression: str, spec: str) -> None:
    cron = CronTime(expression)
    assert systemd_calendar(cron, NEW_YORK) == spec
    start, end = utc(2026, 10, 20), utc(2026, 11, 12)  # across the change of 1 November
    assert matching(spec, start, end) == list(cron_times(cron, NEW_YORK, start, end))


def test_a_cron_rule_systemd_cannot_say_is_written_as_times() -> None:
    assert systemd_calendar(CronTime("0 9 last * *"), NEW_YORK) is None
    assert systemd_calendar(CronTime("0 9 * * */2"), NEW_YORK) is None
    units = export_systemd(
        schedules(jobs=only() | {"monthly": "0 9 last * *"}), home=HOME, command=EXE, now=utc(2026, 11, 1), days=31
    )
    assert "OnCalendar=2026-11-30 09:00:00 America/New_York" in units["robohost-bot-monthly.timer"].splitlines()


def test_systemd_units_for_thanksgiving_week() -> None:
    units = export_systemd(schedules(), home=HOME, command=EXE, now=utc(2026, 11, 23), days=7)
    assert sorted(units) == [
        f"robohost-bot-{job}.{kind}"
        for job in ("backup", "health", "report", "session-start", "session-stop")
        for kind in ("service", "timer")
    ]
    start = units["robohost-bot-session-start.timer"].splitlines()
    assert [line for line in start if line.startswith("OnCalendar=")] == [
        f"OnCalendar=2026-11-{day} 09:30:00 America/New_York" for day in (23, 24, 25, 27)
    ]
    stop = units["robohost-bot-session-stop.timer"].splitlines()
    assert "OnCalendar=2026-11-27 13:00:00 America/New_York" in stop  # the early close
    assert "OnCalendar=2026-11-26 16:00:00 America/New_York" not in stop  # Thanksgiving
    for line in (
        "Persistent=true",
        "AccuracySec=1s",
        "Unit=robohost-bot-session-start.service",
        "WantedBy=timers.target",
    ):
        assert line in start
    assert any("re-export before then" in line for line in start)
    health = units["robohost-bot-health.timer"].splitlines()
    assert [line for line in health if line.startswith("OnCalendar=")] == [
        "OnCalendar=*-*-* *:00/5:00 America/New_York"
    ]
    assert not any("re-export" in line for line in health)
    service = units["robohost-bot-backup.service"].splitlines()
    assert "Type=oneshot" in service
    assert f"ExecStart={cmd('trigger', 'job', 'backup', '--robot', 'bot')}" in service
    assert "Description=robohost: backup of robot bot (close + 15m)" in service


def test_explicit_systemd_times_are_the_planned_times() -> None:
    plan = schedules()
    start, end = utc(2026, 10, 26), utc(2026, 11, 9)
    units = export_systemd(plan, home=HOME, command=EXE, now=start, days=14)
    for job, unit in (("session", "session-start"), ("backup", "backup"), ("report", "report")):
        specs = [line.removeprefix("OnCalendar=") for line in units[f"robohost-bot-{unit}.timer"].splitlines()]
        times = sorted(
            t for spec in specs if spec[:1].isdigit() for t in matching(spec, start, end, timedelta(minutes=5))
        )
        assert times == [j.at for j in plan["bot"].planned(start, end) if j.job == job]


def test_an_ambiguous_local_time_is_written_in_utc() -> None:
    assert systemd_time(utc(2026, 11, 1, 5, 30), NEW_YORK) == "2026-11-01 05:30:00 UTC"  # the first 01:30
    assert systemd_time(utc(2026, 11, 1, 6, 30), NEW_YORK) == "2026-11-01 06:30:00 UTC"  # the second 01:30
    assert systemd_time(utc(2026, 11, 1, 7, 30), NEW_YORK) == "2026-11-01 02:30:00 America/New_York"


def test_auto_mode_has_no_session_units() -> None:
    units = export_systemd(schedules(mode="auto"), home=HOME, command=EXE, now=utc(2026, 11, 23), days=7)
    assert not any("session" in name for name in units)
    assert "robohost-bot-backup.timer" in units
    manual = export_systemd(schedules(mode="manual"), home=HOME, command=EXE, now=utc(2026, 11, 23), days=7)
    assert "robohost-bot-session-start.timer" in manual


def test_an_export_past_what_the_calendar_knows_is_refused() -> None:
    plan = {"bot": Schedule("bot", ScheduleConfig(calendar="XSHG", session_end="close"))}
    with pytest.raises(ConfigError, match=r"the XSHG calendar knows its sessions only until 2026-12-31"):
        export_cron(plan, home=HOME, command=EXE, now=utc(2026, 12, 20), days=31, local_zone=BERLIN)
    assert (
        "trigger run"
        in export_systemd(plan, home=HOME, command=EXE, now=utc(2026, 12, 20), days=7)[
            "robohost-bot-session-start.service"
        ]
    )
