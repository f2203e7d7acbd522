"""Time zones by name, and the server's own zone (for showing times and writing crontab lines).

Imports the standard library and ``robohost.errors`` only.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from robohost.errors import ConfigError

_LOCALTIME = Path("/etc/localtime")
_TIMEZONE_FILE = Path("/etc/timezone")


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a ``ConfigError`` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown time zone {name!r} (use an IANA name like 'Europe/Berlin' or 'UTC')") from None


def _zone_from_path(path: str) -> str | None:
    marker = "zoneinfo/"
    return path.split(marker, 1)[1] if marker in path else None


def local_zone() -> ZoneInfo:
    """The server's time zone: ``$TZ``, else /etc/localtime (its link target) or /etc/timezone, else UTC."""
    candidates: list[str | None] = []
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        candidates.append(_zone_from_path(tz) if tz.startswith("/") else tz)
    if _LOCALTIME.is_symlink():
        candidates.append(_zone_from_path(os.path.realpath(_LOCALTIME)))
    if _TIMEZONE_FILE.is_file():
        candidates.append(_TIMEZONE_FILE.read_text().strip() or None)
    for name in candidates:
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")
