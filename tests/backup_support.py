"""Test harness for backups: a throwaway OpenSSH server on 127.0.0.1, age key pairs, homes with data.

``sshd_server`` starts ``/usr/sbin/sshd -D`` from a private configuration (loopback, a free port, key
authentication only, password authentication off, ``internal-sftp``) and stops it by its PID; every wait is
bounded. Import the fixtures into a test module (``from backup_support import sshd``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyrage
import pytest
import sqlalchemy as sa

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.migrate import upgrade
from robohost.services.homes import create_home
from system import need_program

LISTEN_WAIT_S = 10.0


@dataclass(frozen=True)
class SshServer:
    """A running test sshd: where it listens, its host key line, the client key that may log in, its folder."""

    port: int
    host_key: str
    client_key: Path
    root: Path
    log: Path

    def url(self, folder: Path | str) -> str:
        """``sftp://root@127.0.0.1:PORT/folder``."""
        return f"sftp://root@127.0.0.1:{self.port}{folder}"

    @property
    def host_port(self) -> str:
        """The ``backup.host_keys`` key of this server."""
        return f"127.0.0.1:{self.port}"


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def keygen(path: Path) -> Path:
    """A new ed25519 key pair without passphrase at ``path`` (and ``path.pub``)."""
    ssh_keygen = need_program("ssh-keygen", "openssh-client")
    subprocess.run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_sshd(root: Path) -> tuple[subprocess.Popen[bytes], SshServer]:
    """Start sshd for ``root`` (its keys, config and log go there); the caller stops it."""
    sshd = need_program("sshd", "openssh-server")
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    host_key = keygen(root / "host_ed25519")
    client_key = keygen(root / "client_ed25519")
    authorized = root / "authorized_keys"
    authorized.write_text((root / "client_ed25519.pub").read_text())
    authorized.chmod(0o600)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1:{port}\n"
        f"HostKey {host_key}\n"
        f"PidFile {root / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "Subsystem sftp internal-sftp\n"
        "LogLevel VERBOSE\n"
    )
    subprocess.run([sshd, "-t", "-f", str(config)], check=True, timeout=30)
    log = root / "sshd.log"
    with log.open("wb") as err:
        process = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=err, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + LISTEN_WAIT_S
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"sshd did not listen on {port}: {log.read_text()[-2000:]}")
        time.sleep(0.05)
    public = (root / "host_ed25519.pub").read_text().split()
    return process, SshServer(port, f"{public[0]} {public[1]}", client_key, root, log)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a process we started, by its PID: SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A test OpenSSH server on 127.0.0.1 for the module's tests."""
    process, server = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        stop_process(process)


@dataclass(frozen=True)
class AgeKey:
    """An age key pair: the identity file (private) and the recipient (public)."""

    identity_file: Path
    recipient: str


def age_key(folder: Path, name: str = "key.txt") -> AgeKey:
    """A new age key pair, the identity written as ``age-keygen`` writes it."""
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    path = folder / name
    path.write_text(f"# created: test\n# public key: {recipient}\n{identity}\n")
    path.chmod(0o600)
    return AgeKey(path, recipient)


BACKUP_TOML = """
[backup]
recipients = {recipients}
targets = {targets}
host_keys = {host_keys}
keep_daily = {keep_daily}
keep_weekly = 0
keep_monthly = 0
"""


def toml_list(values: list[str]) -> str:
    """A TOML array of strings."""
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def make_home(
    folder: Path,
    db_url: str | None,
    recipients: list[str],
    targets: list[str],
    host_keys: dict[str, str] | None = None,
    ssh_key: Path | None = None,
    keep_daily: int = 7,
) -> Path:
    """A robot home (``robohost init``'s) with a ``[backup]`` table, its database migrated and holding rows."""
    home = create_home(folder).path
    config = home / "robohost.toml"
    text = config.read_text()
    if db_url is not None:
        text = text.replace('url = "sqlite:///robohost.db"', f'url = "{db_url}"', 1)
    pins = "{" + ", ".join(f'"{k}" = "{v}"' for k, v in (host_keys or {}).items()) + "}"
    text += BACKUP_TOML.format(
        recipients=toml_list(recipients), targets=toml_list(targets), host_keys=pins, keep_daily=keep_daily
    )
    config.write_text(text)
    if ssh_key is not None:
        secrets = home / "secrets.toml"
        secrets.write_text(secrets.read_text() + f'\n[backup]\nssh_key = "{ssh_key}"\n')
    (home / "logs" / "robohost.log").write_text("a log line\n")
    engine = make_engine(db_url or f"sqlite:///{home / 'robohost.db'}")
    try:
        upgrade(engine)
        fill_database(engine, 300)
    finally:
        engine.dispose()
    return home


def fill_database(engine: sa.Engine, rows: int, run_id: str = "RUN1") -> None:
    """A run with ``rows`` equity points and journal lines (plain SQL: the engine is not needed here)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, robot, mode, status, started_at, seed, starting_cash, strategy, feed_signature,"
                " config, last_seq, events_processed, rejected_count) VALUES (:id, 'demo', 'replay', 'completed', 1,"
                " 42, 100000, 'x', 'sig', '{}', 0, 0, 0)"
            ),
            {"id": run_id},
        )
        conn.execute(
            sa.text("INSERT INTO equity_points (run_id, ts, equity, cash) VALUES (:run, :ts, :eq, :cash)"),
            [{"run": run_id, "ts": i, "eq": 100000.0 + i, "cash": 5000.5 + i} for i in range(rows)],
        )
        conn.execute(
            sa.text("INSERT INTO journal (run_id, seq, ts, type, data) VALUES (:run, :seq, :ts, 'note', :data)"),
            [{"run": run_id, "seq": i, "ts": i, "data": f'{{"i": {i}}}'} for i in range(rows)],
        )


def table_rows(url: str, skip: tuple[str, ...] = ()) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (sorted), to compare two databases."""
    engine = make_engine(url)
    try:
        tables = sorted(set(sa.inspect(engine).get_table_names()) - set(skip))
        with engine.connect() as conn:
            return {
                t: sorted(
                    (tuple(r) for r in conn.exec_driver_sql(f'SELECT * FROM "{t}"')),
                    key=lambda row: tuple(str(v) for v in row),
                )
                for t in tables
            }
    finally:
        engine.dispose()


def env_without_home() -> dict[str, str]:
    """The environment for a CLI subprocess, without ROBOHOST_HOME and SSH agent."""
    return {k: v for k, v in os.environ.items() if k not in ("ROBOHOST_HOME", "SSH_AUTH_SOCK")}
