"""A home's log files: ``logs/robohost.log`` (JSON lines, rotated by size) and ``logs/audit.log`` (append-only).

Both are created with mode 0600. The audit log is never rotated, truncated or rewritten by robohost: it only
ever grows (``chattr +a`` makes the kernel enforce that; the remote collector keeps the copy an intruder
cannot reach). Several processes of one home (the server, ``robohost run``, commands) append to the same
files; a rotation by one of them may leave another writing on into ``robohost.log.1`` until it reopens,
which loses nothing.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path
from typing import IO, Any

from robohost.adapters.logging.records import JsonFormatter, RedactFieldsFilter

PRIVATE = 0o600


def _private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        path.chmod(PRIVATE)


class JsonFileHandler(logging.handlers.RotatingFileHandler):
    """``logs/robohost.log``: one JSON event per line, rotated at ``max_bytes`` keeping ``backups`` files."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        _private_file(path)
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactFieldsFilter())

    def _open(self) -> IO[Any]:
        _private_file(Path(self.baseFilename))  # a new file after a rotation is private too
        return super()._open()


class AuditFileHandler(logging.FileHandler):
    """``logs/audit.log``: the audit events (logger ``robohost.audit``) as JSON lines, appended, never rotated."""

    def __init__(self, path: Path) -> None:
        _private_file(path)
        super().__init__(path, mode="a", encoding="utf-8")
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactFieldsFilter())
