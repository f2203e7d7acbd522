"""Capacity and health checks: readings of the machine, the database and the robots, judged against the
``[health]`` thresholds (README, "Logs, monitoring and alerts").

``evaluate(readings, thresholds)`` is pure: each check is ``ok``, ``warn`` or ``critical`` with a message
and the value measured; ``HealthProbe`` gathers the readings (psutil, the database, the home's files) and
keeps the database's size history for its growth rate (``state/capacity.json``). ``robohost health``, the
``health`` chore and the metrics use both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from robohost.adapters.db import monitoring as db_monitoring
from robohost.adapters.db.lease import read_lease
from robohost.adapters.db.monitoring import FailedJob
from robohost.adapters.db.queries import ReadModel
from robohost.adapters.ops import capacity
from robohost.adapters.ops.capacity import CertificateExpiry, DiskUsage, ProcessUsage
from robohost.adapters.ops.state_file import JsonStateFile
from robohost.config.models import RobohostConfig
from robohost.config.monitoring import HealthConfig

Level = Literal["ok", "warn", "critical"]
EXIT_CODES: dict[str, int] = {"ok": 0, "warn": 1, "critical": 2}
_RANK = {"ok": 0, "warn": 1, "critical": 2}
MB = 1024 * 1024
GROWTH_WINDOW = timedelta(days=7)
GROWTH_MIN_SPAN = timedelta(hours=1)
SAMPLE_EVERY = timedelta(minutes=10)
NOT_COUNTED_JOBS = ("health",)
"""Failures of these jobs are not counted by the ``jobs`` check: the health chore fails when a check is
critical, and that check says more."""


@dataclass(frozen=True, slots=True)
class Check:
    """One judged reading. ``alert_key`` names the problem for alerts (None: shown and measured, not alerted)."""

    name: str
    level: Level
    message: str
    value: float | None = None
    unit: str = ""
    alert_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``."""
        return {"name": self.name, "level": self.level, "message": self.message, "value": self.value, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class RobotHealth:
    """A robot's state, and for a live robot that is running, how old its newest committed event is."""

    name: str
    state: str | None
    reason: str | None = None
    lag_s: float | None = None


@dataclass(frozen=True)
class Readings:
    """Everything the checks judge; None (or empty) means not measured here."""

    now: datetime
    database_error: str | None = None
    cpu_load: float | None = None
    memory_percent: float | None = None
    disks: tuple[tuple[str, DiskUsage], ...] = ()
    database_bytes: int | None = None
    database_growth_per_day: float | None = None
    database_free_bytes: int | None = None
    processes: tuple[ProcessUsage, ...] = ()
    job_failures: tuple[FailedJob, ...] = ()
    backups_expected: bool = False
    last_backup: datetime | None = None
    certificates: tuple[tuple[str, CertificateExpiry], ...] = ()
    robots: tuple[RobotHealth, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _higher(
    name: str, value: float | None, warn: float, critical: float, unit: str, text: str, key: str | None
) -> Check:
    if value is None:
        return Check(name, "ok", f"{text}: not measured here", None, unit, key)
    level: Level = "critical" if value >= critical else "warn" if value >= warn else "ok"
    limit = "" if level == "ok" else f" (limit {critical if level == 'critical' else warn:g}{unit})"
    return Check(name, level, f"{text}: {_number(value)}{unit}{limit}", round(value, 3), unit.strip(), key)


def _lower(
    name: str, value: float | None, warn: float, critical: float, unit: str, text: str, key: str | None
) -> Check:
    if value is None:
        return Check(name, "ok", f"{text}: not measured here", None, unit, key)
    level: Level = "critical" if value <= critical else "warn" if value <= warn else "ok"
    limit = "" if level == "ok" else f" (limit {critical if level == 'critical' else warn:g}{unit})"
    return Check(name, level, f"{text}: {_number(value)}{unit}{limit}", round(value, 3), unit.strip(), key)


def evaluate(r: Readings, t: HealthConfig) -> list[Check]:
    """Judge every reading against the thresholds."""
    checks = [
        Check("database", "critical", f"the database does not answer: {r.database_error}", alert_key="health:database")
        if r.database_error
        else Check("database", "ok", "the database answers", alert_key="health:database"),
        _higher("cpu", r.cpu_load, t.cpu_load_warn, t.cpu_load_critical, "", "load per core (5 min)", "health:cpu"),
        _higher(
            "memory",
            r.memory_percent,
            t.memory_percent_warn,
            t.memory_percent_critical,
            "%",
            "RAM used",
            "health:memory",
        ),
    ]
    for label, disk in r.disks:
        checks.append(
            _lower(
                f"disk:{label}",
                disk.free_percent,
                t.disk_free_percent_warn,
                t.disk_free_percent_critical,
                "%",
                f"free space of {label} ({disk.path}, {disk.free / MB / 1024:.1f} GiB free)",
                f"health:disk:{label}",
            )
        )
    size_mb = r.database_bytes / MB if r.database_bytes is not None else None
    checks.append(
        _higher(
            "database_size",
            size_mb,
            t.database_mb_warn,
            t.database_mb_critical,
            " MB",
            "database size",
            "health:database_size",
        )
    )
    checks.append(_growth(r, t))
    for proc in r.processes:
        checks.append(
            _higher(
                f"process_memory:{proc.pid}",
                proc.rss / MB,
                t.process_memory_mb_warn,
                t.process_memory_mb_critical,
                " MB",
                f"memory of {proc.name} pid {proc.pid}",
                "health:process_memory",
            )
        )
        share = 100.0 * proc.open_files / proc.max_open_files if proc.max_open_files else None
        checks.append(
            _higher(
                f"open_files:{proc.pid}",
                share,
                t.open_files_percent_warn,
                t.open_files_percent_critical,
                "%",
                f"open files of pid {proc.pid} ({proc.open_files} of {proc.max_open_files})",
                "health:open_files",
            )
        )
    failures = len(r.job_failures)
    jobs = _higher(
        "jobs",
        float(failures),
        t.job_failures_warn,
        t.job_failures_critical,
        "",
        "failed jobs in the last 24 hours",
        None,
    )
    if failures:
        latest = r.job_failures[0]
        jobs = Check(
            jobs.name,
            jobs.level,
            f"{jobs.message}; latest: {latest.robot} {latest.job}: {latest.error}",
            jobs.value,
            jobs.unit,
        )
    checks.append(jobs)
    checks.append(_backup(r, t))
    for label, cert in r.certificates:
        checks.append(_certificate(label, cert, r.now, t))
    for robot in r.robots:
        checks += _robot(robot, t)
    return checks


def _growth(r: Readings, t: HealthConfig) -> Check:
    growth = r.database_growth_per_day
    if growth is None or r.database_free_bytes is None:
        return Check(
            "database_growth",
            "ok",
            "database growth: not known yet (needs an hour of samples)",
            alert_key="health:database_growth",
        )
    if growth <= 0:
        return Check("database_growth", "ok", "database growth: not growing", 0.0, "MB/day", "health:database_growth")
    days = r.database_free_bytes / growth
    check = _lower(
        "database_growth",
        days,
        t.database_full_days_warn,
        t.database_full_days_critical,
        " days",
        f"database grows {growth / MB:.1f} MB/day; its volume is full in",
        "health:database_growth",
    )
    return check


def _backup(r: Readings, t: HealthConfig) -> Check:
    if not r.backups_expected:
        return Check("backup", "ok", "backups: not configured ([backup] recipients)", alert_key="health:backup")
    if r.last_backup is None:
        return Check("backup", "warn", "backups: none has succeeded yet", alert_key="health:backup")
    hours = (r.now - r.last_backup).total_seconds() / 3600
    return _higher(
        "backup",
        hours,
        t.backup_age_hours_warn,
        t.backup_age_hours_critical,
        " h",
        "age of the last good backup",
        "health:backup",
    )


def _certificate(label: str, cert: CertificateExpiry, now: datetime, t: HealthConfig) -> Check:
    name = f"certificate:{label}"
    if cert.expires is None:
        return Check(name, "warn", f"certificate {label} ({cert.path}): {cert.error}", alert_key=f"health:{name}")
    days = (cert.expires - now).total_seconds() / 86400
    if days <= 0:
        return Check(
            name,
            "critical",
            f"certificate {label} ({cert.path}) expired on {cert.expires:%Y-%m-%d}",
            round(days, 3),
            "days",
            f"health:{name}",
        )
    return _lower(
        name,
        days,
        t.certificate_days_warn,
        t.certificate_days_critical,
        " days",
        f"certificate {label} ({cert.path}) expires in",
        f"health:{name}",
    )


def _robot(robot: RobotHealth, t: HealthConfig) -> list[Check]:
    halted_key, feed_key = f"robot_halted:{robot.name}", f"feed_degraded:{robot.name}"
    if robot.state == "halted":
        state = Check(
            f"robot:{robot.name}", "critical", f"robot {robot.name} is halted: {robot.reason}", alert_key=halted_key
        )
    else:
        state = Check(
            f"robot:{robot.name}", "ok", f"robot {robot.name} is {robot.state or 'idle'}", alert_key=halted_key
        )
    if robot.state == "degraded":
        feed = Check(
            f"feed:{robot.name}",
            "critical",
            f"live data of robot {robot.name} are stale: {robot.reason}",
            alert_key=feed_key,
        )
    elif robot.lag_s is not None:
        feed = _higher(
            f"feed:{robot.name}",
            robot.lag_s,
            t.feed_lag_s_warn,
            t.feed_lag_s_critical,
            " s",
            f"age of robot {robot.name}'s newest live event",
            feed_key,
        )
    else:
        feed = Check(f"feed:{robot.name}", "ok", f"robot {robot.name}: no live stream running", alert_key=feed_key)
    return [state, feed]


def worst(checks: Iterable[Check]) -> Level:
    """The most serious level among ``checks`` (``ok`` when there are none)."""
    level: Level = "ok"
    for check in checks:
        if _RANK[check.level] > _RANK[level]:
            level = check.level
    return level


def summary(checks: Sequence[Check]) -> str:
    """One line: the overall level, then the checks that are not ok."""
    bad = [c for c in checks if c.level != "ok"]
    if not bad:
        return f"ok: {len(checks)} checks passed"
    return f"{worst(checks)}: " + "; ".join(f"{c.name}: {c.message}" for c in bad)


# -- gathering ------------------------------------------------------------------------------------------------


def growth_per_day(samples: Sequence[Sequence[int]]) -> float | None:
    """Bytes per day between the oldest and the newest ``(ns, bytes)`` sample, if they span an hour."""
    if len(samples) < 2:
        return None
    (t0, b0), (t1, b1) = samples[0][:2], samples[-1][:2]
    span = (t1 - t0) / 1e9
    if span < GROWTH_MIN_SPAN.total_seconds():
        return None
    return (b1 - b0) / span * 86400


def add_sample(samples: list[list[int]], now_ns: int, size: int) -> list[list[int]]:
    """The size history with ``size`` added (at most one sample per 10 minutes, the last 7 days kept)."""
    kept = [s for s in samples if now_ns - s[0] <= GROWTH_WINDOW.total_seconds() * 1e9]
    if not kept or now_ns - kept[-1][0] >= SAMPLE_EVERY.total_seconds() * 1e9:
        kept.append([now_ns, size])
    return kept


def server_pids(engine: sa.Engine, robots: Iterable[str]) -> list[int]:
    """The processes of this machine that hold a robot's lease (``robohost serve`` or ``run``)."""
    host = os.uname().nodename
    pids: set[int] = set()
    for robot in robots:
        row = read_lease(engine, robot)
        if row is None or row.released_at is not None:
            continue
        _, _, rest = row.holder.partition(" pid ")
        pid, _, holder_host = rest.partition("@")
        if pid.isdigit() and holder_host == host:
            pids.add(int(pid))
    return sorted(pids)


class HealthProbe:
    """Gathers the readings of a home (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        read: ReadModel,
        home: Path,
        config: RobohostConfig,
        state: JsonStateFile,
        processes: Callable[[], list[int]],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.read = read
        self.home = home
        self.config = config
        self.state = state
        self.processes = processes
        self.clock = clock

    def readings(self, robots: Sequence[str]) -> Readings:
        """Measure now."""
        now = self.clock()
        values: dict[str, Any] = {"now": now}
        try:
            db_monitoring.ping(self.engine)
        except Exception as exc:
            return Readings(now, database_error=f"{type(exc).__name__}: {exc}"[:500], **self._system())
        values.update(self._system())
        disks = list(values.pop("disks"))
        volume = db_monitoring.database_volume(self.engine)
        if volume is not None:
            usage = capacity.disk_usage(volume)
            values["database_free_bytes"] = usage.free
            if all(d.path != str(volume) for _, d in disks) and os.stat(volume).st_dev != os.stat(self.home).st_dev:
                disks.append(("database", usage))
        values["disks"] = tuple(disks)
        size = db_monitoring.database_size(self.engine)
        values["database_bytes"] = size
        if size is not None:
            now_ns = int(now.timestamp() * 1e9)
            kept = self.state.update(
                lambda s: {**s, "database_size": add_sample(s.get("database_size", []), now_ns, size)}
            )
            values["database_growth_per_day"] = growth_per_day(kept["database_size"])
        since = int((now - timedelta(days=1)).timestamp() * 1e9)
        values["job_failures"] = tuple(db_monitoring.failed_jobs_since(self.engine, since, NOT_COUNTED_JOBS))
        values["backups_expected"] = bool(self.config.backup.recipients)
        last = db_monitoring.last_good_backup(self.engine)
        values["last_backup"] = datetime.fromtimestamp(last / 1e9, tz=UTC) if last is not None else None
        values["certificates"] = tuple(
            (label, capacity.certificate_expiry(path)) for label, path in self.certificate_files()
        )
        values["robots"] = tuple(self._robots(robots, now))
        return Readings(**values)

    def _system(self) -> dict[str, Any]:
        procs = tuple(p for p in (capacity.process_usage(pid) for pid in self.processes()) if p is not None)
        return {
            "cpu_load": capacity.cpu_load(),
            "memory_percent": capacity.memory_percent(),
            "disks": (("home", capacity.disk_usage(self.home)),),
            "processes": procs,
        }

    def certificate_files(self) -> list[tuple[str, Path]]:
        """The certificates this home uses: the dashboard's, the syslog collector's CA and client, the SMTP CA."""
        found: list[tuple[str, Path]] = []
        web = self.config.web
        if web.enabled and web.cert:
            found.append(("dashboard", self.home / web.cert))
        elif (self.home / "tls" / "server.pem").exists():
            found += [("dashboard", self.home / "tls" / "server.pem"), ("dashboard_ca", self.home / "tls" / "ca.pem")]
        remote = self.config.logging.remote
        if remote is not None:
            found.append(("syslog_ca", self.home / remote.ca))
            if remote.cert:
                found.append(("syslog_client", self.home / remote.cert))
        email = self.config.alerts.email
        if email is not None and email.ca:
            found.append(("smtp_ca", self.home / email.ca))
        return found

    def _robots(self, robots: Sequence[str], now: datetime) -> list[RobotHealth]:
        live = {run.robot: run for run in db_monitoring.live_runs(self.engine)}
        found = []
        for name in robots:
            row = self.read.robot_state(name)
            state = row.status if row is not None else None
            lag = None
            run = live.get(name)
            if run is not None and run.last_ts is not None and state == "running":
                lag = max(0.0, now.timestamp() - run.last_ts / 1e9)
            found.append(RobotHealth(name, state, row.reason if row is not None else None, lag))
        return found
