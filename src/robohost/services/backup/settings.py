"""What a backup of one home needs to know, resolved once from its configuration and secrets.

The SSH key passphrase is kept out of ``repr`` and never logged. ``excluded`` says which of the home's
files never go into an archive: ``secrets.toml``, the SSH key, the live database and its side files (the
snapshot stands in for them), the local backup folders and robohost's own working folders.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from robohost.adapters.backup.snapshot import database_kind, sqlite_path
from robohost.adapters.backup.targets import BackupTarget, open_target
from robohost.config.backup_syntax import check_recipient, check_target, is_sftp
from robohost.config.loader import SECRETS_FILE, Home
from robohost.errors import BackupError, ConfigError
from robohost.services.backup.retention import KeepPolicy

WORK_PREFIX = ".backup-"
ASIDE_PREFIX = ".before-restore-"
UPGRADE_DIR = ".upgrade"
ALWAYS_EXCLUDED = (SECRETS_FILE, f"{WORK_PREFIX}*", f"{ASIDE_PREFIX}*", ".restore-*", UPGRADE_DIR, "*/__pycache__")
"""Patterns (relative to the home) that never go into an archive."""


def default_label(home: Path) -> str:
    """A label from the home folder's name: letters, digits, '.', '-' and '_'."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", home.name).strip("-.") or "home"
    return label[:64]


@dataclass(frozen=True)
class BackupSettings:
    """Everything a backup of one home needs."""

    home: Path
    database_url: str = field(repr=False)
    label: str
    recipients: tuple[str, ...]
    targets: tuple[str, ...]
    host_keys: Mapping[str, str] = field(default_factory=dict)
    ssh_key: Path | None = None
    ssh_key_passphrase: str | None = field(default=None, repr=False)
    keep: KeepPolicy = field(default_factory=KeepPolicy)
    excluded_patterns: tuple[str, ...] = ALWAYS_EXCLUDED

    @classmethod
    def from_home(cls, home: Home, recipients: Iterable[str] = (), targets: Iterable[str] = ()) -> BackupSettings:
        """The home's ``[backup]`` settings, with ``recipients`` and ``targets`` (command-line options) added."""
        cfg = home.config.backup
        extra_recipients = [_checked(check_recipient, r, "--recipient") for r in recipients]
        extra_targets = [_checked(check_target, t, "--target") for t in targets]
        secrets = home.secrets.backup
        ssh_key = Path(secrets.ssh_key).expanduser() if secrets.ssh_key else None
        if ssh_key is not None and not ssh_key.is_absolute():
            ssh_key = home.path / ssh_key
        passphrase = secrets.ssh_key_passphrase.get_secret_value() if secrets.ssh_key_passphrase else None
        settings = cls(
            home=home.path,
            database_url=home.database_url,
            label=cfg.label or default_label(home.path),
            recipients=tuple(dict.fromkeys([*cfg.recipients, *extra_recipients])),
            targets=tuple(dict.fromkeys([*cfg.targets, *extra_targets])),
            host_keys=dict(cfg.host_keys),
            ssh_key=ssh_key,
            ssh_key_passphrase=passphrase,
            keep=KeepPolicy(cfg.keep_daily, cfg.keep_weekly, cfg.keep_monthly),
        )
        return settings.with_exclusions()

    def with_exclusions(self) -> BackupSettings:
        """Add the database files, local target folders and SSH key that lie inside the home to the exclusions."""
        patterns = list(self.excluded_patterns)
        inside: list[Path] = []
        if database_kind(self.database_url) == "sqlite":
            database = sqlite_path(self.database_url)
            inside += [database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}-journal")]
            inside.append(Path(f"{database}.lease-*"))
        inside += [self.target_folder(spec) for spec in self.targets if not is_sftp(spec)]
        if self.ssh_key is not None:
            inside.append(self.ssh_key)
        home = self.home.resolve()
        for path in inside:
            resolved = path.parent.resolve() / path.name
            if resolved.is_relative_to(home) and resolved != home:
                patterns.append(resolved.relative_to(home).as_posix())
        return BackupSettings(**{**self.__dict__, "excluded_patterns": tuple(dict.fromkeys(patterns))})

    def excluded(self, rel: str) -> bool:
        """True when the home's file or folder ``rel`` (posix, relative to the home) stays out of archives."""
        return any(fnmatch.fnmatchcase(rel, pattern) for pattern in self.excluded_patterns)

    def target_folder(self, spec: str) -> Path:
        """The folder of a local target (relative specs are relative to the home)."""
        folder = Path(spec).expanduser()
        return folder if folder.is_absolute() else self.home / folder

    def open_target(self, spec: str) -> BackupTarget:
        """The target named by ``spec`` (not yet connected)."""
        return open_target(spec, self.home, self.host_keys, self.ssh_key, self.ssh_key_passphrase)

    def require_recipients(self) -> None:
        """Refuse to back up without a recipient (nobody could ever open the archive)."""
        if not self.recipients:
            raise BackupError(
                'no backup recipients: add [backup] recipients = ["age1..."] to robohost.toml or pass --recipient '
                "(make a key pair with 'age-keygen -o key.txt' on your own computer; only the age1... public key "
                "goes on the server)"
            )


def _checked(check: Callable[[str], str], value: str, option: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None
