"""``robohost report pnl`` end to end: a home made by ``init``, the real command, its files and its errors.

The report itself and the one-line error come from the console script in a subprocess; the set-up commands
and the other errors run in-process through Typer's runner, which saves starting Python each time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from robohost.cli.app import app
from robohost.errors import ConfigError, StateError
from system import need_program

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
ROBOT = "sma-cross"


def robohost(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``robohost`` console script (never raises on a non-zero exit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBOHOST_")} | {"COLUMNS": "200"}
    return subprocess.run([ROBOHOST, *args], capture_output=True, text=True, env=env, timeout=120, check=False)


def invoke(*args: str) -> Any:
    """Run a command in-process; return Typer's result."""
    return CliRunner().invoke(app, list(args), env={"ROBOHOST_HOME": None, "ROBOHOST_DATABASE_URL": None})


def ok(*args: str) -> str:
    """Run a command in-process that must succeed; return its standard output."""
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return str(result.stdout)


def fails(error: type[Exception], *args: str) -> str:
    """Run a command in-process that must raise ``error``; return its message."""
    result = invoke(*args)
    assert isinstance(result.exception, error), (result.output, result.exception)
    return str(result.exception)


@pytest.fixture(autouse=True)
def _close_robot_logs() -> Iterator[None]:
    """Close the log files that in-process runs open in the temporary homes."""
    yield
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("robohost.robot.") and isinstance(logger, logging.Logger):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                handler.close()


def test_report_pnl_writes_the_report_of_the_latest_run(tmp_path: Path) -> None:
    pdftotext = need_program("pdftotext", "poppler-utils")
    home = tmp_path / "home"
    ok("init", str(home), "--example", "sma-cross")
    config = home / "robohost.toml"
    config.write_text(config.read_text().replace('speed = "max"', 'speed = "max"\nto = "2005-01-01"'))
    h = ("--home", str(home))
    assert "has no run yet" in fails(StateError, *h, "report", "pnl")

    ok(*h, "run", "--speed", "max", "--no-progress")
    done = robohost(*h, "report", "pnl")
    assert done.returncode == 0, done.stderr
    written = re.findall(r"^wrote (.+)$", done.stdout, re.MULTILINE)
    assert [Path(p).suffix for p in written] == [".html", ".pdf", ".csv", ".json"]  # .sig.json: the signature
    assert all(Path(p).parent == home / "reports" and Path(p).is_file() for p in written)
    assert Path(written[1]).name.startswith(f"pnl-{ROBOT}-2000-")

    status = json.loads(ok(*h, "status", "--json"))["last_run"]
    summary = status["summary"]
    text = subprocess.run([pdftotext, "-layout", written[1], "-"], capture_output=True, text=True, check=True).stdout
    final, total = f"{summary['final_equity']:,.2f}", f"{summary['total_return']:+.2%}"
    assert re.search(rf"Ending equity\s+{re.escape(final)}\n", text), final
    assert re.search(rf"Total return\s+{re.escape(total)}\n", text), total
    assert re.search(rf"Fills\s+{summary['fills']}\n", text)

    # a later paper run, compared with the first run as its backtest, in another folder, PDF only
    ok(*h, "run", "--no-progress", "--from", "2003-01-01")
    out_dir = str(tmp_path / "out")
    report = json.loads(
        ok(*h, "report", "pnl", "--backtest-run", status["id"], "--format", "pdf", "--out", out_dir, "--json")
    )
    assert set(report["files"]) == {"pdf", "csv", "signature"}
    assert Path(report["files"]["pdf"]).parent == tmp_path / "out"
    assert report["summary"]["from"].startswith("2003-01")
    assert report["forward"]["verdict"] in ("consistent", "inconclusive", "inconsistent")
    assert report["forward"]["backtest"].startswith(f"run {status['id']}")
    text = subprocess.run(
        [pdftotext, "-layout", report["files"]["pdf"], "-"], capture_output=True, text=True, check=True
    ).stdout
    assert f"Verdict: {report['forward']['verdict']}" in text

    bad = tmp_path / "backtest.csv"
    bad.write_text("date,value\n2004-01-02,0.01\n")
    done = robohost(*h, "report", "pnl", "--backtest", str(bad))
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0] and "'exit_time'" in lines[0]
    assert "--format" in fails(ConfigError, *h, "report", "pnl", "--format", "docx")
    assert "no run 'nope'" in fails(StateError, *h, "report", "pnl", "--run", "nope")
    assert "--from" in fails(ConfigError, *h, "report", "pnl", "--from", "yesterday")
