"""Remote logging to a real rsyslog over mutual TLS: records arrive as RFC 5424 with their structured data; while
the collector is down they wait in the on-disk queue and all arrive, in order, when it is back; past the queue's
bound records are dropped, counted, and the overflow itself is reported to the collector."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from observability_support import Collector, Pki, free_port, make_pki, wait_for
from robohost.adapters.logging.records import install_redaction
from robohost.adapters.logging.syslog_tls import RemoteSyslogHandler, SyslogTarget, frame, sd_escape

SENDER = {"backoff_s": 0.1, "backoff_max_s": 0.4, "confirm_s": 0.3, "connect_timeout_s": 2.0}


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def collector(tmp_path: Path, pki: Pki) -> Iterator[Collector]:
    found = Collector(tmp_path / "rsyslog", pki)
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture
def robohost_logger() -> Iterator[logging.Logger]:
    install_redaction()
    logger = logging.getLogger("robohost")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield logger
    finally:
        logger.setLevel(level)


def _handler(tmp_path: Path, pki: Pki, port: int, max_bytes: int = 1 << 20) -> RemoteSyslogHandler:
    target = SyslogTarget("127.0.0.1", port, pki.ca, pki.cert("client"), pki.key("client"), "localhost", "robohost")
    return RemoteSyslogHandler(tmp_path / "queue" / "remote-queue.db", target, max_bytes, **SENDER)


def test_framing_and_structured_data_escaping() -> None:
    assert frame(b"<14>1 - - - - - - hi") == b"20 <14>1 - - - - - - hi"
    assert sd_escape('a "quoted" [x] \\ y') == 'a \\"quoted\\" [x\\] \\\\ y'


def test_records_survive_a_collector_outage_and_arrive_in_order(
    tmp_path: Path, pki: Pki, collector: Collector, robohost_logger: logging.Logger
) -> None:
    collector.start()
    handler = _handler(tmp_path, pki, collector.port)
    robohost_logger.addHandler(handler)
    log = logging.getLogger("robohost.test.remote")
    try:
        for i in range(40):
            log.info("before the outage %d", i, extra={"robot": "bot"})
        wait_for(lambda: len(set(collector.seqs())) >= 40, "the first 40 records at the collector")
        collector.stop()
        for i in range(40):
            log.warning("during the outage %d", i)
        wait_for(lambda: not handler.sender.connected, "the sender to notice the outage")
        waiting, _, dropped = handler.queue.stats()
        assert waiting >= 40 and dropped == 0, "the records wait on disk"
        collector.start()
        for i in range(20):
            log.info("after the outage %d", i)
        wait_for(lambda: handler.queue.stats()[0] == 0, "the queue to drain", 30)
        sent_after = handler.sender.sent
    finally:
        robohost_logger.removeHandler(handler)
        handler.close()
    seqs = collector.seqs()
    own = [s for s in seqs if s <= 100]  # the sender's own notes about the outage are records too
    first_seen = list(dict.fromkeys(seqs))
    assert set(range(1, 101)) <= set(seqs), f"missing: {sorted(set(range(1, 101)) - set(seqs))}"
    assert first_seen == sorted(first_seen), "records arrive in the order they were logged"
    duplicates = len(own) - len(set(own))
    print(f"received {len(seqs)} records ({len(set(seqs))} distinct, {duplicates} sent twice); sent {sent_after}")
    text = collector.text().decode()
    assert 'robohost@32473 seq="1" component="robohost.test.remote" level="info" robot="bot"' in text
    assert " robohost " in text and '"event": "during_the_outage"' in text and "unreachable" in text


def test_an_overflowing_queue_drops_counts_and_reports(
    tmp_path: Path, pki: Pki, collector: Collector, robohost_logger: logging.Logger
) -> None:
    handler = _handler(tmp_path, pki, collector.port, max_bytes=6000)  # the collector is not started yet
    counted = Counted()
    robohost_logger.addHandler(handler)
    robohost_logger.addHandler(counted)
    log = logging.getLogger("robohost.test.overflow")
    try:
        log.info("first record")
        wait_for(lambda: handler.sender._outage_logged, "the sender to find the collector unreachable")
        for i in range(60):
            log.info("a record of roughly two hundred bytes, number %d", i)
        waiting, size, dropped = handler.queue.stats()
        emitted = counted.count  # the 60, and the sender's and the queue's own warnings
        assert 0 < waiting < 60 and waiting + dropped == emitted, (waiting, dropped, emitted)
        assert size <= 6000 + 1000, "the bound, and the few records about the outage itself"
        collector.start()
        wait_for(lambda: b"remote_log_overflow" in collector.text(), "the overflow report", 30)
    finally:
        robohost_logger.removeHandler(handler)
        robohost_logger.removeHandler(counted)
        handler.close()
    assert set(range(1, waiting + 1)) <= set(collector.seqs()), "everything queued arrived"
    report = next(line for line in collector.text().decode().splitlines() if "remote_log_overflow" in line)
    assert f'"dropped": {dropped}' in report and report.startswith("<132>1 "), report  # local0.warning


class Counted(logging.Handler):
    """Counts the records that reach it."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def test_an_unverifiable_collector_gets_nothing(tmp_path: Path, pki: Pki, robohost_logger: logging.Logger) -> None:
    other = make_pki(tmp_path / "other-pki")  # the collector's certificate is signed by another CA
    collector = Collector(tmp_path / "rsyslog-other", other, free_port()).start()
    handler = _handler(tmp_path, pki, collector.port)
    robohost_logger.addHandler(handler)
    try:
        logging.getLogger("robohost.test.untrusted").warning("must not arrive")
        wait_for(lambda: handler.sender._outage_logged, "the refusal")
        assert handler.queue.stats()[0] >= 1, "the record waits for a collector it can verify"
    finally:
        robohost_logger.removeHandler(handler)
        handler.close()
        collector.stop()
    assert b"must not arrive" not in collector.text()
