"""Make a backup now: snapshot, archive, encrypt, copy to every target, apply retention, record the outcome.

Each backup is one ``backups`` row: ``running`` when it starts, then ``ok`` (every target has a verified copy),
``partial`` (some targets failed) or ``failed``, with its size, SHA-256, duration, how long a thread beside it
was held up (``max_stall_ms``, see ``robohost.adapters.backup.snapshot``) and one result per target. A backup
that is not ``ok`` raises ``BackupError`` after it is recorded, so the scheduler retries and alerts.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from robohost import __version__
from robohost.adapters.backup.archive import ArchiveFacts, Manifest, parse_recipients, write_archive
from robohost.adapters.backup.snapshot import StallProbe, snapshot_database, stall_probe
from robohost.adapters.backup.targets import BackupTarget
from robohost.adapters.db.backups import BackupStore
from robohost.errors import BackupError
from robohost.services.backup.retention import KeepPolicy, archive_name, select_deleted
from robohost.services.backup.settings import WORK_PREFIX, BackupSettings

Clock = Callable[[], datetime]
COVER_S = 600
STALE_S = 24 * 3600
"""A backup working folder or ``running`` row this old belongs to a backup that was killed."""
"""A scheduled backup asked for this soon after another of the same home started is covered by it."""


def utc_now() -> datetime:
    """The wall clock, UTC."""
    return datetime.now(UTC)


def ns(moment: datetime) -> int:
    """ns since the epoch."""
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


@dataclass
class TargetResult:
    """How one target fared: ``ok`` or ``failed``, and which old backups retention removed there."""

    target: str
    outcome: str
    error: str | None = None
    deleted: list[str] = field(default_factory=list)
    retention_error: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The result as stored in ``backups.targets``."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}


@dataclass
class BackupReport:
    """A finished backup."""

    name: str
    outcome: str
    size: int
    sha256: str
    seconds: float
    snapshot_seconds: float
    max_stall_ms: float
    row_counts: dict[str, int]
    targets: list[TargetResult]

    @property
    def summary(self) -> str:
        """One line: what was made, how long it took, where it went."""
        ok = [t for t in self.targets if t.outcome == "ok"]
        deleted = sum(len(t.deleted) for t in self.targets)
        line = (
            f"{self.name}: {self.size / 1e6:.1f} MB in {self.seconds:.1f} s (database held up at most "
            f"{self.max_stall_ms:.0f} ms), copied to {len(ok)} of {len(self.targets)} target(s)"
        )
        if deleted:
            line += f"; retention removed {deleted} old backup(s)"
        failed = [f"{t.target}: {t.error}" for t in self.targets if t.outcome != "ok"]
        return line + ("; FAILED " + "; ".join(failed) if failed else "")


def apply_retention(target: BackupTarget, label: str, keep: KeepPolicy, protect: set[str]) -> list[str]:
    """Delete the target's archives of ``label`` that the policy lets go; return their names."""
    names = [f.name for f in target.list()]
    doomed = select_deleted(names, label, keep, protect)
    for name in doomed:
        target.delete(name)
    return doomed


def _newest_verified(store: BackupStore | None, label: str) -> set[str]:
    if store is None:
        return set()
    for row in store.recent(200, label):
        if row.verify_outcome == "ok":
            return {row.file_name}
    return set()


def _copy_to(target: BackupTarget, facts: ArchiveFacts, settings: BackupSettings, protect: set[str]) -> TargetResult:
    result = TargetResult(target.label, "ok")
    try:
        target.put(facts.path, facts.path.name, facts.sha256)
    except BackupError as exc:
        result.outcome, result.error = "failed", str(exc)
        return result
    try:
        result.deleted = apply_retention(target, settings.label, settings.keep, protect | {facts.path.name})
    except BackupError as exc:  # the backup itself is safe; old ones stay a little longer
        result.retention_error = str(exc)
    return result


def _tidy(home: Path, store: BackupStore | None, now: datetime) -> None:
    """Clear what a backup killed long ago left: its working folder, and its row still saying ``running``."""
    cutoff = now.timestamp() - STALE_S
    for work in home.glob(f"{WORK_PREFIX}*"):
        if work.is_dir() and work.stat().st_mtime < cutoff:
            shutil.rmtree(work, ignore_errors=True)
    if store is not None:
        store.mark_interrupted(ns(now) - STALE_S * 1_000_000_000, "the process making it stopped before it ended")


def make_backup(
    settings: BackupSettings,
    store: BackupStore | None,
    trigger: str = "manual",
    clock: Clock = utc_now,
    log: logging.Logger | None = None,
) -> BackupReport:
    """Back up the home now to every target of ``settings``; record it in ``store``; return the report."""
    log = log or logging.getLogger("robohost.backup")
    settings.require_recipients()
    recipients = parse_recipients(settings.recipients)
    if not settings.targets:
        raise BackupError("no backup targets: add [backup] targets to robohost.toml or pass --target")
    targets = [settings.open_target(spec) for spec in settings.targets]
    started = clock()
    name = archive_name(settings.label, started)
    timer = time.perf_counter()
    _tidy(settings.home, store, started)
    row = store.start(settings.label, name, trigger, ns(started), list(settings.recipients)) if store else None
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=settings.home))
    stall: StallProbe | None = None
    try:
        with stall_probe(settings.database_url) as stall:  # the database's and the interpreter's part
            snapshot = snapshot_database(settings.database_url, work)
            manifest = Manifest(
                robohost_version=__version__,
                schema_revision=snapshot.schema_revision,
                created_at=started.isoformat().replace("+00:00", "Z"),
                label=settings.label,
                database={"kind": snapshot.kind, "row_counts": snapshot.row_counts, "schema": snapshot.schema},
                excluded=list(settings.excluded_patterns),
            )
            facts = write_archive(
                work / name, manifest, snapshot.path, settings.home, settings.excluded, recipients, work
            )
        snapshot.path.unlink()
        protect = _newest_verified(store, settings.label)
        results = []
        for target in targets:
            try:
                results.append(_copy_to(target, facts, settings, protect))
            finally:
                target.close()
        failed = [r for r in results if r.outcome != "ok"]
        outcome = "ok" if not failed else ("partial" if len(failed) < len(results) else "failed")
        report = BackupReport(
            name,
            outcome,
            facts.size,
            facts.sha256,
            time.perf_counter() - timer,
            snapshot.seconds,
            stall.max_ms,
            snapshot.row_counts,
            results,
        )
    except BaseException as exc:
        if store is not None and row is not None:
            store.finish(
                row,
                outcome="failed",
                ended_at=ns(clock()),
                duration_ms=int((time.perf_counter() - timer) * 1000),
                max_stall_ms=stall.max_ms if stall else None,
                error=str(exc)[:2000] or type(exc).__name__,
            )
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if store is not None and row is not None:
        store.finish(
            row,
            outcome=report.outcome,
            ended_at=ns(clock()),
            size=report.size,
            sha256=report.sha256,
            targets=[r.as_json() for r in results],
            duration_ms=int(report.seconds * 1000),
            max_stall_ms=report.max_stall_ms,
            error="; ".join(f"{r.target}: {r.error}" for r in failed) or None,
        )
    log.info("backup %s", report.summary)
    if failed:
        raise BackupError(report.summary)
    return report


def backup_chore(
    settings: Callable[[], BackupSettings], store: BackupStore, log: logging.Logger
) -> Callable[[str], str]:
    """The scheduled backup (``robot -> summary``). The home is backed up once even when several robots ask at once.

    Robots of one home usually share a schedule: a robot that asks for a backup less than ``COVER_S`` after
    another robot's backup of the same home started, and that backup ended ``ok``, is covered by it.
    """
    lock = threading.Lock()

    def chore(robot: str) -> str:
        asked = ns(utc_now())
        with lock:
            current = settings()
            recent = store.recent(1, current.label)
            if recent and recent[0].outcome == "ok" and recent[0].started_at >= asked - COVER_S * 1_000_000_000:
                return f"covered by {recent[0].file_name}, made moments ago for another robot of this home"
            return make_backup(current, store, trigger="schedule", log=log).summary

    return chore
