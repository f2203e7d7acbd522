"""The alert state machine, stepped through time: once, reminders, escalation, recovery, one-off problems."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from robohost.services.alerts import Alert, AlertBook, alert_for

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _disk(level: str = "warning") -> Alert:
    return Alert("health:disk:home", "health", level, "free space of home: 8%", {"value": 8.0})


def test_a_problem_is_said_once_then_reminded_then_its_recovery() -> None:
    book = AlertBook()
    first = book.raise_(_disk(), T0, reminder=4 * HOUR)
    assert first is not None and first.state == "alert"
    assert book.raise_(_disk(), T0 + HOUR, 4 * HOUR) is None, "the same problem is not said again"
    assert book.raise_(_disk(), T0 + 3 * HOUR, 4 * HOUR) is None
    reminder = book.raise_(_disk(), T0 + 4 * HOUR, 4 * HOUR)
    assert reminder is not None and reminder.state == "reminder" and reminder.count == 4 and reminder.since == T0
    assert book.raise_(_disk(), T0 + 5 * HOUR, 4 * HOUR) is None, "the next reminder counts from the last one"
    recovery = book.clear("health:disk:home", T0 + 6 * HOUR)
    assert recovery is not None and recovery.state == "recovery"
    assert recovery.alert.title == "resolved after 6h00m: free space of home: 8%"
    assert book.clear("health:disk:home", T0 + 7 * HOUR) is None, "recovered once"
    again = book.raise_(_disk(), T0 + 8 * HOUR, 4 * HOUR)
    assert again is not None and again.state == "alert", "a new occurrence is a new alert"


def test_getting_worse_is_said_at_once_and_reminders_can_be_off() -> None:
    book = AlertBook()
    assert book.raise_(_disk("warning"), T0, None) is not None
    worse = book.raise_(_disk("critical"), T0 + timedelta(minutes=5), None)
    assert worse is not None and worse.state == "alert" and worse.alert.level == "critical"
    assert book.raise_(_disk("warning"), T0 + timedelta(minutes=10), None) is None, "better is not news"
    assert book.raise_(_disk("warning"), T0 + 100 * HOUR, None) is None, "reminders off"
    assert book.entries["health:disk:home"]["level"] == "warning"


def test_one_off_problems_do_not_recover_and_repeat_after_the_window() -> None:
    book = AlertBook()
    missed = alert_for("job_missed", {"robot": "bot", "job": "backup", "planned_at": "2026-11-27T13:15:00Z"})
    assert missed.key == "job_missed:bot:backup" and not missed.recoverable
    assert book.raise_(missed, T0, 4 * HOUR) is not None
    assert book.raise_(missed, T0 + HOUR, 4 * HOUR) is None
    assert book.clear(missed.key, T0 + 2 * HOUR) is None, "a one-off problem cannot clear"
    again = book.raise_(missed, T0 + 5 * HOUR, 4 * HOUR)
    assert again is not None and again.state == "alert"
    book.prune(T0 + 5 * HOUR + timedelta(days=8))
    assert missed.key not in book.entries, "forgotten after a week"


def test_the_keys_of_the_server_s_alerts() -> None:
    assert alert_for("job_failed", {"robot": "bot", "job": "session", "error": "x"}).level == "critical"
    assert alert_for("job_failed", {"robot": "bot", "job": "backup", "error": "x"}).level == "warning"
    assert alert_for("robot_halted", {"robot": "bot", "reason": "max_daily_loss"}).key == "robot_halted:bot"
    degraded = alert_for("degraded", {"robot": "bot", "stale_s": 120})
    assert degraded.key == "feed_degraded:bot" and degraded.recoverable
    assert not alert_for("lease_lost", {"robot": "bot"}).recoverable
    assert alert_for("something_new", {"robot": "bot"}).key == "something_new:bot"
    state = AlertBook({"k": {"kind": "health", "level": "warning", "title": "t", "robot": None,
                             "first": T0.isoformat(), "last_sent": T0.isoformat(), "last_seen": T0.isoformat(),
                             "count": 1, "recoverable": True}})  # fmt: skip
    assert state.clear("k", T0 + timedelta(minutes=3)) is not None, "the book round-trips through JSON"
