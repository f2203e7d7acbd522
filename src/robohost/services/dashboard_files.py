"""The dashboard's files: the reports and backups it lists and serves, and the log it shows (redacted).

A file is served only from the folder it belongs to, by a plain name (no path, no dot file, no symlink out).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from robohost.adapters.backup.targets import is_archive
from robohost.adapters.db.backups import BackupStore
from robohost.services.dashboard_views import FileView


def list_files(folder: Path, *, suffixes: tuple[str, ...] = (), limit: int = 500) -> list[FileView]:
    """The files of a folder (not its sub-folders), newest first."""
    if not folder.is_dir():
        return []
    files = []
    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith(".") and (not suffixes or path.name.endswith(suffixes)):
            info = path.stat()
            files.append(FileView(name=path.name, size=info.st_size, modified=info.st_mtime_ns))
    files.sort(key=lambda f: (f.modified, f.name), reverse=True)
    return files[:limit]


def file_in(folder: Path, name: str) -> Path | None:
    """``folder/name`` when ``name`` is a plain file name of a file directly inside ``folder``; else None."""
    if not name or name != Path(name).name or name.startswith(".") or "\x00" in name:
        return None
    path = folder / name
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, OSError, RuntimeError):
        return None
    return resolved if resolved.parent == folder.resolve() and resolved.is_file() else None


def read_log_tail(
    path: Path, lines: int, redact: Callable[[list[str]], list[str]], max_bytes: int = 4 << 20
) -> list[str]:
    """The last ``lines`` lines of a log file (reading at most ``max_bytes`` from its end), redacted."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if start > 0 and text:
        text = text[1:]  # the first line was cut
    shown: list[str] = []
    for line in text[-lines:] if lines > 0 else []:
        shown += readable_log_line(line)
    return redact(shown)


_SHOWN_FIELDS = ("time", "level", "component", "event", "message", "pid", "exception")


def readable_log_line(line: str) -> list[str]:
    """A JSON log event as ``TIME LEVEL component: message key=value ...`` (its traceback on the lines after);
    any other line as it is."""
    if not line.startswith("{"):
        return [line]
    try:
        event = json.loads(line)
    except ValueError:
        return [line]
    if not isinstance(event, dict) or "message" not in event:
        return [line]
    extra = " ".join(f"{key}={value}" for key, value in event.items() if key not in _SHOWN_FIELDS)
    head = f"{event.get('time', '')} {str(event.get('level', '')).upper()} {event.get('component', '')}: "
    shown = [head + str(event["message"]) + (f"  {extra}" if extra else "")]
    if event.get("exception"):
        shown += str(event["exception"]).splitlines()
    return shown


class HomeBackups:
    """The home's backups for the dashboard: what the database recorded and what local target folders hold."""

    def __init__(self, store: BackupStore, folders: Callable[[], list[Path]]) -> None:
        self.store = store
        self.folders = folders

    def list(self) -> list[FileView]:
        """Every backup recorded or found in a local folder, newest first (size 0: not downloadable here)."""
        found: dict[str, FileView] = {}
        for folder in self.folders():
            for item in list_files(folder, limit=1000):
                if is_archive(item.name):
                    found[item.name] = item
        views = []
        for row in self.store.recent(500):
            local = found.pop(row.file_name, None)
            note = row.outcome + (f", verified {row.verify_outcome}" if row.verify_outcome else "")
            size = local.size if local else 0
            views.append(FileView(name=row.file_name, size=size, modified=row.started_at, detail=note))
        views += [item.model_copy(update={"detail": "not recorded in this database"}) for item in found.values()]
        views.sort(key=lambda f: (f.modified, f.name), reverse=True)
        return views

    def path(self, name: str) -> Path | None:
        """The local file of the backup ``name``, if a local target folder holds it."""
        if not is_archive(name):
            return None
        for folder in self.folders():
            path = file_in(folder, name)
            if path is not None:
                return path
        return None
