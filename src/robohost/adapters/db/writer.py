"""``ProcessJournal``: the journal's commits run in a writer process, so the engine never waits for the disk.

The engine pickles each batch onto a pipe and carries on; the writer (a child process with its own
database connection) commits the batches in order, one transaction each, and acknowledges them; batches
that are already waiting when a commit starts share its transaction (a group commit, at most
``WRITER_GROUP_LIMIT``), so that a writer behind the engine catches up. At most ``max_pending`` batches are
in flight, so a slow disk slows the engine instead of growing memory.

Crash semantics: if the engine is killed, the kernel kills the writer with it (a batch being written rolls
back whole), so no orphan writes behind a resumed run; batches lost in flight are recomputed exactly from
the last committed checkpoint. A failed commit stops the writer (later batches would leave a gap) and is
raised to the engine as a ``JournalError``.

With a ``LatencyProbe`` (benchmarks), each acknowledgement also carries the batch's last event (its
checkpoint's seq) and the ``time.monotonic_ns()`` right after its transaction committed, read in the writer
process; the engine hands them to ``probe.committed`` when it reads the acknowledgement. Without one the
acknowledgements stay bare. Must not import config, cli or services.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.journal import SqlJournal
from robohost.engine.ports import LatencyProbe
from robohost.engine.records import Batch, Checkpoint, RunRecord
from robohost.errors import JournalError

_OK = "ok"
_FAILED = "failed"
_END = "end of pipe"
_NOTHING = object()
WRITER_GROUP_LIMIT = 64
"""At most this many waiting batches share one transaction."""
PR_SET_PDEATHSIG = 1  # prctl(2)
PIPE_BUFFER_BYTES = 4 * 1024 * 1024
WRITER_SWITCH_INTERVAL_S = 0.0002
"""In the writer process the committer holds the GIL while it binds rows; a short switch interval hands it
to the reader thread often enough that the engine never waits on a full pipe."""


def _widen(end: Connection) -> None:
    """Give the engine's end of the pipe a send buffer large enough for a whole batch, so sending never waits."""
    sock = socket.socket(fileno=end.fileno())
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PIPE_BUFFER_BYTES)
    except OSError:
        pass  # a smaller buffer only costs speed
    finally:
        sock.detach()


def _receive_all(pipe: Connection, inbox: queue.Queue[Any]) -> None:
    """Reader thread of the writer process: keep the pipe drained so the engine never blocks on it."""
    while True:
        try:
            message = pipe.recv()
        except (EOFError, OSError):
            inbox.put(_END)
            return
        inbox.put(message)
        if message is None:
            return


def _die_with(parent_pid: int) -> None:
    """Have the kernel kill this process the moment its parent dies (Linux), and check it is still alive.

    A writer that outlived a killed engine could still be committing while a new engine resumes from
    the checkpoint before, and the two would write the same rows. Dying with the parent is safe: a batch
    being written is one transaction, so it rolls back whole.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: an orphan writer still only commits whole batches
    if os.getppid() != parent_pid:
        os._exit(0)


def _serve(url: str, pipe: Connection, parent_pid: int, timed: bool = False) -> None:
    """The writer process: commit the batches received (those waiting together in one transaction),
    acknowledge each, stop at the end of the pipe.

    ``timed``: an acknowledgement of a committed batch carries (its checkpoint's seq or -1, monotonic ns
    right after the commit).
    """
    _die_with(parent_pid)
    sys.setswitchinterval(WRITER_SWITCH_INTERVAL_S)  # let the reader thread drain the pipe promptly
    engine = make_engine(url)
    journal = SqlJournal(engine)
    inbox: queue.Queue[Any] = queue.Queue()
    reader = threading.Thread(target=_receive_all, args=(pipe, inbox), daemon=True)
    reader.start()
    failure: str | None = None
    ahead: Any = _NOTHING  # the end of the pipe, met while gathering a group
    try:
        while True:
            message = inbox.get() if ahead is _NOTHING else ahead
            if message is _END:
                return
            if message is None:
                pipe.send((_OK, None))
                return
            group: list[Batch] = [message]
            while len(group) < WRITER_GROUP_LIMIT and not inbox.empty():
                message = inbox.get_nowait()  # this thread is the only consumer: it is there
                if message is None or message is _END:
                    ahead = message
                    break
                group.append(message)
            committed_ns = 0
            if failure is None:
                try:
                    journal.commit_all(group)
                    committed_ns = time.monotonic_ns() if timed else 0
                except Exception as exc:
                    failure = f"{type(exc).__name__}: {exc}"
            for batch in group:
                if failure:
                    pipe.send((_FAILED, failure))
                elif committed_ns:
                    seq = batch.checkpoint.seq if batch.checkpoint is not None else -1
                    pipe.send((_OK, (seq, committed_ns)))
                else:
                    pipe.send((_OK, None))
    finally:
        engine.dispose()


class ProcessJournal:
    """Wraps a ``SqlJournal``: ``commit`` goes to the writer process; other calls wait for it first.

    ``probe`` (benchmarks) is told when each batch became durable (see the module docstring).
    """

    def __init__(self, inner: SqlJournal, url: str, max_pending: int = 8, probe: LatencyProbe | None = None) -> None:
        self.inner = inner
        self.max_pending = max_pending
        self.probe = probe
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        _widen(self._pipe)
        self._process = context.Process(
            target=_serve, args=(url, child, os.getpid(), probe is not None), name="robohost-writer", daemon=True
        )
        self._process.start()
        child.close()
        self._in_flight = 0

    def _receive(self) -> None:
        try:
            status, detail = self._pipe.recv()
        except (EOFError, OSError) as exc:
            raise JournalError(
                f"the database writer process stopped ({exc!r}); the run resumes from its last commit"
            ) from exc
        self._in_flight -= 1
        if status == _FAILED:
            raise JournalError(f"the trading database refused a commit: {detail}")
        if detail is not None and self.probe is not None and detail[0] >= 0:
            self.probe.committed(*detail)

    def _send(self, message: Any) -> None:
        try:
            self._pipe.send(message)
        except (BrokenPipeError, OSError) as exc:
            raise JournalError(f"the database writer process is gone ({exc!r})") from exc
        self._in_flight += 1

    def commit(self, batch: Batch) -> None:
        """Hand ``batch`` to the writer; wait only while ``max_pending`` batches are unacknowledged."""
        while self._pipe.poll():
            self._receive()
        while self._in_flight >= self.max_pending:
            self._receive()
        self._send(batch)

    def flush(self) -> None:
        """Wait until every batch handed over is committed (or raise the writer's failure)."""
        while self._in_flight:
            self._receive()

    def start_run(self, run: RunRecord) -> None:
        """Record a new run."""
        self.flush()
        self.inner.start_run(run)

    def load_checkpoint(self, run_id: str) -> Checkpoint | None:
        """The run's last committed checkpoint, after the batches in flight."""
        self.flush()
        return self.inner.load_checkpoint(run_id)

    def finish_run(self, run_id: str, status: str, ended_at: int, summary: dict[str, object]) -> None:
        """Mark the run finished once everything before it is committed."""
        self.flush()
        self.inner.finish_run(run_id, status, ended_at, summary)

    def close(self) -> None:
        """Commit what is in flight, then stop the writer process."""
        try:
            self.flush()
            self._send(None)
            self.flush()
        finally:
            self._pipe.close()
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=10)
