"""Capacity and health checks: each threshold crossed with injected readings, the growth rate, and
``robohost health`` exiting 0/1/2 on a real home whose thresholds put its real file system at warn or critical."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from robohost.adapters.db.monitoring import FailedJob
from robohost.adapters.ops.capacity import CertificateExpiry, DiskUsage, ProcessUsage
from robohost.config.monitoring import HealthConfig
from robohost.services.health import (
    Readings,
    RobotHealth,
    add_sample,
    evaluate,
    growth_per_day,
    summary,
    worst,
)

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
GB = 1024**3
T = HealthConfig()


def _levels(readings: Readings, thresholds: HealthConfig = T) -> dict[str, str]:
    return {c.name: c.level for c in evaluate(readings, thresholds)}


def _healthy(**changes: object) -> Readings:
    values: dict[str, object] = {
        "now": NOW,
        "cpu_load": 0.2,
        "memory_percent": 40.0,
        "disks": (("home", DiskUsage("/srv/robohost", 100 * GB, 60 * GB)),),
        "database_bytes": 200 * 1024**2,
        "database_growth_per_day": 10 * 1024**2,
        "database_free_bytes": 60 * GB,
        "processes": (ProcessUsage(42, "robohost", 300 * 1024**2, 40, 1024),),
        "backups_expected": True,
        "last_backup": NOW - timedelta(hours=3),
        "certificates": (("dashboard", CertificateExpiry("tls/server.pem", NOW + timedelta(days=300))),),
        "robots": (RobotHealth("bot", "running", "live", 20.0),),
    }
    values.update(changes)
    return Readings(**values)  # type: ignore[arg-type]


def test_a_healthy_machine_is_ok() -> None:
    checks = evaluate(_healthy(), T)
    assert worst(checks) == "ok", summary(checks)
    assert {c.name for c in checks} >= {
        "database", "cpu", "memory", "disk:home", "database_size", "database_growth", "process_memory:42",
        "open_files:42", "jobs", "backup", "certificate:dashboard", "robot:bot", "feed:bot",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("check", "warn", "critical"),
    [
        ("cpu", {"cpu_load": 2.5}, {"cpu_load": 4.5}),
        ("memory", {"memory_percent": 92.0}, {"memory_percent": 99.0}),
        ("disk:home", {"disks": (("home", DiskUsage("/h", 100 * GB, 8 * GB)),)},
         {"disks": (("home", DiskUsage("/h", 100 * GB, 3 * GB)),)}),
        ("database_size", {"database_bytes": 60_000 * 1024**2}, {"database_bytes": 300_000 * 1024**2}),
        ("database_growth", {"database_growth_per_day": 3 * GB}, {"database_growth_per_day": 20 * GB}),
        ("process_memory:42", {"processes": (ProcessUsage(42, "robohost", 3000 * 1024**2, 10, 1024),)},
         {"processes": (ProcessUsage(42, "robohost", 5000 * 1024**2, 10, 1024),)}),
        ("open_files:42", {"processes": (ProcessUsage(42, "robohost", 1, 850, 1024),)},
         {"processes": (ProcessUsage(42, "robohost", 1, 1000, 1024),)}),
        ("jobs", {"job_failures": (FailedJob("bot", "backup", 1, "disk full"),)},
         {"job_failures": tuple(FailedJob("bot", "backup", i, "x") for i in range(3))}),
        ("backup", {"last_backup": NOW - timedelta(hours=30)}, {"last_backup": NOW - timedelta(hours=60)}),
        ("certificate:dashboard",
         {"certificates": (("dashboard", CertificateExpiry("c.pem", NOW + timedelta(days=10))),)},
         {"certificates": (("dashboard", CertificateExpiry("c.pem", NOW - timedelta(days=1))),)}),
        ("feed:bot", {"robots": (RobotHealth("bot", "running", None, 1000.0),)},
         {"robots": (RobotHealth("bot", "degraded", "no bar for 120 s"),)}),
        ("robot:bot", {}, {"robots": (RobotHealth("bot", "halted", "max_daily_loss breached"),)}),
    ],
)  # fmt: skip
def test_each_threshold_warns_then_turns_critical(
    check: str, warn: dict[str, object], critical: dict[str, object]
) -> None:
    if warn:
        assert _levels(_healthy(**warn))[check] == "warn"
    assert _levels(_healthy(**critical))[check] == "critical"
    bad = [c for c in evaluate(_healthy(**critical), T) if c.level != "ok"]
    assert [c.name for c in bad] == [check], "one reading crossed, one check says so"


def test_thresholds_come_from_the_config_and_must_be_ordered() -> None:
    strict = HealthConfig(memory_percent_warn=30, memory_percent_critical=35)
    assert _levels(_healthy(), strict)["memory"] == "critical"
    with pytest.raises(ValueError, match="memory_percent_warn: must not be above memory_percent_critical"):
        HealthConfig(memory_percent_warn=99, memory_percent_critical=90)
    with pytest.raises(ValueError, match="disk_free_percent_warn: must not be below"):
        HealthConfig(disk_free_percent_warn=2, disk_free_percent_critical=5)


def test_unreachable_database_and_no_backup_yet() -> None:
    levels = _levels(Readings(NOW, database_error="OperationalError: connection refused"))
    assert levels["database"] == "critical"
    assert _levels(_healthy(last_backup=None))["backup"] == "warn"
    assert _levels(_healthy(backups_expected=False, last_backup=None))["backup"] == "ok"


def test_growth_rate_from_size_samples() -> None:
    samples: list[list[int]] = []
    start = int(NOW.timestamp() * 1e9)
    minute = 60 * 10**9
    for i in range(14):  # every 5 minutes for 65 minutes: one sample per 10 minutes is kept
        samples = add_sample(samples, start + i * 5 * minute, 1000 + i * 5 * 100)
    assert len(samples) == 7 and growth_per_day(samples[:6]) is None, "an hour of samples first"
    assert growth_per_day(samples) == pytest.approx(100 * 60 * 24)  # 100 bytes a minute
    later = add_sample(samples, start + 8 * 24 * 60 * minute, 5000)
    assert len(later) == 1, "samples older than a week are forgotten"


def test_robohost_health_exits_by_the_worst_check(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = subprocess.run([ROBOHOST, "init", str(home)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    config = home / "robohost.toml"
    base = config.read_text()
    calm = "cpu_load_warn = 1000\ncpu_load_critical = 1000\nmemory_percent_warn = 100\nmemory_percent_critical = 100\n"
    cases = [
        ("", 0, "ok"),
        ("disk_free_percent_warn = 99.999\ndisk_free_percent_critical = 0", 1, "warn"),
        ("disk_free_percent_warn = 99.999\ndisk_free_percent_critical = 99.998", 2, "critical"),
    ]
    for health, code, status in cases:
        config.write_text(base + f"\n[health]\n{calm}{health}\n")  # a busy test machine stays calm
        as_json = status != "critical"  # the last case shows the table
        command = [ROBOHOST, "--home", str(home), "health", *(["--json"] if as_json else [])]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == code, done.stdout + done.stderr
        if not as_json:
            assert "health: critical" in done.stdout and "disk:home" in done.stdout
            continue
        report = json.loads(done.stdout)
        assert report["status"] == status
        disk = next(c for c in report["checks"] if c["name"] == "disk:home")
        assert disk["level"] == status and disk["unit"] == "%"
