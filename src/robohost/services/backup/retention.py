"""Which backups to keep: grandfather-father-son (daily, weekly, monthly), pure and without I/O.

An archive's time comes from its name (``robohost-LABEL-20240102T030405.123Z.tar.zst.age``, UTC), never from
a file system's modification time, which copies change. For each kind the newest archive of each of the
last N periods that have one is kept (days; ISO weeks; calendar months, in UTC); the union is kept, plus
every name in ``protect`` (the newest verified backup is always among them). Archives of other labels and
names that do not parse are never selected for deletion.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from robohost.adapters.backup.archive import ARCHIVE_SUFFIX

PREFIX = "robohost-"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME = re.compile(r"-(\d{8}T\d{6})\.(\d{3})Z" + re.escape(ARCHIVE_SUFFIX) + "$")


@dataclass(frozen=True)
class KeepPolicy:
    """How many daily, weekly and monthly backups to keep."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 12


def archive_name(label: str, when: datetime) -> str:
    """The file name of the archive of ``label`` made at ``when`` (UTC, to the millisecond)."""
    moment = when.astimezone(UTC)
    return f"{PREFIX}{label}-{moment:%Y%m%dT%H%M%S}.{moment.microsecond // 1000:03d}Z{ARCHIVE_SUFFIX}"


def archive_time(name: str) -> datetime | None:
    """The time in an archive's name, or None when the name is not one robohost makes."""
    match = _TIME.search(name)
    if not name.startswith(PREFIX) or match is None:
        return None
    moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    return moment.replace(microsecond=int(match.group(2)) * 1000)


def archive_sort_key(name: str) -> datetime:
    """Sort key by the time in the name (names without one sort first)."""
    return archive_time(name) or EPOCH


def archive_label(name: str) -> str | None:
    """The label in an archive's name, or None."""
    match = _TIME.search(name)
    if not name.startswith(PREFIX) or match is None:
        return None
    return name[len(PREFIX) : match.start()]


def _newest_per_period(
    dated: list[tuple[datetime, str]], count: int, period: Callable[[datetime], Hashable]
) -> set[str]:
    kept: set[str] = set()
    seen: set[Hashable] = set()
    for when, name in dated:  # newest first
        if len(seen) >= count:
            break
        key = period(when)
        if key not in seen:
            seen.add(key)
            kept.add(name)
    return kept


def select_kept(names: Iterable[str], label: str, policy: KeepPolicy, protect: Iterable[str] = ()) -> set[str]:
    """The archives of ``label`` among ``names`` that the policy keeps (``protect`` always among them)."""
    dated = sorted(
        ((when, name) for name in names if archive_label(name) == label and (when := archive_time(name)) is not None),
        reverse=True,
    )
    kept = set(protect) & {name for _, name in dated}
    kept |= _newest_per_period(dated, policy.daily, lambda t: t.date())
    kept |= _newest_per_period(dated, policy.weekly, lambda t: t.isocalendar()[:2])
    kept |= _newest_per_period(dated, policy.monthly, lambda t: (t.year, t.month))
    return kept


def select_deleted(names: Iterable[str], label: str, policy: KeepPolicy, protect: Iterable[str] = ()) -> list[str]:
    """The archives of ``label`` that the policy lets go, oldest first; other names are never returned."""
    listed = list(names)
    kept = select_kept(listed, label, policy, protect)
    ours = [name for name in listed if archive_label(name) == label and archive_time(name) is not None]
    return sorted((name for name in ours if name not in kept), key=archive_sort_key)
