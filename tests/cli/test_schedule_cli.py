"""``robohost schedule show`` and ``robohost schedule export`` with a fixed now and local zone.

Successful commands run in-process through Typer's runner; error lines and exit codes come from the
console script in a subprocess, as a user sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from robohost.cli.app import app
from robohost.config.models import DEFAULT_JOBS
from robohost.errors import ConfigError

ROBOHOST = Path(sys.executable).with_name("robohost")
OTHER_CHORES_OFF = "".join(f'{name} = "off"\n' for name in DEFAULT_JOBS if name not in ("backup", "report"))
CONFIG = f"""
[robots.bot]
strategy = "strategies/bot.py:Bot"

[robots.bot.data]
path = ["data/bars.csv"]

[robots.bot.schedule.jobs]
{OTHER_CHORES_OFF}
[robots.coin]
strategy = "strategies/bot.py:Bot"

[robots.coin.data]
source = "ccxt"
exchange = "binance"
symbols = ["BTC/USDT"]

[robots.coin.schedule]
mode = "auto"

[robots.coin.schedule.jobs]
{OTHER_CHORES_OFF}report = "off"
"""
FIXED = ("--now", "2026-11-25T21:00:00Z", "--local-zone", "Europe/Berlin")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with a stock robot (XNYS) and a crypto robot (24/7); no database."""
    (tmp_path / "robohost.toml").write_text(CONFIG)
    return tmp_path


def run(*args: str) -> str:
    """Run ``robohost ARGS`` in-process, require success, return standard output."""
    env: dict[str, str | None] = {"ROBOHOST_HOME": None, "ROBOHOST_DATABASE_URL": None, "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def console(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``robohost`` console script; never raises on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")} | {"COLUMNS": "200"}
    return subprocess.run([str(ROBOHOST), *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def test_show_lists_the_next_runs_in_exchange_and_local_time(home: Path) -> None:
    out = run("--home", str(home), "schedule", "show", "--count", "2", *FIXED)
    assert "bot: calendar XNYS (America/New_York), mode both: sessions by schedule or when a person asks" in out
    assert "coin: calendar 24/7 (UTC), mode auto: sessions by schedule only; a session is open now, until" in out
    assert "next 2 runs of each job after Wed 2026-11-25 22:00 CET" in out
    rows = [" ".join(line.strip("│ ").split()) for line in out.splitlines() if line.startswith("│")]
    assert rows == [
        "bot │ backup │ Wed 2026-11-25 16:15 EST │ Wed 2026-11-25 22:15 CET",
        "bot │ report │ Wed 2026-11-25 16:30 EST │ Wed 2026-11-25 22:30 CET",
        "coin │ session │ Thu 2026-11-26 00:00 UTC │ Thu 2026-11-26 01:00 CET │ (continuous)",
        "coin │ backup │ Thu 2026-11-26 00:15 UTC │ Thu 2026-11-26 01:15 CET",
        "coin │ session │ Fri 2026-11-27 00:00 UTC │ Fri 2026-11-27 01:00 CET │ (continuous)",
        "coin │ backup │ Fri 2026-11-27 00:15 UTC │ Fri 2026-11-27 01:15 CET",
        # Thanksgiving: no session; Friday: the early close
        "bot │ session │ Fri 2026-11-27 09:30 EST │ Fri 2026-11-27 15:30 CET │ 13:00 EST",
        "bot │ backup │ Fri 2026-11-27 13:15 EST │ Fri 2026-11-27 19:15 CET",
        "bot │ report │ Fri 2026-11-27 13:30 EST │ Fri 2026-11-27 19:30 CET",
        "bot │ session │ Mon 2026-11-30 09:30 EST │ Mon 2026-11-30 15:30 CET │ 16:00 EST",
    ]
    assert not (home / "robohost.db").exists()  # the schedule needs only the configuration


def test_show_json_for_one_robot(home: Path) -> None:
    data: dict[str, Any] = json.loads(
        run("--home", str(home), "schedule", "show", "--robot", "bot", "--count", "1", "--json", *FIXED)
    )
    assert data["now"] == "2026-11-25T21:00:00Z"
    assert data["local_zone"] == "Europe/Berlin"
    assert data["robots"] == [
        {"robot": "bot", "mode": "both", "calendar": "XNYS", "zone": "America/New_York", "open_session": None}
    ]
    assert data["jobs"][2] == {
        "robot": "bot",
        "job": "session",
        "at": "2026-11-27T14:30:00Z",
        "at_exchange": "2026-11-27T09:30:00-05:00",
        "at_local": "2026-11-27T15:30:00+01:00",
        "until": "2026-11-27T18:00:00Z",
        "until_exchange": "2026-11-27T13:00:00-05:00",
        "until_local": "2026-11-27T19:00:00+01:00",
        "key": "bot:session:2026-11-27T14:30:00+00:00",
    }
    assert [job["job"] for job in data["jobs"]] == ["backup", "report", "session"]


def test_show_reports_the_open_session(home: Path) -> None:
    data = json.loads(
        run("--home", str(home), "schedule", "show", "--robot", "bot", "--json", "--now", "2026-11-27T15:00:00")
    )
    assert data["robots"][0]["open_session"]["until"] == "2026-11-27T18:00:00Z"  # naive --now: UTC


def test_export_cron_prints_a_crontab(home: Path) -> None:
    out = run(
        "--home", str(home), "schedule", "export", "--cron", "--robot", "bot", "--days", "3",
        "--command", "/usr/bin/robohost", *FIXED,
    )  # fmt: skip
    guard = '[ "$(date +\\%Y)" = 2026 ] && '
    command = f"{guard}/usr/bin/robohost --home {home.resolve()} trigger"
    assert [line for line in out.splitlines() if line and not line.startswith("#")] == [
        f"30 15 27 11 * {command} run --robot bot",
        f"0 22 25 11 * {command} stop --robot bot",  # due now (21:00 UTC): included
        f"0 19 27 11 * {command} stop --robot bot",
        f"15 22 25 11 * {command} job backup --robot bot",
        f"15 19 27 11 * {command} job backup --robot bot",
        f"30 22 25 11 * {command} job report --robot bot",
        f"30 19 27 11 * {command} job report --robot bot",
    ]
    assert "run out on 2026-11-28 22:00 CET" in out


def test_export_writes_files_into_a_folder(home: Path, tmp_path: Path) -> None:
    out_dir = tmp_path / "units"
    message = run("--home", str(home), "schedule", "export", "--systemd", "--out", str(out_dir), *FIXED)
    names = sorted(p.name for p in out_dir.iterdir())
    assert "robohost-bot-session-start.timer" in names
    assert "robohost-bot-session-stop.timer" in names
    assert "robohost-coin-backup.timer" in names
    assert "robohost-coin-session-start.timer" not in names  # mode auto: the server starts its sessions
    assert f"wrote {len(names)} files into {out_dir}" in message
    assert "systemctl enable --now robohost-bot-backup.timer" in message
    timer = (out_dir / "robohost-bot-session-start.timer").read_text()
    assert "OnCalendar=2026-11-27 09:30:00 America/New_York" in timer
    service = (out_dir / "robohost-bot-session-start.service").read_text()
    assert f"--home {home.resolve()} trigger run --robot bot" in service

    message = run("--home", str(home), "schedule", "export", "--cron", "--out", str(out_dir), *FIXED)
    assert (out_dir / "robohost.crontab").read_text().startswith("# robohost schedule for ")
    assert message.startswith(f"wrote {out_dir / 'robohost.crontab'}")


def test_export_prints_systemd_units(home: Path) -> None:
    out = run("--home", str(home), "schedule", "export", "--systemd", "--robot", "coin", *FIXED)
    assert "# ---- robohost-coin-backup.timer ----" in out
    assert "OnCalendar=2026-11-26 00:15:00 UTC" in out


def test_the_now_option_is_hidden(home: Path) -> None:
    out = run("schedule", "show", "--help")
    assert "--local-zone" in out
    assert "--now" not in out


def test_errors_are_one_line_with_the_config_exit_code(home: Path) -> None:
    neither = console("--home", str(home), "schedule", "export")
    assert (neither.returncode, neither.stderr) == (2, "error: choose one of --cron or --systemd\n")
    bad_zone = CliRunner().invoke(app, ["--home", str(home), "schedule", "show", "--local-zone", "Mars/Olympus"])
    assert isinstance(bad_zone.exception, ConfigError)
    assert (
        str(bad_zone.exception) == "unknown time zone 'Mars/Olympus' (use an IANA name like 'Europe/Berlin' or 'UTC')"
    )
    bad_now = CliRunner().invoke(app, ["--home", str(home), "schedule", "show", "--now", "tomorrow"])
    assert str(bad_now.exception) == "--now: expected an ISO time like 2026-11-27T14:00:00Z, got 'tomorrow'"
    (home / "robohost.toml").write_text(CONFIG.replace('\nreport = "off"', '\nreport = "close + 1 hour"'))
    bad_config = console("--home", str(home), "schedule", "show")
    assert bad_config.returncode == 2
    assert bad_config.stderr.startswith(
        f"error: {home.resolve() / 'robohost.toml'}: robots.coin.schedule.jobs.report: expected"
    )
