"""A robot's runner: planned jobs once each, late or missed after downtime, retries, requests, modes, takeover."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from server_harness import T0, Harness, ListPlan, job, minutes

from robohost.adapters.db.tables import leases
from robohost.adapters.feeds.synthetic import DEFAULT_START as SYNTHETIC_START
from robohost.services.server.chores import UnavailableChore, report_chore
from robohost.services.server.runner import RunnerPolicy, ns


def test_planned_jobs_run_once_at_their_time(harness: Harness) -> None:
    plan = ListPlan([job("session", T0 + minutes(5), T0 + minutes(60)), job("health", T0 + minutes(10))])
    runner = harness.runner(plan)
    harness.step(runner, T0)
    assert harness.rows() == [], "nothing is due yet"
    harness.step(runner, T0 + minutes(5))
    harness.step(runner, T0 + minutes(7))
    harness.step(runner, T0 + minutes(11))
    rows = harness.rows()
    assert [(r.job, r.trigger, r.outcome) for r in rows] == [
        ("session", "schedule", "ok"),
        ("health", "schedule", "ok"),
    ]
    assert rows[0].planned_at == ns(T0 + minutes(5)) and rows[0].started_at == ns(T0 + minutes(5))
    assert rows[0].run_id is not None and harness.app.read.run(rows[0].run_id) is not None
    assert rows[1].error == "bot fine" and rows[1].started_at == ns(T0 + minutes(11))
    runner.shutdown(T0 + minutes(12), 10)


def _left_behind(harness: Harness, heartbeat: datetime) -> None:
    """A previous server held the lease and died (never released it) after its last heartbeat."""
    with harness.app.engine.begin() as conn:
        conn.execute(sa.insert(leases).values(robot="bot", holder="serve pid 1@gone", acquired_at=0,
                                              heartbeat_at=ns(heartbeat)))  # fmt: skip


def test_after_downtime_jobs_run_late_within_grace_else_are_missed_and_alerted(harness: Harness) -> None:
    _left_behind(harness, T0)
    plan = ListPlan([
        job("health", T0 + minutes(10)),  # 50 min before the restart: beyond the grace
        job("report", T0 + minutes(50)),  # 10 min before: within the 15-minute grace
        job("session", T0 + minutes(20), T0 + minutes(30)),  # window closed before the restart
        job("session", T0 + minutes(40), T0 + minutes(120)),  # window still open: starts late
    ])  # fmt: skip
    chores = {"health": lambda r: "ok", "report": lambda r: "written"}
    runner = harness.runner(plan, RunnerPolicy(grace=minutes(15)), chores)
    harness.step(runner, T0 + minutes(60))
    got = {(r.job, r.planned_at): (r.trigger, r.outcome) for r in harness.rows()}
    assert got == {
        ("health", ns(T0 + minutes(10))): ("schedule", "missed"),
        ("report", ns(T0 + minutes(50))): ("late", "ok"),
        ("session", ns(T0 + minutes(20))): ("schedule", "missed"),
        ("session", ns(T0 + minutes(40))): ("late", "ok"),
    }
    assert harness.alerts.kinds() == ["job_missed", "job_missed"]
    runner.shutdown(T0 + minutes(61), 10)


def test_a_failed_chore_is_retried_then_alerted(harness: Harness) -> None:
    calls: list[str] = []

    def flaky(robot: str) -> str:
        calls.append(robot)
        raise RuntimeError(f"attempt {len(calls)} failed")

    plan = ListPlan([job("backup", T0 + minutes(1))])
    runner = harness.runner(plan, RunnerPolicy(retries=2, retry_delay=minutes(1)), {"backup": flaky})
    harness.step(runner, T0 + minutes(1))
    (row,) = harness.rows()
    assert row.outcome == "retrying" and row.next_attempt_at == ns(T0 + minutes(2)) and "attempt 1" in (row.error or "")
    harness.step(runner, T0 + minutes(1.5))
    assert len(calls) == 1, "not before the retry delay"
    harness.step(runner, T0 + minutes(2))
    harness.step(runner, T0 + minutes(3))
    (row,) = harness.rows()
    assert (row.outcome, row.attempts, len(calls)) == ("failed", 3, 3)
    assert "attempt 3" in (row.error or "")
    assert harness.alerts.kinds() == ["job_failed"]
    runner.shutdown(T0 + minutes(4), 10)


def test_an_unavailable_chore_is_recorded_as_skipped_with_its_reason(harness: Harness) -> None:
    runner = harness.runner(ListPlan([job("backup", T0)]), chores={"backup": UnavailableChore("not installed")})
    harness.step(runner, T0)
    (row,) = harness.rows()
    assert (row.outcome, row.error) == ("skipped", "not installed")
    runner.shutdown(T0, 10)


def test_requests_follow_the_mode(harness: Harness) -> None:
    auto = harness.runner(ListPlan(), RunnerPolicy(mode="auto"))
    refused = harness.requests.add("bot", "run", None, "alice", ns(T0))
    harness.step(auto, T0)
    answer = harness.requests.get(refused)
    assert answer is not None and (answer.outcome or "").startswith("refused") and answer.handled_by == auto.runner
    assert harness.rows() == []
    auto.shutdown(T0, 10)

    manual = harness.runner(ListPlan([job("session", T0 + minutes(1), T0 + minutes(9))]), RunnerPolicy(mode="manual"))
    harness.step(manual, T0 + minutes(1))
    assert harness.rows() == [], "manual mode: the schedule does not start sessions"
    run = harness.requests.add("bot", "run", None, "alice", ns(T0 + minutes(2)))
    chore = harness.requests.add("bot", "job", "health", "alice", ns(T0 + minutes(2)))
    unknown = harness.requests.add("bot", "job", "dance", "alice", ns(T0 + minutes(2)))
    harness.step(manual, T0 + minutes(2))
    rows = harness.rows()
    assert [(r.job, r.trigger, r.outcome) for r in rows] == [("session", "manual", "ok"), ("health", "manual", "ok")]
    assert (harness.requests.get(run).outcome or "").startswith("started session")  # type: ignore[union-attr]
    assert (harness.requests.get(chore).outcome or "").startswith("started health")  # type: ignore[union-attr]
    assert (harness.requests.get(unknown).outcome or "").startswith("refused")  # type: ignore[union-attr]
    stop = harness.requests.add("bot", "stop", None, "bob", ns(T0 + minutes(3)))
    harness.step(manual, T0 + minutes(3))
    assert harness.requests.get(stop).outcome == "not running"  # type: ignore[union-attr]
    manual.shutdown(T0 + minutes(3), 10)


def test_two_runners_never_run_one_robot_and_the_standby_takes_over(harness: Harness) -> None:
    plan = ListPlan([job("health", T0 + minutes(1)), job("health", T0 + minutes(2))])
    first = harness.runner(plan)
    second = harness.runner(plan)
    harness.step(first, T0)
    harness.step(second, T0)
    assert first.lease.held and not second.lease.held
    harness.step(first, T0 + minutes(1))
    harness.step(second, T0 + minutes(1))
    assert [r.runner for r in harness.rows()] == [first.runner]
    first.shutdown(T0 + minutes(1), 10)
    harness.step(second, T0 + minutes(2))
    assert second.lease.held
    rows = harness.rows()
    assert [(r.planned_at, r.outcome) for r in rows] == [(ns(T0 + minutes(1)), "ok"), (ns(T0 + minutes(2)), "ok")]
    second.shutdown(T0 + minutes(2), 10)


def test_a_session_left_running_by_a_dead_runner_is_resumed(harness: Harness) -> None:
    _left_behind(harness, T0)
    key_job = job("session", T0 - minutes(5), T0 + minutes(30))
    harness.jobs.claim(robot="bot", job="session", key=key_job.key, trigger="schedule", planned_at=ns(key_job.at),
                       until=ns(T0 + minutes(30)), now=ns(key_job.at), runner="serve pid 1@gone")  # fmt: skip
    runner = harness.runner(ListPlan([key_job]))
    harness.step(runner, T0 + minutes(1))
    (row,) = harness.rows()
    assert (row.outcome, row.attempts, row.runner) == ("ok", 2, runner.runner)
    runner.shutdown(T0 + minutes(2), 10)


def test_the_report_chore_writes_the_latest_runs_report(harness: Harness) -> None:
    plan = ListPlan(
        [job("report", T0), job("session", T0 + minutes(1), T0 + minutes(9)), job("report", T0 + minutes(10))]
    )
    runner = harness.runner(plan, chores=harness.app.chores())
    harness.step(runner, T0)
    harness.step(runner, T0 + minutes(1))
    harness.step(runner, T0 + minutes(10))
    reports = [r for r in harness.rows() if r.job == "report"]
    assert (reports[0].outcome, reports[0].error) == ("ok", "no run to report on yet")
    assert reports[1].outcome == "ok" and (reports[1].error or "").startswith("wrote pnl-bot-")
    written = sorted(p.suffix for p in (harness.app.home.path / "reports").iterdir())
    assert written == [".csv", ".html", ".json", ".pdf"]  # .sig.json: the signed attestation
    runner.shutdown(T0 + minutes(11), 10)


def test_the_weekly_report_covers_the_last_seven_days_or_says_there_was_nothing(harness: Harness) -> None:
    plan = ListPlan([job("session", T0, T0 + minutes(9))])
    runner = harness.runner(plan)
    harness.step(runner, T0)
    runner.shutdown(T0 + minutes(1), 10)
    reports = harness.app.home.path / "reports"
    first_bar = SYNTHETIC_START.date()
    week_of_data = report_chore(harness.app.read, reports, days=7, today=lambda: first_bar + timedelta(days=1))
    assert week_of_data("bot").startswith(f"wrote pnl-bot-{first_bar}-")
    long_after = report_chore(harness.app.read, reports, days=7, today=lambda: first_bar + timedelta(days=400))
    assert long_after("bot").startswith(f"nothing to report since {first_bar + timedelta(days=393)}")
