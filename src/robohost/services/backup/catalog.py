"""What backups exist and where, and copying them to the owner's computer (``robohost backup list`` and ``pull``).

The list joins what the database recorded (outcome, verification) with what each target really holds, so
a backup that a target lost, or one that only a target knows, shows as such. A pull copies archives through
a ``.partial`` name, checks the size against the target's listing and, when this home recorded the backup,
the SHA-256 against the recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from robohost.adapters.backup.targets import BackupTarget
from robohost.adapters.db.backups import BackupRow, BackupStore
from robohost.errors import BackupError
from robohost.services.backup.retention import archive_sort_key, archive_time
from robohost.services.backup.settings import BackupSettings


@dataclass
class BackupListing:
    """One backup: its name and time, where copies are, and what the database recorded of it."""

    name: str
    created: datetime | None
    size: int | None
    locations: list[str] = field(default_factory=list)
    record: BackupRow | None = None


def list_backups(
    settings: BackupSettings, store: BackupStore | None, targets: list[str] | None = None
) -> tuple[list[BackupListing], list[str]]:
    """Every backup the database recorded or a target holds, newest first; and the targets that failed to list."""
    listings: dict[str, BackupListing] = {}
    if store is not None:
        for row in store.recent(1000):
            listings[row.file_name] = BackupListing(row.file_name, archive_time(row.file_name), row.size, record=row)
    errors = []
    for spec in targets or list(settings.targets):
        target = settings.open_target(spec)
        try:
            for remote in target.list():
                listing = listings.setdefault(
                    remote.name, BackupListing(remote.name, archive_time(remote.name), remote.size)
                )
                listing.locations.append(target.label)
        except BackupError as exc:
            errors.append(str(exc))
        finally:
            target.close()
    ordered = sorted(listings.values(), key=lambda item: archive_sort_key(item.name), reverse=True)
    return ordered, errors


@dataclass(frozen=True)
class Pulled:
    """One archive of a pull: where it is now, its size, and whether it was already there."""

    name: str
    path: Path
    size: int
    skipped: bool


def pull_backups(
    target: BackupTarget,
    dest: Path,
    names: list[str] | None = None,
    store: BackupStore | None = None,
) -> list[Pulled]:
    """Copy archives from ``target`` into ``dest`` (all, or ``names``); skip those already there whole."""
    remote = {f.name: f for f in target.list()}
    wanted = names if names else sorted(remote, key=archive_sort_key)
    missing = [n for n in wanted if n not in remote]
    if missing:
        raise BackupError(f"{target.label}: no backup named {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=True)
    pulled = []
    for name in wanted:
        local = dest / name
        if local.is_file() and local.stat().st_size == remote[name].size:
            pulled.append(Pulled(name, local, remote[name].size, True))
            continue
        got = target.get(name, local)
        record = store.by_name(name) if store else None
        problem = None
        if got.size != remote[name].size:
            problem = f"{got.size} bytes arrived of {remote[name].size}"
        elif record is not None and record.sha256 and got.sha256 != record.sha256:
            problem = "its SHA-256 differs from the one recorded when it was made"
        if problem:
            local.unlink(missing_ok=True)
            raise BackupError(f"{target.label}: {name}: {problem}")
        pulled.append(Pulled(name, local, got.size, False))
    return pulled
