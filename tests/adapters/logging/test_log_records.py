"""Log records as events: masked before any handler sees them, one JSON line each, readable on the console."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from robohost.adapters.logging.files import AuditFileHandler, JsonFileHandler
from robohost.adapters.logging.records import (
    REDACT,
    JsonFormatter,
    ReadableFormatter,
    RedactFieldsFilter,
    event_name,
    install_redaction,
)
from robohost.services.redaction import Redactor

SECRET = "s3cr3t-Value-7f6e5d"


class Capture(logging.Handler):
    """A handler of someone else's (no robohost filter): it must still never see a secret."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, Capture]]:
    install_redaction()
    REDACT.set(Redactor([SECRET]))
    logger = logging.getLogger("robohost.test.records")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    capture = Capture()
    logger.addHandler(capture)
    try:
        yield logger, capture
    finally:
        logger.removeHandler(capture)
        REDACT.set(Redactor())


def test_every_handler_gets_the_message_args_and_traceback_masked(log: tuple[logging.Logger, Capture]) -> None:
    logger, capture = log
    logger.info("login to %s with key %s", "https://user:pw-in-url@example.com/x", SECRET)
    try:
        raise ValueError(f"refused {SECRET}")
    except ValueError:
        logger.exception("Authorization: Bearer abcdefghijklmnop failed")
    logger.warning("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAB3NzaC1yc2E\n-----END OPENSSH PRIVATE KEY-----")
    texts = []
    for record in capture.records:
        texts.append(logging.Formatter().format(record))  # what any third-party formatter would print
    everything = "\n".join(texts)
    assert SECRET not in everything and "pw-in-url" not in everything and "abcdefghijklmnop" not in everything
    assert "AAAAB3NzaC1yc2E" not in everything
    assert "https://user:***@example.com/x" in everything and "ValueError: refused ***" in everything
    assert capture.records[1].exc_info is None and "Traceback" in (capture.records[1].exc_text or "")


def test_events_have_a_name_fields_and_utc_time(log: tuple[logging.Logger, Capture]) -> None:
    logger, capture = log
    logger.info("robot %s: session started (job %d)", "bot", 7)
    logger.warning("order refused", extra={"event": "order_refused", "robot": "bot", "token": f"x {SECRET}"})
    first, second = capture.records
    assert event_name(first) == "robot_session_started_job" and event_name(second) == "order_refused"
    RedactFieldsFilter().filter(second)  # extra= fields are masked by every robohost handler
    line = json.loads(JsonFormatter().format(second))
    assert line["time"].endswith("Z") and line["level"] == "warning" and line["component"] == logger.name
    assert line["event"] == "order_refused" and line["robot"] == "bot" and line["token"] == "x ***"
    readable = ReadableFormatter(with_time=False).format(second)
    assert readable == 'WARNING robohost.test.records: order refused robot=bot token="x ***"'
    journald = ReadableFormatter(journald=True).format(first)
    assert journald == "<6>robohost.test.records: robot bot: session started (job 7)"


def test_the_json_log_rotates_and_the_audit_log_only_grows(tmp_path: Path) -> None:
    install_redaction()
    logger = logging.getLogger("robohost.test.files")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    json_handler = JsonFileHandler(tmp_path / "logs" / "robohost.log", max_bytes=2000, backups=2)
    audit = AuditFileHandler(tmp_path / "logs" / "audit.log")
    logger.addHandler(json_handler)
    logger.addHandler(audit)
    try:
        for i in range(60):
            logger.info("event number %d with some padding to fill the file quickly", i)
    finally:
        logger.removeHandler(json_handler)
        logger.removeHandler(audit)
        json_handler.close()
        audit.close()
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["audit.log", "robohost.log", "robohost.log.1", "robohost.log.2"]
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in logs.iterdir())
    lines = (logs / "robohost.log").read_text().splitlines()
    assert lines and all(json.loads(line)["event"] == "event_number_with_some_padding" for line in lines)
    assert len((logs / "audit.log").read_text().splitlines()) == 60, "the audit log is never rotated"


def test_a_plain_stream_handler_prints_masked_lines() -> None:
    install_redaction()
    REDACT.set(Redactor([SECRET]))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("robohost.test.stream")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.warning("password=%s", "hunter2hunter2")
        logger.warning("secret %s", SECRET)
    finally:
        logger.removeHandler(handler)
        REDACT.set(Redactor())
    assert stream.getvalue() == "password=***\nsecret ***\n"
