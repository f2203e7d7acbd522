"""Remote logging: every record to a syslog collector as an RFC 5424 message over TLS (RFC 5425 framing).

- **Format.** ``<PRI>1 TIME HOST APP PID MSGID [robohost@32473 seq="N" component="…" level="…"] BOM{json}``:
  the MSGID is the record's event name, the message the same JSON event as ``logs/robohost.log`` (masked),
  ``seq`` the record's number in this home's queue (increasing, never reused), so that the collector's copy
  can be checked for gaps and duplicates. Frames are octet-counted (``LEN SP MSG``, RFC 6587/5425).
- **TLS.** The collector's certificate must verify against the configured CA and carry the configured name;
  a client certificate is presented when configured (mutual TLS).
- **Queue.** A record is first written to a bounded queue on disk (SQLite, ``logs/remote-queue.db``), then
  sent by a background thread; it leaves the queue only after it was sent and the connection was still
  healthy ``confirm_s`` later. When the collector is unreachable, records wait in order and go out when it
  is back (with backoff between attempts); records sent just before a connection broke are sent again, so
  the collector may see a record twice (same ``seq``), never miss one. Past ``max_bytes`` new records are
  dropped and counted, and an overflow event (``remote_log_overflow``: how many, from when to when) is
  logged once the collector answers again; the sender's own few records about the outage (unreachable,
  queue full, reachable again, the overflow) are always kept. Every process of a home appends to the one
  queue; the process holding the sender lock (``remote-queue.db.sender``, a ``flock``) sends for all of
  them, in queue order.

Must not import ``robohost.services``, ``robohost.cli`` or ``robohost.config``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import select
import socket
import sqlite3
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from robohost.adapters.logging.records import RedactFieldsFilter, as_dict, event_name, fields

SD_ID = "robohost@32473"
"""The structured-data element (32473: the enterprise number RFC 5612 reserves for examples)."""
OVERFLOW_EVENT = "remote_log_overflow"
SEVERITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
BOM = b"\xef\xbb\xbf"
MAX_BODY = 7000
"""Bytes of JSON per message; rsyslog's default limit is 8 KiB (longer events are shortened, marked ``truncated``)."""
_PRINTABLE = re.compile(r"[^!-~]")
log = logging.getLogger("robohost.logging.remote")


@dataclass(frozen=True)
class SyslogTarget:
    """Where and how to connect: the collector, the CA to verify it, the optional client certificate."""

    host: str
    port: int
    ca: Path
    cert: Path | None = None
    key: Path | None = None
    server_name: str | None = None
    app_name: str = "robohost"
    facility: int = 16  # local0

    def tls_context(self) -> ssl.SSLContext:
        """A client context that verifies the collector against ``ca`` (hostname checked)."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if self.cert is not None:
            context.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        return context


def sd_escape(value: str) -> str:
    """An SD-PARAM value with ``\\``, ``"`` and ``]`` escaped (RFC 5424 section 6.3.3)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _token(text: str, limit: int) -> str:
    cleaned = _PRINTABLE.sub("_", text)[:limit]
    return cleaned or "-"


def frame(message: bytes) -> bytes:
    """Octet-counting framing: ``LEN SP MSG`` (RFC 6587 section 3.4.1, RFC 5425 section 4.3)."""
    return str(len(message)).encode() + b" " + message


def message(header: str, seq: int, sd: str, body: bytes) -> bytes:
    """The RFC 5424 message of a queued record."""
    return f'{header} [{SD_ID} seq="{seq}"{sd}] '.encode() + BOM + body


class DiskQueue:
    """A bounded FIFO of messages in a SQLite file, shared by the processes of a home."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        with contextlib.suppress(OSError):
            path.chmod(0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS queue (id INTEGER PRIMARY KEY AUTOINCREMENT, header TEXT NOT NULL, "
            "sd TEXT NOT NULL, body BLOB NOT NULL, size INTEGER NOT NULL)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self._db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('bytes', 0), ('dropped', 0), ('dropped_first', 0), ('dropped_last', 0)"
        )

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def put(self, header: str, sd: str, body: bytes, *, force: bool = False) -> bool:
        """Append a message; False (and counted as dropped) when it would pass the bound."""
        size = len(header) + len(sd) + len(body)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not force and self._meta("bytes") + size > self.max_bytes:
                    self._drop(1)
                    return False
                self._db.execute(
                    "INSERT INTO queue (header, sd, body, size) VALUES (?, ?, ?, ?)", (header, sd, body, size)
                )
                self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'bytes'", (size,))
            finally:
                self._db.execute("COMMIT")
        return True

    def _drop(self, count: int) -> None:
        now = time.time_ns()
        self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (count,))
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'dropped_first' AND value = 0", (now,))
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'dropped_last'", (now,))

    def note_dropped(self) -> None:
        """Count a record that could not even be written to the queue."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._drop(1)
            finally:
                self._db.execute("COMMIT")

    def peek(self, after: int, limit: int = 200) -> list[tuple[int, str, str, bytes]]:
        """Up to ``limit`` messages after id ``after``, in order."""
        with self._lock:
            query = "SELECT id, header, sd, body FROM queue WHERE id > ? ORDER BY id LIMIT ?"
            return [(int(i), h, s, bytes(b)) for i, h, s, b in self._db.execute(query, (after, limit))]

    def delete_upto(self, last: int) -> int:
        """Remove the messages up to id ``last`` (they reached the collector); how many went."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT count(*), total(size) FROM queue WHERE id <= ?", (last,)).fetchone()
                self._db.execute("DELETE FROM queue WHERE id <= ?", (last,))
                self._db.execute("UPDATE meta SET value = max(0, value - ?) WHERE key = 'bytes'", (int(row[1]),))
            finally:
                self._db.execute("COMMIT")
        return int(row[0])

    def take_dropped(self) -> tuple[int, int, int]:
        """(count, first ns, last ns) of the messages dropped since the last call, and reset them."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = (self._meta("dropped"), self._meta("dropped_first"), self._meta("dropped_last"))
                self._db.execute("UPDATE meta SET value = 0 WHERE key IN ('dropped', 'dropped_first', 'dropped_last')")
            finally:
                self._db.execute("COMMIT")
        return result

    def stats(self) -> tuple[int, int, int]:
        """(messages waiting, their bytes, messages dropped and not yet reported)."""
        with self._lock:
            count = int(self._db.execute("SELECT count(*) FROM queue").fetchone()[0])
            return count, self._meta("bytes"), self._meta("dropped")

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


class SyslogTlsSender:
    """The thread that sends the queue to the collector (see the module docstring)."""

    def __init__(
        self,
        queue: DiskQueue,
        target: SyslogTarget,
        *,
        connect_timeout_s: float = 5.0,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        confirm_s: float = 0.5,
        batch: int = 200,
    ) -> None:
        self.queue = queue
        self.target = target
        self.connect_timeout_s = connect_timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.confirm_s = confirm_s
        self.batch = batch
        self.connected = False
        self.sent = 0
        self._sock: ssl.SSLSocket | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._closing = threading.Event()
        self._lock_fd: int | None = None
        self._sent_upto = 0
        self._confirmed_upto = 0
        self._unconfirmed: deque[tuple[int, float]] = deque()
        self._outage_logged = False
        self._thread = threading.Thread(target=self._run, name="robohost-syslog", daemon=True)

    def start(self) -> None:
        """Start sending."""
        self._thread.start()

    def notify(self) -> None:
        """Something was queued: look now."""
        self._wake.set()

    @property
    def holds_lock(self) -> bool:
        """Whether this process is the home's sender."""
        return self._lock_fd is not None

    def close(self, timeout_s: float = 3.0) -> None:
        """Send what is queued (at most ``timeout_s``, when this process is the sender), then stop."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self._stop.set()
        self._wake.set()
        self._thread.join(5.0)
        self._disconnect()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # -- the thread ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_s
        while not self._stop.is_set():
            try:
                if not self._take_lock():
                    if self._closing.is_set():
                        return  # the home's sender delivers what this process queued
                    self._wait(1.0)
                    continue
                self._confirm()
                rows = self.queue.peek(self._sent_upto, self.batch)
                if not rows:
                    if self._closing.is_set() and not self._unconfirmed:
                        return
                    self._wait(0.1 if self._unconfirmed else 1.0)
                    continue
                if not self._connected_and_alive():
                    try:
                        self._connect()
                    except (OSError, ssl.SSLError, ValueError) as exc:
                        self._outage(exc)
                        if self._closing.is_set():
                            return  # unreachable: the records wait in the queue for the next sender
                        self._wait(backoff)
                        backoff = min(backoff * 2, self.backoff_max_s)
                        continue
                    backoff = self.backoff_s
                self._send(rows)
            except Exception as exc:  # never let the thread die: log, back off, go on
                self._disconnect()
                log.warning("remote log sender: %s: %s", type(exc).__name__, exc)
                self._wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _take_lock(self) -> bool:
        if self._lock_fd is not None:
            return True
        fd = os.open(f"{self.queue.path}.sender", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _connect(self) -> None:
        self._disconnect()
        target = self.target
        raw = socket.create_connection((target.host, target.port), timeout=self.connect_timeout_s)
        try:
            sock = target.tls_context().wrap_socket(raw, server_hostname=target.server_name or target.host)
        except BaseException:
            raw.close()
            raise
        sock.settimeout(self.connect_timeout_s)
        self._sock = sock
        self.connected = True
        if self._outage_logged:
            log.warning("remote log collector %s:%d reachable again; sending what waited", target.host, target.port)
            self._outage_logged = False

    def _outage(self, exc: BaseException) -> None:
        if not self._outage_logged:
            self._outage_logged = True
            count, size, _ = self.queue.stats()
            log.warning(
                "remote log collector %s:%d unreachable (%s: %s); records wait in the queue (%d, %d bytes)",
                self.target.host,
                self.target.port,
                type(exc).__name__,
                exc,
                count,
                size,
            )

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        self.connected = False
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()  # no unwrap(): rsyslog answers close_notify with a bare EOF
        self._sent_upto = self._confirmed_upto  # what was not confirmed goes again
        self._unconfirmed.clear()

    def _connected_and_alive(self) -> bool:
        sock = self._sock
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            self._disconnect()
            return False
        if not readable and not sock.pending():
            return True
        try:  # the collector never writes: something to read is its goodbye (EOF, close_notify) or garbage
            sock.settimeout(0.05)
            data = sock.recv(4096)
        except (TimeoutError, ssl.SSLWantReadError):
            data = b"?"
        except (OSError, ssl.SSLError):
            data = b""
        finally:
            with contextlib.suppress(OSError):
                sock.settimeout(self.connect_timeout_s)
        if not data:
            self._disconnect()
            return False
        return True

    def _send(self, rows: list[tuple[int, str, str, bytes]]) -> None:
        assert self._sock is not None
        payload = b"".join(frame(message(h, i, s, b)) for i, h, s, b in rows)
        try:
            self._sock.sendall(payload)
        except (OSError, ssl.SSLError) as exc:
            self._disconnect()
            self._outage(exc)
            return
        self._sent_upto = rows[-1][0]
        self._unconfirmed.append((rows[-1][0], time.monotonic()))
        self.sent += len(rows)

    def _confirm(self) -> None:
        if not self._unconfirmed or not self._connected_and_alive():
            return
        now = time.monotonic()
        last = None
        while self._unconfirmed and now - self._unconfirmed[0][1] >= self.confirm_s:
            last = self._unconfirmed.popleft()[0]
        if last is None:
            return
        self.queue.delete_upto(last)
        self._confirmed_upto = last
        dropped, first, latest = self.queue.take_dropped()
        if dropped:
            log.warning(
                "remote log queue overflow: %d records were dropped between %s and %s while the collector was "
                "unreachable (queue bound %d bytes); the local log files have them",
                dropped,
                _iso(first),
                _iso(latest),
                self.queue.max_bytes,
                extra={"event": OVERFLOW_EVENT, "dropped": dropped},
            )


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns / 1e9)) if ns else "?"


class RemoteSyslogHandler(logging.Handler):
    """Queue every record for the collector (see the module docstring); never raises into the caller."""

    def __init__(self, queue_path: Path, target: SyslogTarget, max_bytes: int, **sender: float) -> None:
        super().__init__()
        self.target = target
        self.queue = DiskQueue(queue_path, max_bytes)
        self.sender = SyslogTlsSender(self.queue, target, **sender)  # type: ignore[arg-type]
        self.hostname = _token(socket.gethostname(), 255)
        self.addFilter(RedactFieldsFilter())
        self._full = False
        self.sender.start()

    def parts(self, record: logging.LogRecord) -> tuple[str, str, bytes]:
        """The message of ``record`` without its sequence number: header, structured data, JSON body."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        stamp += f".{int(record.created % 1 * 1_000_000):06d}Z"
        pri = self.target.facility * 8 + SEVERITY.get(record.levelno, 6)
        event = event_name(record)
        app = _token(self.target.app_name, 48)
        header = f"<{pri}>1 {stamp} {self.hostname} {app} {record.process or '-'} {_token(event, 32)}"
        params = {"component": record.name, "level": record.levelname.lower()}
        robot = fields(record).get("robot")
        if isinstance(robot, str):
            params["robot"] = robot
        sd = "".join(f' {k}="{sd_escape(v)}"' for k, v in params.items())
        return header, sd, _body(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record and wake the sender."""
        try:
            header, sd, body = self.parts(record)
            own = record.name == log.name  # the outage's own story is always kept
            if self.queue.put(header, sd, body, force=own):
                self._full = self._full and own
                self.sender.notify()
            elif not self._full:
                self._full = True
                log.warning(
                    "remote log queue full (%d bytes): records are dropped (and counted) until the collector "
                    "takes them; they stay in the local log files",
                    self.queue.max_bytes,
                )
        except Exception:  # a full disk, a locked queue: the local files still have the record
            with contextlib.suppress(Exception):
                self.queue.note_dropped()

    def close(self) -> None:
        """Deliver what this process is responsible for (bounded), stop the sender, close the queue."""
        try:
            self.sender.close()
            self.queue.close()
        finally:
            super().close()


def _body(record: logging.LogRecord) -> bytes:
    data = as_dict(record)
    body = json.dumps(data, ensure_ascii=False, default=str).encode()
    if len(body) <= MAX_BODY:
        return body
    data["truncated"] = True
    data["message"] = str(data["message"])[:2000]
    if "exception" in data:
        data["exception"] = "…" + str(data["exception"])[-3000:]
    body = json.dumps(data, ensure_ascii=False, default=str).encode()
    return body[:MAX_BODY]
