"""Grandfather-father-son retention: which archives stay, from their names alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from robohost.services.backup.retention import (
    KeepPolicy,
    archive_label,
    archive_name,
    archive_time,
    select_deleted,
    select_kept,
)

START = datetime(2024, 1, 1, 2, 0, tzinfo=UTC)  # a Monday


def _daily(days: int, label: str = "home") -> list[str]:
    return [archive_name(label, START + timedelta(days=i)) for i in range(days)]


def test_names_carry_label_and_time() -> None:
    name = archive_name("my-home.1", datetime(2024, 3, 5, 6, 7, 8, 912_345, tzinfo=UTC))
    assert name == "robohost-my-home.1-20240305T060708.912Z.tar.zst.age"
    assert archive_label(name) == "my-home.1"
    assert archive_time(name) == datetime(2024, 3, 5, 6, 7, 8, 912_000, tzinfo=UTC)
    assert archive_time("notes.txt") is None and archive_label("robohost-x.tar.zst.age") is None


def test_daily_weekly_monthly() -> None:
    names = _daily(120)  # 2024-01-01 .. 2024-04-29
    kept = select_kept(names, "home", KeepPolicy(daily=7, weekly=4, monthly=3))
    days = sorted((archive_time(n) or START).date().isoformat() for n in kept)
    assert days == [
        "2024-02-29",  # monthly: the newest of February, March (and April: the 29th)
        "2024-03-31",
        "2024-04-14",  # weekly: the Sundays ending ISO weeks 15 and 16 (weeks 17 and 18: the 28th and 29th)
        "2024-04-21",
        "2024-04-23",  # daily: the last 7 days
        "2024-04-24",
        "2024-04-25",
        "2024-04-26",
        "2024-04-27",
        "2024-04-28",
        "2024-04-29",
    ]


def test_the_newest_of_a_day_is_the_one_kept() -> None:
    morning = archive_name("home", START)
    evening = archive_name("home", START + timedelta(hours=12))
    assert select_kept([morning, evening], "home", KeepPolicy(1, 0, 0)) == {evening}
    assert select_deleted([morning, evening], "home", KeepPolicy(1, 0, 0)) == [morning]


def test_protected_other_labels_and_foreign_files_are_never_deleted() -> None:
    ours = _daily(10)
    theirs = _daily(10, label="other")
    foreign = ["README.txt", "robohost-home-garbage.tar.zst.age"]
    doomed = select_deleted([*ours, *theirs, *foreign], "home", KeepPolicy(0, 0, 0), protect={ours[3]})
    assert doomed == [n for n in ours if n != ours[3]]  # oldest first; only ours; the protected one stays


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=400 * 24), min_size=1, max_size=60, unique=True),
    daily=st.integers(0, 10),
    weekly=st.integers(0, 6),
    monthly=st.integers(0, 14),
)
def test_kept_and_deleted_partition_ours_and_the_newest_survives(
    offsets: list[int], daily: int, weekly: int, monthly: int
) -> None:
    names = [archive_name("home", START + timedelta(hours=h)) for h in offsets]
    newest = max(names, key=lambda n: archive_time(n) or START)
    policy = KeepPolicy(daily, weekly, monthly)
    kept = select_kept(names, "home", policy, protect={newest})
    deleted = select_deleted(names, "home", policy, protect={newest})
    assert newest in kept
    assert kept.isdisjoint(deleted) and kept | set(deleted) == set(names)
    assert len(kept) <= 1 + daily + weekly + monthly
    if daily:
        assert len({(archive_time(n) or START).date() for n in kept}) >= min(
            daily, len({(archive_time(n) or START).date() for n in names})
        )
