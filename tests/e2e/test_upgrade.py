"""``robohost upgrade`` between locally built releases, in a virtual environment of its own.

Three wheels are built from copies of this source tree: the installed release (the tree as it is), a bad one
whose new Alembic revision fails on purpose, and a good one whose revision adds a table. A robot home is
served by ``robohost serve`` while it is upgraded: the bad upgrade rolls back to the installed version and the
pre-upgrade database and starts the server again, then the good one goes through. Dependencies come from this
checkout's environment through a ``.pth`` file listing a folder of links (never written to); nothing is
installed into it.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backup_support import age_key, env_without_home, stop_process, table_rows
from robohost.adapters.db.migrate import head_revision

REPO = Path(__file__).resolve().parents[2]
BASE = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)[1]  # type: ignore[index]
HEAD = head_revision()
NEXT = f"{int(HEAD) + 1:04d}"
"""The revision the test releases add on top of this tree's head."""
MIGRATION = '''"""A revision of the {what} test release."""

import sqlalchemy as sa
from alembic import op

revision = "{next}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("upgrade_marker", sa.Column("id", sa.Integer, primary_key=True))
    {fail}


def downgrade() -> None:
    op.drop_table("upgrade_marker")
'''
SKIP_LINKS = ("robohost", "__editable__", "pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-")


def _release(tmp_path: Path, version: str, migration: str | None) -> Path:
    """Build the wheel of this tree at ``version``, with ``migration`` as revision NEXT."""
    tree = tmp_path / f"tree-{version}"
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tree / name)
    pyproject = tree / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(f'version = "{BASE}"', f'version = "{version}"', 1))
    init = tree / "src" / "robohost" / "__init__.py"
    init.write_text(init.read_text().replace(f'__version__ = "{BASE}"', f'__version__ = "{version}"', 1))
    if migration is not None:
        (tree / "src" / "robohost" / "adapters" / "db" / "migrations" / "versions" / f"{NEXT}_test.py").write_text(
            migration
        )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(tree),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = (tmp_path / "wheels").glob(f"robohost-{version}-*.whl")
    return wheel


def _venv(tmp_path: Path) -> Path:
    """A new virtual environment that sees this checkout's dependencies (but not its robohost) through links."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    ours = Path(next(p for p in sys.path if p.endswith("site-packages")))
    links = tmp_path / "deps"
    links.mkdir()
    for entry in ours.iterdir():
        if not entry.name.startswith(SKIP_LINKS) and entry.suffix != ".pth":
            (links / entry.name).symlink_to(entry)
    (site,) = venv.glob("lib/python*/site-packages")
    (site / "robohost-test-deps.pth").write_text(f"{links}\n")
    return venv


def _run(venv: Path, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(venv / "bin" / "robohost"), *args],
        cwd=cwd,
        env=env_without_home(),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"robohost {' '.join(args)}: exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _revision(home: Path) -> str:
    import sqlite3

    with sqlite3.connect(home / "robohost.db") as db:
        return str(db.execute("SELECT version_num FROM alembic_version").fetchone()[0])


def _server_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"robohost serve started again \(pid (\d+)\)", output)]


def _wait_for_lease(home: Path, timeout: float = 60) -> None:
    lease = home / "robohost.db.lease-sma-cross"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lease.exists() and lease.read_text().startswith("serve pid"):
            return
        time.sleep(0.1)
    raise AssertionError("robohost serve did not take the robot's lease")


def _stop(pid: int) -> None:
    try:
        Path(f"/proc/{pid}").stat()
    except FileNotFoundError:
        return
    import os

    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_failing_migration_rolls_back_and_a_good_upgrade_goes_through(tmp_path: Path) -> None:
    installed = _release(tmp_path, BASE, None)
    bad = _release(
        tmp_path,
        "99.0.1",
        MIGRATION.format(what="bad", head=HEAD, next=NEXT, fail='raise RuntimeError("fails on purpose")'),
    )
    good = _release(tmp_path, "99.0.2", MIGRATION.format(what="good", head=HEAD, next=NEXT, fail="pass"))
    venv = _venv(tmp_path)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(installed)],
                   check=True, timeout=600)  # fmt: skip
    assert _run(venv, "--version", cwd=tmp_path).stdout.split() == ["robohost", BASE]

    key = age_key(tmp_path)
    home = tmp_path / "home"
    _run(venv, "init", str(home), cwd=tmp_path)
    _run(venv, "--home", str(home), "run", "--no-progress", cwd=tmp_path)
    with (home / "robohost.toml").open("a") as fh:
        fh.write(f'\n[backup]\nrecipients = ["{key.recipient}"]\ntargets = ["backups"]\n')
    (home / "robohost.toml").write_text(
        (home / "robohost.toml").read_text()
        + '\n[robots.sma-cross.schedule]\nmode = "manual"\n\n[robots.sma-cross.schedule.jobs]\n'
        + 'health = "off"\nbackup = "off"\nreport = "off"\nverify = "off"\n'
    )
    skip = ("alembic_version", "backups", "leases", "jobs", "requests")  # the upgrade's own bookkeeping
    before = table_rows(f"sqlite:///{home / 'robohost.db'}", skip=skip)
    assert len(before["fills"]) > 10
    server = subprocess.Popen(
        [str(venv / "bin" / "robohost"), "--home", str(home), "serve"],
        cwd=tmp_path,
        env=env_without_home(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: list[int] = []
    try:
        _wait_for_lease(home)
        failed = _run(venv, "--home", str(home), "upgrade", str(bad), "--no-deps", "--identity",
                      str(key.identity_file), cwd=tmp_path, check=False)  # fmt: skip
        output = " ".join(failed.stdout.split())
        started += _server_pids(failed.stdout)
        assert failed.returncode == 9, output + failed.stderr
        assert "failed at step migrate" in output and "fails on purpose" in output
        assert f"Rolled back to robohost {BASE} and the database as it was before the upgrade" in output
        assert "started the server(s) again" in output
        assert server.wait(timeout=60) == 0  # the old server was stopped cleanly (SIGTERM, exit 0)
        assert _run(venv, "--version", cwd=tmp_path).stdout.split() == ["robohost", BASE]
        assert _revision(home) == HEAD
        assert len(started) == 1
        _wait_for_lease(home)  # the server runs again, on the old version
        backups = json.loads(_run(venv, "--home", str(home), "backup", "list", "--json", cwd=tmp_path).stdout)
        assert [(b["outcome"], b["verify_outcome"]) for b in backups["backups"]] == [("ok", "ok")]

        upgraded = _run(venv, "--home", str(home), "upgrade", str(good), "--no-deps", cwd=tmp_path)
        started += _server_pids(upgraded.stdout)
        assert f"upgraded robohost {BASE} -> 99.0.2" in " ".join(upgraded.stdout.split())
        assert _run(venv, "--version", cwd=tmp_path).stdout.split() == ["robohost", "99.0.2"]
        assert _revision(home) == NEXT
        _wait_for_lease(home)
        after = table_rows(f"sqlite:///{home / 'robohost.db'}", skip=skip)
        assert after.pop("upgrade_marker") == []
        assert after == before
    finally:
        stop_process(server)
        for pid in started:
            _stop(pid)
