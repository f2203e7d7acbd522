"""``robohost upgrade``: install a new robohost without ever losing data; roll back on any failure.

The steps, each reported as it runs:

1. **backup** — a backup to every configured target, checked by reading it back (and, with ``--identity``,
   decrypted and verified in full). Without configured recipients this step is skipped with a warning.
2. **stop** — every robot's lease is taken. A ``robohost serve`` on this host that holds one is sent SIGTERM
   (it stops cleanly at its next commit) and is waited for; with ``--service UNIT``, ``systemctl stop UNIT``.
   A robot run from another host refuses the upgrade.
3. **snapshot** — the quiescent database is copied into ``HOME/.upgrade/`` (the pre-upgrade database), and
   the installed robohost is repacked into a wheel there (the previous version, installable offline).
4. **install** — ``python -m pip install`` the wheel or requirement.
5. **migrate** — the new version's Alembic migrations, run by the new code in a fresh interpreter.
6. **start** — the servers stopped in step 2 are started again (with the same command line), or
   ``systemctl start UNIT``.
7. **health** — the new version answers ``--version`` and ``status`` for every robot, and every restarted
   server holds its robots' leases again.

A failure in steps 4 to 7 rolls back: servers started by the upgrade are stopped, the previous wheel is
reinstalled, the pre-upgrade database is put back, the stopped servers are started again, and the result
says so. Dependencies upgraded by pip for the new version are not downgraded (they are usually backward
compatible); the previous wheel is reinstalled with ``--no-deps``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import sqlalchemy as sa

from robohost.adapters.backup.snapshot import (
    check_sqlite,
    database_kind,
    place_sqlite,
    restore_postgres,
    snapshot_postgres,
    snapshot_sqlite,
    sqlite_path,
)
from robohost.adapters.db.backups import BackupStore
from robohost.adapters.db.lease import RobotLease, process_holder, read_lease, robot_lease
from robohost.adapters.db.tables import metadata
from robohost.errors import BackupError, RobohostError
from robohost.services.backup.make import make_backup
from robohost.services.backup.settings import UPGRADE_DIR, BackupSettings
from robohost.services.backup.verify import verify_backup

DIST = "robohost"
STEP_TIMEOUT_S = 900
_HOLDER = re.compile(r"^(?P<role>\S+) pid (?P<pid>\d+)@(?P<host>.+)$")
MIGRATE_SNIPPET = (
    "import sys\n"
    "from pathlib import Path\n"
    "from robohost.adapters.db.engine import make_engine\n"
    "from robohost.adapters.db.migrate import current_revision, upgrade\n"
    "from robohost.config.loader import load_home\n"
    "engine = make_engine(load_home(Path(sys.argv[1])).database_url)\n"
    "upgrade(engine)\n"
    "print(current_revision(engine))\n"
)


@dataclass(frozen=True)
class UpgradeRequest:
    """What to install and how."""

    package: str
    index_url: str | None = None
    no_deps: bool = False
    identity: Path | None = None
    service: str | None = None
    stop_timeout_s: float = 60.0
    health_timeout_s: float = 60.0


@dataclass
class UpgradeResult:
    """How the upgrade ended, in one message people can act on."""

    ok: bool
    message: str
    previous_version: str
    new_version: str | None = None
    failed_step: str | None = None
    steps: list[str] = field(default_factory=list)


class StepError(Exception):
    """A step of the upgrade failed."""


# -- helpers --------------------------------------------------------------------------------------------------
def _run(args: list[str], what: str, timeout: float = STEP_TIMEOUT_S) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired:
        raise StepError(f"{what}: no answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
        raise StepError(f"{what}: exit {done.returncode}: {lines[-1] if lines else 'no output'}")
    return done.stdout


def _robohost(*args: str) -> list[str]:
    return [sys.executable, "-m", "robohost", *args]


def installed_version() -> str:
    """The version of robohost installed in this interpreter's environment (read afresh, not from memory)."""
    out = _run(_robohost("--version"), "robohost --version", 120)
    return out.strip().split()[-1]


def repack_installed(out_dir: Path, dist_name: str = DIST) -> Path:
    """Rebuild a wheel from the installed files of ``dist_name`` so that it can be reinstalled offline.

    Refuses an editable (development) install, whose files are a source tree rather than a release.
    """
    dist = importlib.metadata.distribution(dist_name)
    direct = dist.read_text("direct_url.json")
    if direct and json.loads(direct).get("dir_info", {}).get("editable"):
        raise BackupError(
            "this robohost is an editable (development) install: 'robohost upgrade' replaces installed releases "
            "(install one with 'pip install robohost-X.whl' first)"
        )
    files = [PurePosixPath(str(p)) for p in dist.files or []]
    info_dir = next((p.parts[0] for p in files if p.parts and p.parts[0].endswith(".dist-info")), None)
    if info_dir is None:
        raise BackupError(f"cannot find the installed files of {dist_name} (no .dist-info)")
    tags = [
        line.split(":", 1)[1].strip()
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    wheel = out_dir / f"{dist_name.replace('-', '_')}-{dist.version}-{tags[0] if tags else 'py3-none-any'}.whl"
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    skip_info = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in sorted(files):
            if ".." in rel.parts or "__pycache__" in rel.parts or rel.suffix == ".pyc":
                continue  # console scripts (regenerated by pip) and byte code
            if rel.parts[0] == info_dir and rel.name in skip_info:
                continue
            source = Path(str(dist.locate_file(str(rel))))
            if not source.is_file():
                continue
            data = source.read_bytes()
            archive.writestr(rel.as_posix(), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")
            records.append(f"{rel.as_posix()},sha256={digest},{len(data)}")
        records.append(f"{info_dir}/RECORD,,")
        archive.writestr(f"{info_dir}/RECORD", "\n".join(records) + "\n")
    return wheel


@dataclass
class _Stopped:
    """A server process the upgrade stopped, and how to start it again."""

    pid: int
    argv: list[str]
    cwd: str


def _process(pid: int) -> tuple[list[str], str] | None:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return None
    return [a.decode() for a in argv if a], cwd


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


# -- the upgrade ----------------------------------------------------------------------------------------------
class _Upgrade:
    def __init__(
        self,
        request: UpgradeRequest,
        settings: BackupSettings,
        store: BackupStore,
        robots: list[str],
        database_url: str,
        engine: sa.Engine,
        progress: Callable[[str], object],
    ) -> None:
        self.request = request
        self.settings = settings
        self.store = store
        self.robots = robots
        self.database_url = database_url
        self.engine = engine
        self.progress = progress
        self.work = settings.home / UPGRADE_DIR
        self.leases: list[RobotLease] = []
        self.stopped: list[_Stopped] = []
        self.started: list[subprocess.Popen[bytes]] = []
        self.service_stopped = False
        self.previous_wheel: Path | None = None
        self.pre_upgrade_db: Path | None = None
        self.steps: list[str] = []

    def say(self, step: str, text: str) -> None:
        self.steps.append(f"{step}: {text}")
        self.progress(f"[{step}] {text}")

    # 1
    def backup(self) -> None:
        if not self.settings.recipients:
            self.say(
                "backup", "skipped: no [backup] recipients in robohost.toml (the pre-upgrade snapshot still protects)"
            )
            return
        report = make_backup(self.settings, self.store, trigger="upgrade")
        self.say("backup", report.summary)
        if self.request.identity is not None:
            checked = verify_backup(report.name, self.request.identity, self.settings, self.store)
            if not checked.ok:
                raise StepError(f"the pre-upgrade backup fails verification: {checked.summary}")
            self.say("backup", f"verified: {checked.summary}")

    # 2
    def stop(self) -> None:
        here = socket.gethostname()
        deadline = time.monotonic() + self.request.stop_timeout_s
        for robot in self.robots:
            lease = robot_lease(self.engine, robot, process_holder("upgrade"))
            if not lease.try_acquire():
                self._stop_holder(robot, here)
                while not lease.try_acquire():
                    if time.monotonic() > deadline:
                        raise StepError(f"robot {robot} did not stop within {self.request.stop_timeout_s:.0f} s")
                    time.sleep(0.2)
            self.leases.append(lease)
        self.say("stop", f"{len(self.robots)} robot(s) stopped and locked ({len(self.stopped)} server(s) stopped)")

    def _stop_holder(self, robot: str, here: str) -> None:
        if self.request.service and not self.service_stopped:
            _run(["systemctl", "stop", self.request.service], f"systemctl stop {self.request.service}", 300)
            self.service_stopped = True
            return
        row = read_lease(self.engine, robot)
        match = _HOLDER.match(row.holder) if row else None
        if match is None or match["host"] not in (here, os.uname().nodename):
            holder = row.holder if row else "an unknown process"
            raise StepError(f"robot {robot} is run by {holder}: stop it there first (or pass --service UNIT)")
        pid = int(match["pid"])
        if any(s.pid == pid for s in self.stopped):
            return
        command = _process(pid)
        if match["role"] != "serve" or command is None:
            raise StepError(f"robot {robot} is run by {row.holder if row else pid}: stop it first")
        os.kill(pid, signal.SIGTERM)
        self.stopped.append(_Stopped(pid, *command))
        self.say("stop", f"sent SIGTERM to robohost serve (pid {pid})")

    # 3
    def snapshot(self) -> None:
        self.work.mkdir(exist_ok=True)
        self.previous_wheel = repack_installed(self.work)
        self.engine.dispose()
        if database_kind(self.database_url) == "sqlite":
            self.pre_upgrade_db = self.work / "pre-upgrade.db"
            self.pre_upgrade_db.unlink(missing_ok=True)
            snapshot_sqlite(sqlite_path(self.database_url), self.pre_upgrade_db)
            problems = check_sqlite(self.pre_upgrade_db)[0]
            if problems:
                raise StepError(f"the database fails its integrity check before the upgrade: {problems[0]}")
        else:
            self.pre_upgrade_db = self.work / "pre-upgrade.pgdump"
            self.pre_upgrade_db.unlink(missing_ok=True)
            snapshot_postgres(self.database_url, self.pre_upgrade_db)
        self.say("snapshot", f"database saved to {self.pre_upgrade_db}; previous version to {self.previous_wheel.name}")

    # 4
    def install(self) -> None:
        args = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade"]
        if self.request.no_deps:
            args += ["--no-deps", "--force-reinstall"]
        if self.request.index_url:
            args += ["--index-url", self.request.index_url]
        _run([*args, self.request.package], f"pip install {self.request.package}")
        self.say("install", f"installed robohost {installed_version()}")

    # 5
    def migrate(self) -> None:
        revision = _run([sys.executable, "-c", MIGRATE_SNIPPET, str(self.settings.home)], "migrations").strip()
        self.say("migrate", f"database at revision {revision.splitlines()[-1] if revision else '?'}")

    # 6
    def start(self) -> None:
        for lease in self.leases:
            lease.release()
        self.leases.clear()
        if self.service_stopped and self.request.service:
            _run(["systemctl", "start", self.request.service], f"systemctl start {self.request.service}", 300)
            self.say("start", f"systemctl start {self.request.service}")
        log_file = self.settings.home / "logs" / "serve-upgrade.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        for stopped in self.stopped:
            with log_file.open("ab") as log:
                process = subprocess.Popen(
                    stopped.argv,
                    cwd=stopped.cwd,
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self.started.append(process)
            self.say("start", f"robohost serve started again (pid {process.pid})")

    # 7
    def health(self) -> None:
        _run(_robohost("--version"), "robohost --version", 120)
        for robot in self.robots:
            _run(
                _robohost("--home", str(self.settings.home), "status", "--robot", robot, "--json"),
                f"status of {robot}",
                120,
            )
        if self.started:
            self._wait_for_leases()
        self.say("health", f"robohost answers; status of {len(self.robots)} robot(s) ok")

    def _wait_for_leases(self) -> None:
        deadline = time.monotonic() + self.request.health_timeout_s
        waiting = set(self.robots)
        while waiting:
            for process in self.started:
                if process.poll() is not None:
                    raise StepError(
                        f"robohost serve (pid {process.pid}) exited with {process.returncode} after starting"
                    )
            for robot in list(waiting):
                probe = robot_lease(self.engine, robot, process_holder("upgrade-health"))
                if probe.try_acquire():
                    probe.release()
                else:
                    waiting.discard(robot)
            if waiting and time.monotonic() > deadline:
                raise StepError(f"no server took robot(s) {', '.join(sorted(waiting))} within the health timeout")
            if waiting:
                time.sleep(0.2)

    # rollback
    def stop_started(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=self.request.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=30)
        self.started.clear()
        if self.service_stopped and self.request.service:
            _run(["systemctl", "stop", self.request.service], f"systemctl stop {self.request.service}", 300)

    def roll_back(self) -> None:
        self.stop_started()
        if self.previous_wheel is not None:
            _run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
                 "--force-reinstall", str(self.previous_wheel)],
                "reinstalling the previous version",
            )  # fmt: skip
        self.engine.dispose()
        if self.pre_upgrade_db is not None:
            if database_kind(self.database_url) == "sqlite":
                place_sqlite(self.pre_upgrade_db, sqlite_path(self.database_url))
            else:
                restore_postgres(self.pre_upgrade_db, self.database_url, metadata.tables)
        self.start()

    def release(self) -> None:
        for lease in self.leases:
            lease.release()
        self.leases.clear()


def run_upgrade(
    request: UpgradeRequest,
    settings: BackupSettings,
    store: BackupStore,
    robots: list[str],
    database_url: str,
    engine: sa.Engine,
    progress: Callable[[str], object] = print,
) -> UpgradeResult:
    """Run the upgrade (see the module's docstring) and say how it ended."""
    previous = importlib.metadata.version(DIST)
    job = _Upgrade(request, settings, store, robots, database_url, engine, progress)
    step = "backup"
    try:
        for name, action in (("backup", job.backup), ("stop", job.stop), ("snapshot", job.snapshot)):
            step = name
            action()
    except (StepError, RobohostError, OSError, sa.exc.SQLAlchemyError) as exc:
        job.release()
        if job.stopped or job.service_stopped:
            job.start()
        message = f"upgrade not started: step {step} failed: {exc}. Nothing was changed."
        return UpgradeResult(False, message, previous, failed_step=step, steps=job.steps)
    try:
        for name, action in (("install", job.install), ("migrate", job.migrate), ("start", job.start)):
            step = name
            action()
        step = "health"
        job.health()
        new = installed_version()
    except (StepError, RobohostError, OSError, sa.exc.SQLAlchemyError) as exc:
        failure = f"upgrade to {request.package} failed at step {step}: {exc}"
        try:
            job.roll_back()
            back = installed_version()
        except (StepError, RobohostError, OSError, sa.exc.SQLAlchemyError) as again:
            message = (
                f"{failure}. ROLLBACK FAILED: {again}. The previous version is {job.previous_wheel} and the "
                f"pre-upgrade database {job.pre_upgrade_db}: reinstall and put them back by hand."
            )
            return UpgradeResult(False, message, previous, failed_step=step, steps=job.steps)
        restarted = " and started the server(s) again" if job.started or job.service_stopped else ""
        message = (
            f"{failure}. Rolled back to robohost {back} and the database as it was before the upgrade "
            f"(saved in {job.pre_upgrade_db}){restarted}."
        )
        return UpgradeResult(False, message, previous, back, failed_step=step, steps=job.steps)
    finally:
        job.release()
    message = f"upgraded robohost {previous} -> {new}; the pre-upgrade database is kept in {job.pre_upgrade_db}"
    return UpgradeResult(True, message, previous, new, steps=job.steps)
