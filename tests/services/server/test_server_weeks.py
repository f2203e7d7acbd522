"""The server stepped through simulated weeks of the New York calendar: exactly which jobs ran when.

Across the end of daylight saving time (Sunday 2026-11-01), Thanksgiving (Thursday 2026-11-26, closed)
and the early close the day after (Friday 2026-11-27, 13:00 New York). Sessions are short replays, so
each planned session really runs a paper run. No test sleeps: simulated time jumps to the next job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from server_harness import Alerts

from robohost.adapters.db.jobs import JobStore
from robohost.adapters.feeds.synthetic import write_synthetic
from robohost.bootstrap import open_app
from robohost.services.server.clock import SimulatedClock
from robohost.services.server.runner import from_ns

CONFIG = """
[database]
url = "{url}"

[robots.bot]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "America/New_York"
params = {{ fast = 3, slow = 8, qty = 10 }}

[robots.bot.data]
path = ["data/bars.parquet"]

[robots.bot.schedule]
calendar = "XNYS"

[robots.bot.schedule.jobs]
backup = "close + 15m"
report = "off"
weekly_report = "off"
verify = "off"
health = "0 9 * * mon-fri"
"""


def _simulate(tmp_path: Path, db_url: str, start: datetime, end: datetime) -> list[tuple[str, str, str, str]]:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True, exist_ok=True)
    write_synthetic(home / "data" / "bars.parquet", 200, symbol="SYN", seed=3)
    (home / "robohost.toml").write_text(CONFIG.format(url=db_url))
    app = open_app(home)
    try:
        clock = SimulatedClock(start, end)
        alerts = Alerts()
        app.server(clock, alert=alerts, tick_s=86_400).serve()
        rows = list(reversed(JobStore(app.engine).history("bot", 1000)))
        assert alerts == [], alerts
        assert clock.wakes < 200, "simulated time jumps from job to job"
    finally:
        app.close()
    for row in rows:
        assert row.started_at == row.planned_at, f"{row.job} ran at its planned time"
        assert row.outcome == ("skipped" if row.job == "backup" else "ok"), row
    return [
        (
            row.job,
            f"{from_ns(row.planned_at or 0):%a %m-%d %H:%M}",
            f"{from_ns(row.until):%H:%M}" if row.until else "",
            row.trigger,
        )
        for row in rows
    ]


def test_a_week_across_the_end_of_daylight_saving_time(tmp_path: Path, db_url: str) -> None:
    ran = _simulate(tmp_path, db_url, datetime(2026, 10, 29, 12, tzinfo=UTC), datetime(2026, 11, 3, 12, tzinfo=UTC))
    assert ran == [
        ("health", "Thu 10-29 13:00", "", "schedule"),  # 09:00 EDT
        ("session", "Thu 10-29 13:30", "20:00", "schedule"),  # 09:30-16:00 EDT
        ("backup", "Thu 10-29 20:15", "", "schedule"),
        ("health", "Fri 10-30 13:00", "", "schedule"),
        ("session", "Fri 10-30 13:30", "20:00", "schedule"),
        ("backup", "Fri 10-30 20:15", "", "schedule"),
        ("health", "Mon 11-02 14:00", "", "schedule"),  # 09:00 EST: one hour later in UTC
        ("session", "Mon 11-02 14:30", "21:00", "schedule"),
        ("backup", "Mon 11-02 21:15", "", "schedule"),
    ]


def test_thanksgiving_and_the_early_close_after_it(tmp_path: Path, db_url: str) -> None:
    ran = _simulate(tmp_path, db_url, datetime(2026, 11, 25, 12, tzinfo=UTC), datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert ran == [
        ("health", "Wed 11-25 14:00", "", "schedule"),
        ("session", "Wed 11-25 14:30", "21:00", "schedule"),
        ("backup", "Wed 11-25 21:15", "", "schedule"),
        ("health", "Thu 11-26 14:00", "", "schedule"),  # a cron chore runs on a holiday too: cron knows no calendar
        ("health", "Fri 11-27 14:00", "", "schedule"),
        ("session", "Fri 11-27 14:30", "18:00", "schedule"),  # early close: 13:00 EST
        ("backup", "Fri 11-27 18:15", "", "schedule"),
    ]
