"""Log records as events: redaction at creation, an event name, fields, and the JSON and readable line formats.

Every record gets, before any handler sees it, its message formatted and masked (``RedactingRecordFactory``,
installed once per process with ``install_redaction``), its traceback formatted and masked, and an event
name: the ``event`` given with ``extra=`` or, for a plain message, a slug of the message's template
(``"robot %s: session started"`` -> ``robot_session_started``). Fields are the other ``extra=`` values;
``RedactFieldsFilter`` masks them on the handlers (they are added to a record after its creation).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Redact = Callable[[str], str]
"""Mask the secrets in a text."""

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "template",
    "event",
    "robohost_redacted",
    "taskName",
}
_WORD = re.compile(r"%[-#0 +]*[\d.*]*[a-zA-Z]|\{[^}]*\}|[A-Za-z][A-Za-z0-9]*")
_MAX_EVENT_WORDS = 5


def event_name(record: logging.LogRecord) -> str:
    """The record's event: ``extra={"event": ...}`` or a slug of the first words of its message template."""
    given = getattr(record, "event", None)
    if isinstance(given, str) and given:
        return given
    template = getattr(record, "template", record.msg)
    words = [w.lower() for w in _WORD.findall(str(template)) if not w.startswith(("%", "{"))]
    return "_".join(words[:_MAX_EVENT_WORDS]) or "message"


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's own fields (its ``extra=`` values other than ``event``)."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def utc_time(record: logging.LogRecord) -> str:
    """The record's creation time, ISO 8601 UTC with microseconds."""
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _plain(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


class RedactorHolder:
    """The process's current redaction function; the composition root adds a home's secrets when it opens one."""

    def __init__(self, redact: Redact | None = None) -> None:
        self._redact: Redact = redact or (lambda text: text)
        self._lock = threading.Lock()

    def set(self, redact: Redact) -> None:
        """Use ``redact`` from now on."""
        with self._lock:
            self._redact = redact

    def __call__(self, text: str) -> str:
        """``text`` masked."""
        return self._redact(text)


REDACT = RedactorHolder()
"""The redaction every record of this process goes through (see ``install_redaction``)."""


class RedactingRecordFactory:
    """A ``LogRecord`` factory that formats the message, masks it and its traceback, and keeps the template."""

    def __init__(self, previous: Callable[..., logging.LogRecord], redact: Redact) -> None:
        self.previous = previous
        self.redact = redact

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        """Build the record as usual, then mask it."""
        record = self.previous(*args, **kwargs)
        if getattr(record, "robohost_redacted", False):
            return record
        record.template = record.msg if isinstance(record.msg, str) else str(record.msg)
        try:
            message = record.getMessage()
        except Exception as exc:  # a bad format string: keep what can be said, masked
            message = f"{record.msg!s} (unformattable arguments: {type(exc).__name__})"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = "\n".join(self.redact(line) for line in text.split("\n"))
            record.exc_info = None  # formatters print exc_text; nobody formats the raw traceback again
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        record.robohost_redacted = True
        return record


def install_redaction() -> None:
    """Route every record of this process through ``REDACT`` at its creation (idempotent)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, RedactingRecordFactory):
        logging.setLogRecordFactory(RedactingRecordFactory(current, REDACT))


class RedactFieldsFilter(logging.Filter):
    """Mask the ``extra=`` fields of a record (added after the factory ran); on every robohost handler."""

    def __init__(self, redact: Redact = REDACT) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask string fields in place; never drops a record."""
        for key, value in fields(record).items():
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
            elif isinstance(value, dict | list | tuple):
                setattr(record, key, json.loads(self.redact(json.dumps(_plain(value)))))
        if not getattr(record, "robohost_redacted", False):  # made before install_redaction, or by hand
            record.msg = self.redact(record.getMessage())
            record.args = None
            record.robohost_redacted = True
        return True


def as_dict(record: logging.LogRecord) -> dict[str, Any]:
    """The record as one JSON-ready event: time, level, component, event, message, pid, fields, exception."""
    data: dict[str, Any] = {
        "time": utc_time(record),
        "level": record.levelname.lower(),
        "component": record.name,
        "event": event_name(record),
        "message": record.getMessage(),
        "pid": record.process,
    }
    for key, value in fields(record).items():
        data.setdefault(key, _plain(value))
    if record.exc_text:
        data["exception"] = record.exc_text
    if record.stack_info:
        data["stack"] = record.stack_info
    return data


class JsonFormatter(logging.Formatter):
    """One JSON object per line (see ``as_dict``)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (no newline inside: tracebacks are escaped)."""
        return json.dumps(as_dict(record), ensure_ascii=False, default=str)


class ReadableFormatter(logging.Formatter):
    """A line for people: ``[time] LEVEL component: message key=value …`` (and the traceback below).

    ``journald``: prefix ``<priority>`` and leave the time out (journald reads both itself).
    """

    PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def __init__(self, with_time: bool = True, journald: bool = False) -> None:
        super().__init__()
        self.with_time = with_time and not journald
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        """The readable line."""
        extra = " ".join(f"{k}={_short(v)}" for k, v in fields(record).items())
        text = f"{record.name}: {record.getMessage()}" + (f" {extra}" if extra else "")
        if self.journald:
            text = f"<{self.PRIORITIES.get(record.levelno, 6)}>{text}"
        else:
            text = f"{record.levelname} {text}"
            if self.with_time:
                text = f"{utc_time(record)} {text}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(_plain(value), default=str)
    return json.dumps(text) if (" " in text or not text) else text
