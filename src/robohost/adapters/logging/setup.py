"""Putting the handlers in place: the console once per process, a home's files and remote collector while the
home is open.

All handlers hang on the root logger, so that the libraries' warnings (feeds, HTTP clients) are kept too;
robohost's own loggers (``robohost.*``) log from ``info`` (or the configured level). The audit handler hangs
on ``robohost.audit`` only. Redaction is installed first, so no handler ever sees a secret.
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from robohost.adapters.logging.files import AuditFileHandler, JsonFileHandler
from robohost.adapters.logging.records import ReadableFormatter, RedactFieldsFilter, install_redaction
from robohost.adapters.logging.syslog_tls import RemoteSyslogHandler, SyslogTarget

ROBOHOST = "robohost"
AUDIT = "robohost.audit"
_CONSOLE_TAG = "robohost_console"
_lock = threading.Lock()


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (tests swap it for a while)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        """The current ``sys.stderr``."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def console(stream: TextIO | None, level: int, *, with_time: bool = False, journald: bool = False) -> None:
    """Readable lines of robohost's records at ``level`` and above on ``stream`` (None: the current stderr),
    replacing an earlier console."""
    install_redaction()
    root = logging.getLogger(ROBOHOST)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    handler: logging.Handler = _CurrentStderr() if stream is None else logging.StreamHandler(stream)
    handler.setLevel(level)
    handler.setFormatter(ReadableFormatter(with_time=with_time, journald=journald))
    handler.addFilter(RedactFieldsFilter())
    setattr(handler, _CONSOLE_TAG, True)
    with _lock:
        for existing in [h for h in root.handlers if getattr(h, _CONSOLE_TAG, False)]:
            root.removeHandler(existing)
            existing.close()
        root.addHandler(handler)


@dataclass
class HomeHandlers:
    """The handlers a home put in place; ``detach`` removes and closes them (the remote queue is drained).

    A home opened twice in one process shares one set: the last ``detach`` removes it."""

    log_dir: Path
    attached: list[tuple[logging.Logger, logging.Handler]] = field(default_factory=list)
    remote: RemoteSyslogHandler | None = None
    users: int = 1

    def detach(self) -> None:
        """Remove and close every handler of the home (when nobody else in this process uses them)."""
        with _lock:
            self.users -= 1
            if self.users > 0:
                return
            _ATTACHED.pop(self.log_dir, None)
            for logger, handler in self.attached:
                logger.removeHandler(handler)
        for _, handler in self.attached:
            handler.close()
        self.attached.clear()


_ATTACHED: dict[Path, HomeHandlers] = {}


def attach(
    log_dir: Path,
    *,
    level: int,
    max_bytes: int,
    backups: int,
    remote: SyslogTarget | None = None,
    remote_max_bytes: int = 50 * 1024 * 1024,
) -> HomeHandlers:
    """Put a home's handlers in place: ``robohost.log`` (JSON, rotated), ``audit.log``, the remote collector."""
    install_redaction()
    log_dir = log_dir.resolve()
    with _lock:
        shared = _ATTACHED.get(log_dir)
        if shared is not None:
            shared.users += 1
            return shared
    root = logging.getLogger()
    handlers = HomeHandlers(log_dir)
    file_handler = JsonFileHandler(log_dir / "robohost.log", max_bytes, backups)
    handlers.attached.append((root, file_handler))
    handlers.attached.append((logging.getLogger(AUDIT), AuditFileHandler(log_dir / "audit.log")))
    if remote is not None:
        handlers.remote = RemoteSyslogHandler(log_dir / "remote-queue.db", remote, remote_max_bytes)
        handlers.attached.append((root, handlers.remote))
    with _lock:
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)  # the libraries' warnings and errors
        logging.getLogger(ROBOHOST).setLevel(level)
        for logger, handler in handlers.attached:
            logger.addHandler(handler)
        _ATTACHED[log_dir] = handlers
    return handlers
