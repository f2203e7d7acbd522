"""Restore a home from an archive: check it completely first, move the current state aside, then put it back.

1. The archive is decrypted and read into a staging folder beside the home; every hash must match the
   manifest and the database snapshot must pass its checks, or nothing is touched.
2. A home that is in use (it has a ``robohost.toml``, or any file but ``secrets.toml``) is only replaced with
   ``force``; then every robot's lease is taken (a robot run by a server refuses the restore), and the current
   state is moved aside to ``HOME/.before-restore-TIME/`` (a PostgreSQL database is dumped there first).
   ``secrets.toml`` and local backup folders stay where they are.
3. The home's files are moved in, the database is put in place (a SQLite file; PostgreSQL: robohost's
   tables are replaced in one transaction), its row counts are compared with the manifest, and it is
   migrated to this robohost's schema. If a step fails, the moved-aside state is put back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from robohost.adapters.backup.archive import Manifest, file_sha256, load_identities, read_archive
from robohost.adapters.backup.snapshot import (
    SNAPSHOT_FILES,
    check_sqlite,
    database_kind,
    place_sqlite,
    restore_postgres,
    snapshot_postgres,
    sqlite_counts,
    sqlite_files,
    sqlite_path,
)
from robohost.adapters.db.backups import BackupStore
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.lease import RobotLease, process_holder, read_lease, robot_lease
from robohost.adapters.db.migrate import alembic_config, upgrade
from robohost.adapters.db.tables import metadata
from robohost.config.backup_syntax import is_sftp
from robohost.config.loader import CONFIG_FILE, SECRETS_FILE, load_home
from robohost.errors import BackupError, RobohostError, StateError
from robohost.services.backup.make import ns, utc_now
from robohost.services.backup.settings import ASIDE_PREFIX, BackupSettings

log = logging.getLogger("robohost.backup")


@dataclass
class RestoreReport:
    """What a restore did."""

    home: Path
    database: str
    row_counts: dict[str, int]
    files: int
    moved_aside: Path | None = None
    migrated_from: str | None = None
    notes: list[str] = field(default_factory=list)


def known_revision(revision: str | None) -> bool:
    """True when this robohost's migrations know ``revision`` (None: an empty database)."""
    if revision is None:
        return True
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


def home_in_use(home: Path) -> bool:
    """True when ``home`` holds a robot home or anything besides ``secrets.toml`` and moved-aside states."""
    if not home.is_dir():
        return False
    if (home / CONFIG_FILE).exists():
        return True
    ignored = (ASIDE_PREFIX, ".restore-")
    return any(p.name != SECRETS_FILE and not p.name.startswith(ignored) for p in home.iterdir())


@contextlib.contextmanager
def _leases(home: Path) -> Iterator[None]:
    """Hold every robot's lease of the current home (if it opens), so that no server runs it meanwhile."""
    try:
        current = load_home(home)
    except RobohostError:
        yield
        return
    held: list[RobotLease] = []
    engine = make_engine(current.database_url)
    try:
        if current.database_url.startswith("sqlite") and not sqlite_path(current.database_url).exists():
            yield
            return
        for robot in current.config.robots:
            lease = robot_lease(engine, robot, process_holder("restore"))
            try:
                got = lease.try_acquire()
            except sa.exc.DBAPIError:
                continue  # a database too old to have leases: nothing can be running it under a lease
            if not got:
                row = read_lease(engine, robot)
                raise StateError(
                    f"robot {robot} is run by {row.holder if row else 'another process'}: stop it "
                    "(stop robohost serve) before restoring"
                )
            held.append(lease)
        yield
    finally:
        for lease in held:
            lease.release()
        engine.dispose()


def _move_aside(home: Path, keep: set[str], when: datetime, database_url: str | None) -> Path:
    aside = home / f"{ASIDE_PREFIX}{when:%Y%m%dT%H%M%SZ}"
    aside.mkdir()
    for entry in sorted(home.iterdir()):
        if entry.name in keep or entry.name.startswith(ASIDE_PREFIX) or entry == aside:
            continue
        entry.rename(aside / entry.name)
    if database_url is None:
        return aside
    if database_kind(database_url) == "sqlite":
        (aside / "database").mkdir()
        for file in sqlite_files(sqlite_path(database_url)):
            shutil.move(file, aside / "database" / file.name)
    else:
        (aside / "database").mkdir()
        snapshot_postgres(database_url, aside / "database" / SNAPSHOT_FILES["postgresql"])
    return aside


def _remove(home: Path, placed: list[str]) -> None:
    for name in placed:
        path = home / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _put_back(home: Path, aside: Path, database_url: str | None) -> None:
    saved_db = aside / "database"
    for entry in aside.iterdir():
        if entry != saved_db:
            entry.rename(home / entry.name)
    if database_url is not None and saved_db.is_dir():
        if database_kind(database_url) == "sqlite":
            target = sqlite_path(database_url)
            for file in saved_db.iterdir():
                os.replace(file, target.with_name(file.name))
        else:
            restore_postgres(saved_db / SNAPSHOT_FILES["postgresql"], database_url, metadata.tables)
    shutil.rmtree(aside, ignore_errors=True)


def _current_database(home: Path) -> str | None:
    try:
        return load_home(home).database_url
    except RobohostError:
        return None


def restore_archive(
    archive: Path,
    identity: Path,
    home: Path,
    *,
    force: bool = False,
    now: datetime | None = None,
) -> RestoreReport:
    """Restore ``home`` from ``archive`` (decrypted with ``identity``); see the module's docstring."""
    identities = load_identities(identity)
    when = now or utc_now()
    home = home.expanduser().resolve()
    in_use = home_in_use(home)
    if in_use and not force:
        raise StateError(
            f"{home} holds a robot home: restoring would replace it. Run again with --force: the current state is "
            f"moved aside to {home}/{ASIDE_PREFIX}TIME/ first"
        )
    home.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=home))
    try:
        contents = read_archive(archive, identities, staging / "work", home_dest=staging / "home")
        manifest = contents.manifest
        if contents.problems or manifest is None or contents.database_file is None:
            problems = contents.problems or ["the archive holds no manifest or database"]
            raise BackupError(f"{archive.name} fails its checks, nothing was changed: {'; '.join(problems[:3])}")
        if not known_revision(manifest.schema_revision):
            raise BackupError(
                f"{archive.name} was made by robohost {manifest.robohost_version} with database revision "
                f"{manifest.schema_revision}, which this robohost does not know: install that version or newer"
            )
        if manifest.database["kind"] == "sqlite":
            problems, _, _ = check_sqlite(contents.database_file)
            if problems:
                raise BackupError(f"the database in {archive.name} fails its checks: {problems[0]}")
        return _replace(archive, home, staging, contents.database_file, manifest, when if in_use else None)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(
    archive: Path, home: Path, staging: Path, snapshot: Path, manifest: Manifest, aside_at: datetime | None
) -> RestoreReport:
    """Move the current state aside (when ``aside_at`` is given: the home was in use) and put the backup in."""
    with _leases(home):
        old_url = _current_database(home)
        keep = {SECRETS_FILE, staging.name}
        old_settings = None
        with contextlib.suppress(RobohostError):
            old_settings = BackupSettings.from_home(load_home(home))
        if old_settings is not None:
            keep |= {
                p.relative_to(home).parts[0]
                for spec in old_settings.targets
                if not is_sftp(spec)
                and (p := old_settings.target_folder(spec).resolve()).is_relative_to(home)
                and p != home
            }
        aside = _move_aside(home, keep, aside_at, old_url) if aside_at is not None else None
        placed: list[str] = []
        try:
            for entry in sorted((staging / "home").iterdir()):
                if (home / entry.name).exists():
                    continue  # secrets.toml and local backup folders stay as they are
                entry.rename(home / entry.name)
                placed.append(entry.name)
            report = _place_database(archive, home, snapshot, manifest)
        except BaseException:
            _remove(home, placed)
            if aside is not None:
                _put_back(home, aside, old_url)
            raise
        report.files = len([f for f in manifest.files if f.path.startswith("home/")])
        report.moved_aside = aside
        return report


def _place_database(archive: Path, home: Path, snapshot: Path, manifest: Manifest) -> RestoreReport:
    loaded = load_home(home)
    url = loaded.database_url
    kind = database_kind(url)
    if kind != manifest.database["kind"]:
        raise BackupError(
            f"the backup holds a {manifest.database['kind']} database but this home's database is {kind}: "
            "set database.url (or ROBOHOST_DATABASE_URL) to a database of the backup's kind"
        )
    if kind == "sqlite":
        place_sqlite(snapshot, sqlite_path(url))
        counts, revision = sqlite_counts(sqlite_path(url))  # the snapshot passed its integrity check already
    else:
        counts = restore_postgres(snapshot, url, metadata.tables)
        revision = manifest.schema_revision
    expected = manifest.database.get("row_counts", {})
    if counts != expected:
        differ = sorted(t for t in set(counts) | set(expected) if counts.get(t) != expected.get(t))
        raise BackupError(f"the restored database's row counts differ from the manifest's in {', '.join(differ)}")
    engine = make_engine(url)
    try:
        upgrade(engine)
        store = BackupStore(engine)
        size, sha256 = file_sha256(archive)
        store.mark_restored(archive.name, size, sha256)  # the snapshot saw its own backup as still running
        store.mark_interrupted(ns(utc_now()) + 1, "in progress when the restored snapshot was taken")
    finally:
        engine.dispose()
    shown = make_url_safe(url)
    migrated = revision if revision != _head() else None
    return RestoreReport(home, shown, counts, 0, migrated_from=migrated)


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def make_url_safe(url: str) -> str:
    """The database URL without its password, for messages."""
    return sa.engine.make_url(url).render_as_string(hide_password=True)
