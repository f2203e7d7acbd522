"""The audit log: who signed in or failed to, and every action taken through the dashboard, the API or
``robohost user`` (run, stop, resume, downloads, tokens, sign-outs). Rows are only ever added.

Times are ns since the epoch, UTC. Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from robohost.adapters.db.tables import audit_log

log = logging.getLogger("robohost.audit")


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audited event."""

    id: int
    ts: int
    actor: str | None
    ip: str | None
    action: str
    robot: str | None
    detail: str | None
    outcome: str


class AuditLog:
    """Appends to and reads ``audit_log``."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(
        self,
        action: str,
        outcome: str,
        now: int,
        *,
        actor: str | None = None,
        ip: str | None = None,
        robot: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Append one event (``detail`` is cut to 1,000 characters)."""
        values = {
            "ts": now,
            "actor": actor[:200] if actor else actor,
            "ip": ip[:100] if ip else ip,
            "action": action,
            "robot": robot,
            "detail": detail[:1000] if detail else detail,
            "outcome": outcome[:200],
        }
        with self.engine.begin() as conn:
            conn.execute(sa.insert(audit_log).values(**values))
        log.info(  # the audit log file (logs/audit.log) and the remote collector get it too
            "%s %s: %s", action, values["outcome"], values["detail"] or "",
            extra={"event": f"audit_{action}", "actor": values["actor"], "ip": values["ip"], "robot": robot},
        )  # fmt: skip

    def recent(self, limit: int = 100, action: str | None = None, actor: str | None = None) -> list[AuditRow]:
        """The newest events first."""
        c = audit_log.c
        query = sa.select(audit_log).order_by(c.id.desc()).limit(limit)
        if action is not None:
            query = query.where(c.action == action)
        if actor is not None:
            query = query.where(c.actor == actor)
        with self.engine.connect() as conn:
            return [AuditRow(**row._mapping) for row in conn.execute(query)]
