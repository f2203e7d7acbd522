"""The ``robohost`` command on SQLite homes in a temporary folder.

Exit codes and error lines come from the real console script in a subprocess (``robohost``); commands that
succeed run in-process through Typer's runner (``cli``), which is much faster than starting Python again.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from robohost.cli.app import app

ROBOHOST = Path(sys.executable).with_name("robohost")
ROBOT = "sma-cross"


def robohost(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``robohost`` console script; never raises on a non-zero exit."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")}
    base["COLUMNS"] = "200"
    return subprocess.run(
        [str(ROBOHOST), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=base | (env or {}),
        timeout=120,
        check=False,
    )


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    """Run a ``robohost`` command in-process, require success, and return its standard output."""
    unset: dict[str, str | None] = {"ROBOHOST_HOME": None, "ROBOHOST_DATABASE_URL": None, "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=unset | (env or {}))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def as_json(*args: str, env: dict[str, str] | None = None) -> Any:
    """Run a ``robohost`` command in-process and parse its standard output as JSON."""
    return json.loads(ok(*args, env=env))


def assert_one_error_line(done: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The command failed with ``code`` and said so in one ``error:`` line, without a traceback."""
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def set_in_config(home: Path, old: str, new: str) -> None:
    """Replace one line of the home's robohost.toml."""
    config = home / "robohost.toml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


@pytest.fixture(autouse=True, scope="module")
def _close_robot_logs() -> Iterator[None]:
    """Close the log files that in-process runs opened in the temporary homes."""
    yield
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("robohost.robot.") and isinstance(logger, logging.Logger):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()


@pytest.fixture(scope="module")
def ran_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home made by ``init`` that has run once, on the first years of the sample data."""
    home = tmp_path_factory.mktemp("cli") / "home"
    ok("init", str(home))
    set_in_config(home, 'speed = "max"', 'speed = "max"\nto = "2004-01-01"')
    ok("--home", str(home), "run", "--no-progress")
    return home


def test_init_creates_the_home(tmp_path: Path) -> None:
    home = tmp_path / "new"
    done = robohost("init", str(home))
    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout
    assert (home / "robohost.toml").is_file()
    assert (home / "strategies" / "sma_cross.py").is_file()
    assert (home / "data").is_dir()
    assert (home / "data" / "stocks_daily.csv.gz").is_file()
    secrets = home / "secrets.toml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    with sqlite3.connect(home / "robohost.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "orders", "fills", "equity_points", "robot_state"} <= tables


def test_init_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert_one_error_line(robohost("init", str(tmp_path)), 5, "not empty")


def test_run_json_reports_a_completed_run(ran_home: Path) -> None:
    # a second run of the same robot on the same data gives the same figures
    first = as_json("--home", str(ran_home), "status", "--json")["last_run"]
    again = as_json("--home", str(ran_home), "run", "--no-progress", "--json")
    assert again["status"] == "completed"
    assert again["robot"] == ROBOT
    assert again["events"] == first["events"] > 0
    assert again["fills"] == first["summary"]["fills"] > 0
    assert again["final_equity"] == first["summary"]["final_equity"]
    assert again["database"] == str(ran_home.resolve() / "robohost.db")
    assert as_json("--home", str(ran_home), "status", "--json")["last_run"]["id"] == again["run_id"]


def test_status_orders_fills_and_equity_agree(ran_home: Path) -> None:
    home = ("--home", str(ran_home))
    status = as_json(*home, "status", "--json")
    orders = as_json(*home, "orders", "--json")
    fills = as_json(*home, "fills", "--json")
    equity = as_json(*home, "equity", "--json")
    run = status["last_run"]
    summary = run["summary"]
    assert (status["robot"], status["state"], run["status"]) == (ROBOT, "idle", "completed")
    assert {o["run_id"] for o in orders} == {f["run_id"] for f in fills} == {run["id"]}

    assert summary["fills"] == len(fills)
    assert summary["equity_points"] == len(equity)
    assert summary["final_equity"] == round(equity[-1]["equity"], 2)
    assert summary["fees"] == pytest.approx(float(sum(Decimal(f["fee"]) for f in fills)))

    filled: dict[str, float] = defaultdict(float)
    fees: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills:
        filled[f["order_id"]] += f["qty"]
        fees[f["order_id"]] += Decimal(f["fee"])
    by_id = {o["id"]: o for o in orders}
    assert set(filled) <= set(by_id)
    for o in orders:
        assert filled.get(o["id"], 0.0) == o["filled_qty"]
        assert fees.get(o["id"], Decimal(0)) == Decimal(o["fees"])
        assert (o["status"] == "filled") == (o["filled_qty"] == o["qty"])

    held: dict[str, float] = defaultdict(float)
    realized: dict[str, Decimal] = defaultdict(Decimal)
    for f in fills:
        held[f["symbol"]] += f["qty"] if f["side"] == "buy" else -f["qty"]
        realized[f["symbol"]] += Decimal(f["realized_pnl"])
    positions = {p["symbol"]: p for p in status["positions"]}
    assert set(positions) == set(held)
    for symbol, p in positions.items():
        assert Decimal(p["qty"]) == Decimal(str(held[symbol]))
        assert Decimal(p["realized_pnl"]) == realized[symbol]

    spent = sum(f["qty"] * f["price"] * (1 if f["side"] == "buy" else -1) for f in fills)
    cash = summary["starting_equity"] - spent - summary["fees"]
    assert equity[-1]["cash"] == pytest.approx(cash, abs=1e-6)
    assert [p["ts"] for p in equity] == sorted({p["ts"] for p in equity})


def test_limit_keeps_the_newest_rows(ran_home: Path) -> None:
    home = ("--home", str(ran_home))
    fills = as_json(*home, "fills", "--json")
    assert as_json(*home, "fills", "--json", "--limit", "3") == fills[-3:]


def test_tables_are_printed_without_json(ran_home: Path) -> None:
    out = ok("--home", str(ran_home), "status")
    assert f"robot {ROBOT}: idle" in out
    assert "positions" in out


def test_an_error_is_one_line_with_an_exit_code_and_no_traceback(tmp_path: Path) -> None:
    done = robohost("--home", str(tmp_path), "status")
    assert_one_error_line(done, 2, str(tmp_path), "is not a robot home", "robohost init")


def test_a_config_error_names_the_file_and_key(ran_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "bad"
    home.mkdir()
    text = (ran_home / "robohost.toml").read_text().replace("latency_ms = 250", "latency = 250")
    (home / "robohost.toml").write_text(text)
    done = robohost("--home", str(home), "status")
    assert_one_error_line(done, 2, "robohost.toml", f"robots.{ROBOT}.fills.latency", "unknown key")


def test_a_state_error_has_its_own_exit_code(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok("init", str(home))
    assert_one_error_line(robohost("--home", str(home), "equity"), 5, "no equity points yet")
    assert as_json("--home", str(home), "equity", "--json") == []


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    done = robohost("--debug", "--home", str(tmp_path), "status")
    assert done.returncode == 2
    assert "Traceback (most recent call last)" in done.stderr
    assert "ConfigError" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")


def test_a_home_with_two_robots_needs_robot(ran_home: Path, tmp_path: Path) -> None:
    home = tmp_path / "two"
    home.mkdir()
    (home / "strategies").symlink_to(ran_home / "strategies")
    (home / "data").symlink_to(ran_home / "data")
    text = (ran_home / "robohost.toml").read_text()
    robot = text[text.index(f"[robots.{ROBOT}]") :]
    (home / "robohost.toml").write_text(text + "\n" + robot.replace(f"robots.{ROBOT}", "robots.twin"))
    done = robohost("--home", str(home), "status")
    assert_one_error_line(done, 2, "several robots", "--robot")
    assert as_json("--home", str(home), "status", "--robot", "twin", "--json")["robot"] == "twin"
    assert_one_error_line(robohost("--home", str(home), "status", "--robot", "nobody"), 2, "no robot named 'nobody'")


def test_the_home_can_come_from_the_environment(ran_home: Path, tmp_path: Path) -> None:
    done = robohost("status", "--json", cwd=tmp_path, env={"ROBOHOST_HOME": str(ran_home)})
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["robot"] == ROBOT
    assert status["last_run"]["status"] == "completed"


def test_the_current_folder_is_the_default_home(ran_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ran_home)
    assert as_json("status", "--json")["robot"] == ROBOT


def test_a_halted_robot_needs_resume(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok("init", str(home))
    set_in_config(home, 'speed = "max"', 'speed = "max"\nto = "2001-01-01"')
    set_in_config(home, "max_daily_loss = 20000", "max_daily_loss = 0.5")  # the first fee breaks it
    outcome = as_json("--home", str(home), "run", "--no-progress", "--json")
    assert outcome["status"] == "halted"
    assert "daily loss" in outcome["halt_reason"]
    assert as_json("--home", str(home), "status", "--json")["state"] == "halted"

    assert_one_error_line(robohost("--home", str(home), "run", "--no-progress"), 4, "is halted", "robohost resume")
    assert "resumed" in ok("--home", str(home), "resume")
    assert as_json("--home", str(home), "status", "--json")["state"] == "idle"
    assert_one_error_line(robohost("--home", str(home), "resume"), 5, "is not halted")


def test_a_strategy_that_cannot_be_loaded_exits_3(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok("init", str(home))
    set_in_config(home, "sma_cross.py:SmaCross", "sma_cross.py:Nope")
    assert_one_error_line(robohost("--home", str(home), "run", "--no-progress"), 3, "defines no 'Nope'")


def test_version() -> None:
    assert ok("--version").strip().startswith("robohost ")


def test_from_and_to_override_the_replay_window(ran_home: Path) -> None:
    whole = as_json("--home", str(ran_home), "status", "--json")["last_run"]["events"]
    part = as_json(
        "--home", str(ran_home), "run", "--no-progress", "--json", "--from", "2002-01-01", "--to", "2003-01-01"
    )
    assert part["status"] == "completed"
    assert 0 < part["events"] < whole
    assert part["events"] == 3 * 252  # the trading days of 2002 for AAPL, IBM and MSFT (GOOG listed in 2004)
    times = [p["time"] for p in as_json("--home", str(ran_home), "equity", "--json")]
    assert times[0] >= "2002-01-01" and times[-1] < "2003-01-02"


def test_resume_without_an_unfinished_run_is_a_state_error(ran_home: Path) -> None:
    assert_one_error_line(robohost("--home", str(ran_home), "run", "--resume"), 5, "no unfinished run")


def test_a_bad_speed_is_a_config_error(ran_home: Path) -> None:
    assert_one_error_line(robohost("--home", str(ran_home), "run", "--speed", "fast"), 2, "speed")
