"""Alerts: what is a problem, how serious, whether it was already said, and when it has cleared.

``AlertBook`` is the pure state machine, taking ``now``: a problem (identified by its key, e.g.
``job_failed:bot:backup``) is alerted once; while it goes on, it is repeated as a reminder once
``reminder_after`` has passed since it was last sent, or at once when it becomes more serious; when it
clears, a recovery message says so and for how long it lasted. One-off problems (a missed job, a lost
lease) cannot clear: they are not repeated within ``reminder_after`` and forgotten after a week.

``AlertDispatcher`` is the server's ``Alert`` hook (``alert(kind, details)``, kinds in ``ALERT_KINDS``), the
health chore's reporter (``health(checks)``) and the sender of trading notifications; it keeps the book in
``state/alerts.json`` and hands messages to the channels through the outbox, which never blocks it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from robohost.adapters.alerts.message import LEVEL_RANK, Channel, Message, State
from robohost.adapters.alerts.outbox import Outbox
from robohost.adapters.ops.state_file import JsonStateFile
from robohost.services.health import Check

log = logging.getLogger("robohost.alerts")
FORGET_ONE_OFF = timedelta(days=7)
TITLE_PREFIX = "[robohost]"
_CHECK_LEVEL = {"warn": "warning", "critical": "critical"}
_EVENTS = {"alert": "alert_raised", "reminder": "alert_reminder", "recovery": "alert_recovered"}


@dataclass(frozen=True, slots=True)
class AlertKind:
    """How a kind of alert is keyed and judged."""

    level: str
    recoverable: bool
    what: str


ALERT_KINDS: dict[str, AlertKind] = {
    "job_missed": AlertKind("warning", False, "a planned job was missed (no server ran the robot then)"),
    "job_failed": AlertKind("warning", True, "a job failed after its retries (a session: critical)"),
    "robot_halted": AlertKind("critical", True, "the kill switch (or a strategy error) halted the robot"),
    "lease_lost": AlertKind("critical", False, "the server lost a robot's lease and stopped its work"),
    "runner_error": AlertKind("critical", False, "a robot's runner failed a tick (database unreachable, …)"),
    "degraded": AlertKind("critical", True, "a live feed sent nothing for stale_after_s (feed_degraded)"),
    "health": AlertKind("warning", True, "a health or capacity check is at warn or critical"),
}
"""Every alert the server raises (README, "Alerts"). ``recovered`` (a feed flowing again) and a job that
succeeds clear theirs."""


@dataclass(frozen=True, slots=True)
class Alert:
    """A problem to tell the owner about."""

    key: str
    kind: str
    level: str
    title: str
    details: dict[str, Any]
    robot: str | None = None
    recoverable: bool = True


@dataclass(frozen=True, slots=True)
class Notice:
    """What the book decided to say."""

    state: State
    alert: Alert
    count: int = 1
    since: datetime | None = None


class AlertBook:
    """The open problems and when each was last said (see the module docstring). Pure: pass ``now``."""

    def __init__(self, entries: dict[str, dict[str, Any]] | None = None) -> None:
        self.entries: dict[str, dict[str, Any]] = dict(entries or {})

    def raise_(self, alert: Alert, now: datetime, reminder: timedelta | None) -> Notice | None:
        """Record that ``alert`` is (still) a problem; the notice to send, if any."""
        entry = self.entries.get(alert.key)
        stamp = now.isoformat()
        if entry is not None and not entry["recoverable"] and now - _at(entry["last_sent"]) >= _window(reminder):
            entry = None  # a one-off problem long after the last one: a new occurrence
        if entry is None:
            self.entries[alert.key] = {
                "kind": alert.kind,
                "level": alert.level,
                "title": alert.title,
                "robot": alert.robot,
                "first": stamp,
                "last_sent": stamp,
                "last_seen": stamp,
                "count": 1,
                "recoverable": alert.recoverable,
            }
            return Notice("alert", alert)
        entry["count"] += 1
        entry["last_seen"] = stamp
        worse = LEVEL_RANK[alert.level] > LEVEL_RANK[entry["level"]]
        entry["level"], entry["title"] = alert.level, alert.title
        due = reminder is not None and now - _at(entry["last_sent"]) >= reminder
        if worse or due:
            entry["last_sent"] = stamp
            return Notice("alert" if worse else "reminder", alert, entry["count"], _at(entry["first"]))
        return None

    def clear(self, key: str, now: datetime, details: dict[str, Any] | None = None) -> Notice | None:
        """The problem ``key`` is gone: the recovery notice, if it was open."""
        entry = self.entries.get(key)
        if entry is None or not entry["recoverable"]:
            return None
        del self.entries[key]
        first = _at(entry["first"])
        lasted = _duration(now - first)
        alert = Alert(
            key,
            entry["kind"],
            entry["level"],
            f"resolved after {lasted}: {entry['title']}",
            dict(details or {}),
            entry.get("robot"),
        )
        return Notice("recovery", alert, entry["count"], first)

    def prune(self, now: datetime) -> None:
        """Forget one-off problems not seen for a week."""
        for key in [k for k, e in self.entries.items() if not e["recoverable"]]:
            if now - _at(self.entries[key]["last_seen"]) > FORGET_ONE_OFF:
                del self.entries[key]

    def active(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """The open problems whose key starts with ``prefix``."""
        return {k: e for k, e in self.entries.items() if k.startswith(prefix)}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _window(reminder: timedelta | None) -> timedelta:
    return reminder if reminder is not None else FORGET_ONE_OFF


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def alert_for(kind: str, details: dict[str, Any]) -> Alert:
    """The alert for a hook call ``alert(kind, details)`` from the runner or a run."""
    robot = details.get("robot")
    job = details.get("job")
    spec = ALERT_KINDS.get(kind, AlertKind("warning", False, ""))
    level = spec.level
    if kind == "job_failed":
        key = f"job_failed:{robot}:{job}"
        level = "critical" if job == "session" else "warning"
        title = f"{robot}: job {job} failed: {details.get('error', '')}"
    elif kind == "job_missed":
        key = f"job_missed:{robot}:{job}"
        title = f"{robot}: {job} planned at {details.get('planned_at')} was missed"
    elif kind == "robot_halted":
        key = f"robot_halted:{robot}"
        title = f"{robot} halted: {details.get('reason')}"
    elif kind == "lease_lost":
        key = f"lease_lost:{robot}"
        title = f"{robot}: the server lost the robot's lease and stopped its work"
    elif kind == "runner_error":
        key = f"runner_error:{robot}"
        title = f"{robot}: the runner failed: {details.get('error')}"
    elif kind == "degraded":
        key = f"feed_degraded:{robot}"
        title = f"{robot}: live data stale ({_compact(details, 'robot')})"
    else:
        key = f"{kind}:{robot}"
        title = f"{robot}: {kind} {_compact(details, 'robot')}"
    return Alert(key, kind, level, title, details, robot if isinstance(robot, str) else None, spec.recoverable)


def _compact(details: dict[str, Any], *skip: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in details.items() if k not in skip)


class AlertDispatcher:
    """Alerts, reminders, recoveries and trading notifications to the channels (see the module docstring)."""

    def __init__(
        self,
        channels: Sequence[Channel],
        outbox: Outbox,
        state: JsonStateFile,
        reminder: timedelta | None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        host: str | None = None,
    ) -> None:
        self.channels = list(channels)
        self.outbox = outbox
        self.state = state
        self.reminder = reminder
        self.clock = clock
        self.host = host or socket.gethostname()

    # -- the hooks ---------------------------------------------------------------------------------------------

    def __call__(self, kind: str, details: dict[str, Any]) -> None:
        """The runner's and the runs' ``Alert`` hook; ``recovered`` clears a feed's alert. Never raises."""
        try:
            self._hook(kind, dict(details))
        except Exception:
            log.exception("alert %s could not be handled", kind)

    def _hook(self, kind: str, details: dict[str, Any]) -> None:
        robot = details.get("robot")
        log.error("ALERT %s %s", kind, details, extra={"event": "alert", "kind": kind})
        if kind == "recovered":
            self.clear(f"feed_degraded:{robot}", details)
            return
        alert = alert_for(kind, details)
        if kind == "job_failed" and details.get("job") == "health" and self._book().active("health:"):
            log.info("the failed health chore is covered by its checks' alerts", extra={"event": "alert_covered"})
            return
        self.raise_alert(alert)

    def job_ok(self, robot: str, job: str) -> None:
        """A job succeeded: its failure, if one was open, has cleared."""
        self.clear(f"job_failed:{robot}:{job}", {"robot": robot, "job": job})

    def health(self, checks: Iterable[Check]) -> None:
        """Raise the checks at warn or critical, clear those that are ok again."""
        for check in checks:
            if check.alert_key is None:
                continue
            if check.level == "ok":
                self.clear(check.alert_key, {"check": check.name, "now": check.message})
                continue
            robot = check.name.split(":", 1)[1] if check.name.startswith(("robot:", "feed:")) else None
            kind = "health"
            if check.alert_key.startswith("robot_halted:"):
                kind = "robot_halted"
            elif check.alert_key.startswith("feed_degraded:"):
                kind = "degraded"
            self.raise_alert(
                Alert(
                    check.alert_key,
                    kind,
                    _CHECK_LEVEL[check.level],
                    check.message,
                    {"check": check.name, "value": check.value, "unit": check.unit},
                    robot,
                )
            )

    def notify(self, kind: str, title: str, details: dict[str, Any], robot: str | None = None) -> None:
        """A trading notification (fill, halt, daily summary) to the channels that carry them."""
        message = self._message(Notice("notification", Alert(f"{kind}:{robot}", kind, "info", title, details, robot)))
        for channel in self.channels:
            if channel.trading:
                self.outbox.put(channel, message)

    # -- the book ----------------------------------------------------------------------------------------------

    def raise_alert(self, alert: Alert) -> None:
        """Record the problem; send what the book says to send."""
        now = self.clock()
        notice: list[Notice] = []

        def change(state: dict[str, Any]) -> dict[str, Any]:
            book = AlertBook(state.get("alerts"))
            found = book.raise_(alert, now, self.reminder)
            book.prune(now)
            notice[:] = [found] if found else []
            return {**state, "alerts": book.entries}

        self.state.update(change)
        if notice:
            self._send(notice[0])
        else:
            log.info("alert %s still open (not repeated yet)", alert.key, extra={"event": "alert_suppressed"})

    def clear(self, key: str, details: dict[str, Any] | None = None) -> None:
        """The problem ``key`` is gone: send the recovery if it was open."""
        if key not in self._book().entries:
            return  # the common case: nothing was wrong (no write)
        now = self.clock()
        notice: list[Notice] = []

        def change(state: dict[str, Any]) -> dict[str, Any]:
            book = AlertBook(state.get("alerts"))
            found = book.clear(key, now, details)
            notice[:] = [found] if found else []
            return {**state, "alerts": book.entries}

        self.state.update(change)
        if notice:
            self._send(notice[0])

    def _book(self) -> AlertBook:
        return AlertBook(self.state.read().get("alerts"))

    def _send(self, notice: Notice) -> None:
        message = self._message(notice)
        rank = LEVEL_RANK[message.level]
        targets = [c for c in self.channels if rank >= LEVEL_RANK[c.level]]
        log.warning(
            "%s %s: %s (to %s)",
            message.state,
            message.key,
            message.title,
            ", ".join(c.name for c in targets) or "no channel",
            extra={"event": _EVENTS[message.state], "key": message.key, "alert_level": message.level},
        )
        for channel in targets:
            self.outbox.put(channel, message)

    def _message(self, notice: Notice) -> Message:
        alert = notice.alert
        label = {
            "alert": alert.level.upper(),
            "reminder": f"STILL {alert.level.upper()}",
            "recovery": "RESOLVED",
            "notification": "NOTE",
        }[notice.state]
        title = f"{TITLE_PREFIX} {label} {alert.title}"[:300]
        lines = [alert.title]
        if notice.state == "reminder" and notice.since is not None:
            lines.append(f"Still open since {notice.since:%Y-%m-%d %H:%M} UTC ({notice.count} times seen).")
        if notice.state == "recovery":
            lines.append("The problem has cleared.")
        kind = ALERT_KINDS.get(alert.kind)
        if kind is not None and notice.state == "alert":
            lines.append(f"({alert.kind}: {kind.what})")
        return Message(
            notice.state,
            alert.kind,
            alert.level,
            title,
            "\n".join(lines),
            self.clock(),
            self.host,
            alert.key,
            alert.robot,
            notice.count,
            alert.details,
        )

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is due (bounded), then stop the outbox."""
        self.outbox.close(timeout_s)
