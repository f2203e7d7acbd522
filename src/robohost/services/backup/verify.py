"""Verify backups: in full with the owner's private key, or, on schedule, as far as the server can without it.

- ``verify_backup`` (``robohost backup verify --identity KEY``): download the archive, decrypt it, check
  every file's SHA-256 against the manifest, restore the database into a temporary place (a SQLite file; a
  temporary PostgreSQL database) and check it there: ``PRAGMA integrity_check`` and ``foreign_key_check`` on
  SQLite, a clean ``pg_restore`` on PostgreSQL, and on both the row count of every table against the
  manifest and the schema revision.
- ``check_backups`` (the weekly ``verify`` chore): the server holds only public keys, so it cannot decrypt.
  It reads the newest backup back from every target and checks what it can: the size and SHA-256 equal
  those recorded when the backup was made, and the age header is intact and addressed to as many X25519
  recipients (and to the same SSH keys) as the backup was made for.

Both record their result on the backup's row (``verified_at``, ``verify_outcome``, ``verify_detail``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from robohost.adapters.backup.archive import (
    Manifest,
    load_identities,
    read_age_header,
    read_archive,
    ssh_key_tag,
)
from robohost.adapters.backup.snapshot import check_postgres, check_sqlite
from robohost.adapters.backup.targets import BackupTarget, RemoteCheck
from robohost.adapters.db.backups import BackupStore
from robohost.errors import BackupError
from robohost.services.backup.make import ns, utc_now
from robohost.services.backup.retention import archive_label, archive_sort_key, archive_time
from robohost.services.backup.settings import WORK_PREFIX, BackupSettings


@dataclass
class VerifyReport:
    """The result of a full verification."""

    name: str
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    row_counts: dict[str, int] = field(default_factory=dict)
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    @property
    def summary(self) -> str:
        """One line."""
        if self.ok:
            rows = sum(self.row_counts.values())
            return (
                f"{self.name}: OK - decrypted, {self.files_checked} file hashes match the manifest, database "
                f"restored and checked ({len(self.row_counts)} tables, {rows} rows as in the manifest)"
            )
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"{self.name}: FAILED - {self.problems[0]}{more}"


def _compare_database(report: VerifyReport, manifest: Manifest, counts: dict[str, int], revision: str | None) -> None:
    expected = manifest.database.get("row_counts", {})
    for table in sorted(set(expected) | set(counts)):
        if expected.get(table) != counts.get(table):
            report.problems.append(
                f"table {table}: {counts.get(table, 'missing')} rows restored, the manifest says "
                f"{expected.get(table, 'no such table')}"
            )
    if revision != manifest.schema_revision:
        report.problems.append(f"schema revision {revision} restored, the manifest says {manifest.schema_revision}")


def verify_archive(
    archive: Path, identity: Path, postgres_url: str | None = None, work_parent: Path | None = None
) -> VerifyReport:
    """Decrypt ``archive`` with ``identity``, check every hash, restore the database temporarily and check it.

    A PostgreSQL dump is restored into a temporary database on the server of ``postgres_url``.
    """
    identities = load_identities(identity)
    report = VerifyReport(archive.name)
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}verify-", dir=work_parent))
    try:
        try:
            contents = read_archive(archive, identities, work)
        except BackupError as exc:
            report.problems.append(str(exc))
            return report
        report.problems += contents.problems
        report.files_checked = contents.files_checked
        report.manifest = manifest = contents.manifest
        if manifest is None:
            return report
        if contents.database_file is None:
            report.problems.append("the archive holds no database snapshot")
            return report
        kind = manifest.database.get("kind")
        if kind == "sqlite":
            problems, counts, revision = check_sqlite(contents.database_file)
        elif kind == "postgresql" and postgres_url:
            problems, counts, revision = check_postgres(contents.database_file, postgres_url)
        else:
            report.problems.append(
                f"the {kind} database dump cannot be restored here: verify from a home whose database is PostgreSQL"
            )
            return report
        report.problems += [f"database: {p}" for p in problems]
        report.row_counts = counts
        if not problems:
            _compare_database(report, manifest, counts, revision)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def newest(target: BackupTarget, label: str | None) -> str:
    """The name of the newest archive (of ``label``, when given) on ``target``."""
    names = [
        f.name for f in target.list() if archive_time(f.name) and (label is None or archive_label(f.name) == label)
    ]
    if not names:
        raise BackupError(f"{target.label}: no backups" + (f" of {label}" if label else ""))
    return max(names, key=archive_sort_key)


def _fetch(settings: BackupSettings, target_spec: str | None, name: str | None, work: Path) -> tuple[Path, RemoteCheck]:
    spec = target_spec or (settings.targets[0] if settings.targets else None)
    if spec is None:
        raise BackupError("no backup target to verify from: pass --target or configure [backup] targets")
    target = settings.open_target(spec)
    try:
        chosen = name or newest(target, settings.label)
        return work / chosen, target.get(chosen, work / chosen)
    finally:
        target.close()


def verify_backup(
    source: str | None,
    identity: Path,
    settings: BackupSettings | None,
    store: BackupStore | None,
    target_spec: str | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> VerifyReport:
    """Verify a backup in full: a local archive file, or one on a target (by name; default the newest).

    When the backup is recorded in ``store``, the downloaded copy's size and SHA-256 must equal the recorded
    ones, and the result is recorded.
    """
    local = Path(source) if source else None
    work = Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}download-", dir=settings.home if settings else None))
    try:
        if local is not None and local.is_file():
            archive, got = local, None
        elif settings is None:
            raise BackupError(f"{source} is not a file (to verify a backup on a target, run this in its home)")
        else:
            archive, got = _fetch(settings, target_spec, source, work)
        postgres = settings.database_url if settings and settings.database_url.startswith("postgres") else None
        report = verify_archive(archive, identity, postgres, work_parent=settings.home if settings else None)
        record = store.by_name(archive.name) if store else None
        if record is not None and got is not None and (got.size, got.sha256) != (record.size, record.sha256):
            report.problems.insert(0, "the target's copy differs from the archive that was made (size or SHA-256)")
        if store is not None:
            outcome = "ok" if report.ok else "failed"
            store.record_verification(archive.name, ns(clock()), outcome, f"full: {report.summary}")
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- the weekly check without the private key -----------------------------------------------------------------
def _header_problems(got: RemoteCheck, recipients: list[str]) -> list[str]:
    try:
        header = read_age_header(got.head)
    except BackupError as exc:
        return [str(exc)]
    problems = []
    age_keys = [r for r in recipients if r.startswith("age1")]
    if header.count("X25519") != len(age_keys):
        problems.append(f"the age header has {header.count('X25519')} X25519 recipient(s), expected {len(age_keys)}")
    tags = {args[0] for kind, args in header.stanzas if kind.startswith("ssh-") and args}
    for key in recipients:
        if key.startswith("ssh-") and ssh_key_tag(key) not in tags:
            problems.append(f"the age header is not addressed to the SSH key {key.split()[0]} {key.split()[1][:16]}...")
    return problems


def check_backups(settings: BackupSettings, store: BackupStore, clock: Callable[[], datetime] = utc_now) -> str:
    """Read the newest backup back from every target and check it without the private key; record and summarise.

    Raises ``BackupError`` (after recording) when any target's newest backup fails a check.
    """
    lines, failures = [], []
    for spec in settings.targets:
        target = settings.open_target(spec)
        try:
            name = newest(target, settings.label)
            got = target.check(name)
        except BackupError as exc:
            failures.append(str(exc))
            continue
        finally:
            target.close()
        record = store.by_name(name)
        problems = []
        if record is None:
            problems.append("not recorded in this home's database (size and SHA-256 cannot be compared)")
        elif (got.size, got.sha256) != (record.size, record.sha256):
            problems.append(f"{got.size} bytes read back, {record.size} recorded, or the SHA-256 differs")
        problems += _header_problems(got, record.recipients if record else list(settings.recipients))
        detail = f"remote check (no private key) on {target.label}: " + (
            "; ".join(problems) or "size, SHA-256, header ok"
        )
        store.record_verification(name, ns(clock()), "failed" if problems else "checked", detail)
        if problems:
            failures.append(f"{target.label}: {name}: {'; '.join(problems)}")
        else:
            lines.append(f"{target.label}: {name} ok")
    if failures:
        raise BackupError("backup check failed: " + " | ".join(failures))
    return "; ".join(lines) + " (size, SHA-256 and age header; a full check needs 'robohost backup verify --identity')"
