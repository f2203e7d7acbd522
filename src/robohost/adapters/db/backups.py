"""The backup history: one ``backups`` row per backup, written as it starts, ends and is verified.

Times are ns since the epoch, UTC. Must not import ``robohost.config``, ``robohost.cli`` or
``robohost.services``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from robohost.adapters.db.tables import backups


@dataclass(frozen=True, slots=True)
class BackupRow:
    """One backup as recorded: outcome, size, hash, targets and the last verification."""

    id: int
    label: str
    file_name: str
    trigger: str
    started_at: int
    ended_at: int | None
    outcome: str
    size: int | None
    sha256: str | None
    recipients: list[str]
    targets: list[dict[str, Any]]
    duration_ms: int | None
    max_stall_ms: float | None
    verified_at: int | None
    verify_outcome: str | None
    verify_detail: str | None
    error: str | None


class BackupStore:
    """Reads and writes ``backups``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def start(self, label: str, file_name: str, trigger: str, started_at: int, recipients: list[str]) -> int:
        """Record a backup that starts now; return its id."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.insert(backups).values(
                    label=label,
                    file_name=file_name,
                    trigger=trigger,
                    started_at=started_at,
                    outcome="running",
                    recipients=recipients,
                    targets=[],
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    def finish(self, backup_id: int, **values: Any) -> None:
        """Record how the backup ended: outcome, ended_at, size, sha256, targets, duration_ms, max_stall_ms, error."""
        with self.engine.begin() as conn:
            conn.execute(sa.update(backups).where(backups.c.id == backup_id).values(**values))

    def record_verification(self, file_name: str, verified_at: int, outcome: str, detail: str) -> bool:
        """Record a verification of the backup named ``file_name``; False when no such backup is recorded."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(backups)
                .where(backups.c.file_name == file_name)
                .values(verified_at=verified_at, verify_outcome=outcome, verify_detail=detail[:2000])
            )
            return result.rowcount > 0

    def by_name(self, file_name: str) -> BackupRow | None:
        """The backup named ``file_name``, if recorded."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(backups).where(backups.c.file_name == file_name)).first()
        return None if row is None else BackupRow(**row._mapping)

    def recent(self, limit: int = 50, label: str | None = None) -> list[BackupRow]:
        """The newest backups first."""
        query = sa.select(backups).order_by(backups.c.started_at.desc(), backups.c.id.desc()).limit(limit)
        if label is not None:
            query = query.where(backups.c.label == label)
        with self.engine.connect() as conn:
            return [BackupRow(**row._mapping) for row in conn.execute(query)]

    def mark_restored(self, file_name: str, size: int, sha256: str) -> None:
        """After a restore from ``file_name``: that backup, seen running by its own snapshot, is ``ok``."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(backups)
                .where(backups.c.file_name == file_name)
                .values(outcome="ok", error=None, size=size, sha256=sha256)
            )

    def mark_interrupted(self, before: int, reason: str) -> int:
        """Mark backups still ``running`` that started before ``before`` as interrupted; return how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.update(backups)
                .where(backups.c.outcome == "running", backups.c.started_at < before)
                .values(outcome="interrupted", error=reason)
            )
            return int(result.rowcount)
