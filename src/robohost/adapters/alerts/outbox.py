"""The outbox: delivers messages to channels on a background thread, retrying failures with backoff.

A delivery never blocks or crashes the caller (the robot, the server's loop): failures are logged (masked
like every record) and retried ``retries`` times, ``retry_delay_s`` apart and doubling; then the message
is given up, and that is logged at error level. At most ``max_pending`` deliveries wait; past that the
oldest is given up (logged).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from robohost.adapters.alerts.message import Channel, Message

log = logging.getLogger("robohost.alerts")
Outcome = Callable[[str, str], None]
"""``outcome(channel name, "sent" | "retry" | "failed")``: for the metrics."""


class Outbox:
    """Background delivery with retries (see the module docstring)."""

    def __init__(
        self,
        retries: int = 3,
        retry_delay_s: float = 30.0,
        on_outcome: Outcome | None = None,
        max_pending: int = 1000,
    ) -> None:
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self.on_outcome = on_outcome or (lambda channel, outcome: None)
        self.max_pending = max_pending
        self._heap: list[tuple[float, int, int, Channel, Message]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._busy = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="robohost-alerts", daemon=True)
        self._thread.start()

    def put(self, channel: Channel, message: Message) -> None:
        """Deliver ``message`` to ``channel`` soon."""
        with self._cond:
            if len(self._heap) >= self.max_pending:
                _, _, _, old_channel, old = heapq.heappop(self._heap)
                log.error("alert outbox full: gave up %s %r to %s", old.state, old.title, old_channel.name)
                self.on_outcome(old_channel.name, "failed")
            heapq.heappush(self._heap, (time.monotonic(), next(self._order), 0, channel, message))
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until every delivery, retries included, has succeeded or been given up;
        whether that happened."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._busy or self._heap:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def pending(self) -> int:
        """Deliveries waiting (first attempts and retries)."""
        with self._cond:
            return len(self._heap) + self._busy

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what waits (bounded by ``timeout_s``), then stop; what is still waiting is logged as given up."""
        self.flush(timeout_s)
        with self._cond:
            self._closed = True
            left = list(self._heap)
            self._heap.clear()
            self._cond.notify_all()
        for _, _, attempt, channel, message in left:
            log.error(
                "alert not delivered to %s (stopping after %d attempts): %s", channel.name, attempt, message.title
            )
            self.on_outcome(channel.name, "failed")
        self._thread.join(5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    wait = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, _, attempt, channel, message = heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._deliver(channel, message, attempt)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _deliver(self, channel: Channel, message: Message, attempt: int) -> None:
        try:
            channel.send(message)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries:
                delay = self.retry_delay_s * 2**attempt
                log.warning(
                    "alert delivery to %s failed (attempt %d of %d): %s; retrying in %g s",
                    channel.name,
                    attempt + 1,
                    self.retries + 1,
                    problem,
                    delay,
                    extra={"event": "alert_delivery_failed", "channel": channel.name, "attempt": attempt + 1},
                )
                with self._cond:
                    due = time.monotonic() + delay
                    heapq.heappush(self._heap, (due, next(self._order), attempt + 1, channel, message))
                    self._cond.notify_all()
                self.on_outcome(channel.name, "retry")
                return
            log.error(
                "alert delivery to %s failed %d times, giving up: %s (%s)",
                channel.name,
                attempt + 1,
                problem,
                message.title,
                extra={"event": "alert_delivery_gave_up", "channel": channel.name},
            )
            self.on_outcome(channel.name, "failed")
            return
        log.info(
            "%s sent to %s: %s",
            message.state,
            channel.name,
            message.title,
            extra={"event": "alert_sent", "channel": channel.name, "key": message.key},
        )
        self.on_outcome(channel.name, "sent")
