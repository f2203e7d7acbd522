"""The server's main loop: tick every robot's runner, keep systemd's watchdog fed, stop cleanly.

One loop on the main thread; sessions and chores run on a thread pool. SIGTERM (``request_stop``) ends
the loop at once: sessions stop at their next commit (the journal is flushed by the run), jobs in
progress get ``stop_timeout`` to end, leases are released. After a SIGKILL the next server takes the
leases over and resumes (see ``runner.py``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from robohost.adapters.ops.systemd import SystemdNotifier
from robohost.services.server.clock import ServerClock
from robohost.services.server.runner import RobotRunner, settle


class Server:
    """``robohost serve``'s loop over its robots' runners."""

    def __init__(
        self,
        make_runners: Callable[[ThreadPoolExecutor], list[RobotRunner]],
        clock: ServerClock,
        log: logging.Logger,
        notifier: SystemdNotifier | None = None,
        tick_s: float = 1.0,
        stop_timeout_s: float = 30.0,
        settle_timeout_s: float = 300.0,
    ) -> None:
        self.workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="robohost-job")
        self.runners = make_runners(self.workers)
        self.clock = clock
        self.log = log
        self.notifier = notifier or SystemdNotifier({})
        interval = self.notifier.watchdog_s
        self.tick_s = min(tick_s, interval) if interval else tick_s
        self.stop_timeout_s = stop_timeout_s
        self.settle_timeout_s = settle_timeout_s
        self.stopping = threading.Event()
        self.ticks = 0
        self._last_error: dict[str, str] = {}

    def _tick(self, runner: RobotRunner, now: datetime) -> None:
        """One runner's tick; a failure (database unreachable, calendar exhausted) is logged, never fatal."""
        try:
            runner.tick(now)
        except Exception as exc:  # one robot's trouble must not stop the others
            message = f"{type(exc).__name__}: {exc}"
            if self._last_error.get(runner.robot) != message:
                self.log.exception("robot %s: its runner failed this tick: %s", runner.robot, message)
                runner.alert("runner_error", {"robot": runner.robot, "error": message[:500]})
            self._last_error[runner.robot] = message
        else:
            self._last_error.pop(runner.robot, None)

    def _next_wake(self, runner: RobotRunner, now: datetime) -> datetime:
        try:
            return runner.next_wake(now)
        except Exception:  # reported by _tick; look again next tick
            return now + timedelta(seconds=self.tick_s)

    def request_stop(self) -> None:
        """Ask the loop to stop (safe from a signal handler)."""
        self.stopping.set()

    def serve(self) -> None:
        """Run until ``request_stop``; then stop every robot cleanly."""
        names = ", ".join(r.robot for r in self.runners)
        self.log.info("serving robots: %s", names)
        self.notifier.ready(f"serving {names}")
        try:
            while not self.stopping.is_set():
                now = self.clock.now()
                for runner in self.runners:
                    self._tick(runner, now)
                self.ticks += 1
                self.notifier.watchdog()
                self.notifier.status("; ".join(r.describe() for r in self.runners))
                wake = min([now + timedelta(seconds=self.tick_s), *(self._next_wake(r, now) for r in self.runners)])
                self.clock.sleep_until(wake, self.stopping, lambda: settle(self.runners, self.settle_timeout_s))
        finally:
            self.notifier.stopping("stopping: finishing jobs in hand")
            self.log.info("stopping: finishing the jobs in hand (at most %.0f s)", self.stop_timeout_s)
            now = self.clock.now()
            for runner in self.runners:
                runner.shutdown(now, self.stop_timeout_s)
            self.workers.shutdown(wait=False, cancel_futures=True)
            self.log.info("stopped")
