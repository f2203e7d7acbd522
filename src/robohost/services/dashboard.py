"""What the dashboard and its API show: each robot's state at a glance, its orders, fills, jobs, risk events and
the server's health (the views are ``dashboard_views``; files and the log are ``dashboard_files``).

Every client polling the overview shares one computation: it is kept for
``overview_ttl_s`` and then recomputed on a worker thread while the previous one is still served, so a request
never waits for it (only the very first does). The equity curve is sampled incrementally (``EquitySampler``),
so a page never waits for a scan of millions of equity points either.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

import psutil

from robohost.adapters.db.dashboard import OPEN_STATUSES, DashboardQueries
from robohost.adapters.db.jobs import JobStore
from robohost.adapters.db.lease import LeaseRow
from robohost.adapters.db.queries import EquityPoint, ReadModel, RunRow
from robohost.config.models import RobotConfig
from robohost.errors import ConfigError
from robohost.services.dashboard_views import (
    EquityView,
    FeedView,
    FillView,
    HealthView,
    JobView,
    NextRunView,
    OrderView,
    Overview,
    PositionView,
    RejectedDataView,
    RequestView,
    RiskEventView,
    RiskView,
    RobotStatusView,
    RunView,
)
from robohost.services.scheduling.plan import Schedule
from robohost.services.status import robot_status

K = TypeVar("K")
V = TypeVar("V")
SERVER_ALIVE_NS = 30_000_000_000
"""A lease whose heartbeat is older than this has no live server behind it."""
EQUITY_POINTS = 500
COUNTS_TTL_S = 10.0
"""The overview's row counts (a scan of the run's orders and fills) are recounted at most this often."""


def _finite(value: float) -> float | None:
    return value if value == value and value not in (float("inf"), float("-inf")) else None


class _SharedCache(Generic[K, V]):
    """Values computed at most once per ``ttl_s`` per key; concurrent callers wait for one computation.

    With ``background``, a stale value is served while one refresh runs on a worker thread.
    """

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic, background: bool = False) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._values: dict[K, tuple[float, V]] = {}
        self._locks: dict[K, threading.Lock] = {}
        self._guard = threading.Lock()
        self._refreshing: dict[K, Future[V]] = {}
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="robohost-web-cache") if background else None

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value of ``key``, computed by ``compute`` when missing or stale."""
        ready = self.peek(key, compute)
        if ready is not None:
            return ready
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._values.get(key)
            if entry is not None and self.clock() - entry[0] < self.ttl_s:
                return entry[1]
            return self._compute(key, compute)

    def peek(self, key: K, compute: Callable[[], V]) -> V | None:
        """The cached value of ``key`` if it is fresh, or stale while a background refresh runs; else None.

        Never waits for a computation.
        """
        entry = self._values.get(key)
        if entry is None:
            return None
        if self.clock() - entry[0] < self.ttl_s:
            return entry[1]
        if self._pool is None:
            return None
        with self._guard:
            if key not in self._refreshing:
                self._refreshing[key] = self._pool.submit(self._compute, key, compute)
        return entry[1]

    def forget(self, key: K) -> None:
        """Drop the cached value of ``key`` (the next ``get`` computes it afresh)."""
        self._values.pop(key, None)

    def _compute(self, key: K, compute: Callable[[], V]) -> V:
        try:
            value = compute()
            self._values[key] = (self.clock(), value)
            return value
        finally:
            with self._guard:
                self._refreshing.pop(key, None)


class EquitySampler:
    """A run's equity curve in at most about ``points`` points, kept up to date incrementally.

    The curve is cut into equal time slices from its first point, and each slice shows its last point, found
    with one probe of the primary key: a refresh costs the same for a hundred points or ten million. Slices
    already complete are kept; the last one is looked at again each time. When the slices get too many (a live
    run's curve grows), they are made twice as wide, keeping the later point of each pair.
    """

    def __init__(self, queries: DashboardQueries, run_id: str, points: int) -> None:
        self.queries = queries
        self.run_id = run_id
        self.points = points
        self.origin: int | None = None
        self.width = 1
        self.slices: dict[int, EquityPoint] = {}
        self.next_slice = 0
        self._lock = threading.Lock()

    def refresh(self) -> list[EquityPoint]:
        """The sampled curve, oldest first."""
        with self._lock:
            span = self.queries.equity_span(self.run_id)
            if span is None:
                return []
            if self.origin is None:
                self.origin = span[0]
                self.width = max(1, (span[1] - span[0]) // self.points + 1)
            while (span[1] - self.origin) // self.width + 1 > self.points:  # grown: wider slices
                self.width *= 2
                self.slices = {number // 2: point for number, point in sorted(self.slices.items())}
                self.next_slice //= 2
            last = (span[1] - self.origin) // self.width
            numbers = range(self.next_slice, last + 1)
            windows = [(self.origin + n * self.width, self.origin + (n + 1) * self.width) for n in numbers]
            for number, point in zip(numbers, self.queries.equity_last_in(self.run_id, windows), strict=True):
                if point is not None:
                    self.slices[number] = point
            self.next_slice = last  # the last slice may still grow
            return [self.slices[n] for n in sorted(self.slices)]


class Dashboard:
    """The read side of the dashboard (see the module docstring)."""

    def __init__(
        self,
        robots: Mapping[str, RobotConfig],
        read: ReadModel,
        queries: DashboardQueries,
        jobs: JobStore,
        lease: Callable[[str], LeaseRow | None],
        schedule: Callable[[str], Schedule],
        home: Path,
        overview_ttl_s: float = 2.0,
    ) -> None:
        self.robots = dict(robots)
        self.read = read
        self.queries = queries
        self.jobs = jobs
        self.lease = lease
        self.schedule = schedule
        self.home = home
        self._overviews: _SharedCache[str, Overview] = _SharedCache(overview_ttl_s, background=True)
        self._equity: _SharedCache[str, EquityView] = _SharedCache(max(2.0, overview_ttl_s), background=True)
        self._next: _SharedCache[str, list[NextRunView]] = _SharedCache(30.0)
        self._counts: _SharedCache[str, dict[str, int]] = _SharedCache(COUNTS_TTL_S, background=True)
        self._samplers: dict[str, EquitySampler] = {}
        self._guard = threading.Lock()
        psutil.cpu_percent(interval=None)  # the first reading is meaningless: start the measurement now

    def robot_names(self) -> list[str]:
        """The home's robots, as configured."""
        return list(self.robots)

    def has_robot(self, robot: str) -> bool:
        """Whether the home has a robot of that name."""
        return robot in self.robots

    # -- the overview ---------------------------------------------------------------------------------------------

    def status(self, robot: str, now: int) -> RobotStatusView:
        """The robot's state at a glance."""
        state = robot_status(self.read, robot)
        row = self.read.robot_state(robot)
        lease = self.lease(robot)
        alive = (
            lease is not None
            and lease.released_at is None
            and lease.holder.startswith("serve")
            and now - lease.heartbeat_at < SERVER_ALIVE_NS
        )
        shown = {"running": "running", "halted": "halted", "degraded": "degraded"}.get(state.state, "stopped")
        return RobotStatusView(
            robot=robot,
            status=shown,
            state=state.state,
            reason=state.reason,
            run_id=row.run_id if row else None,
            mode=self.robots[robot].schedule.mode,
            served_by=lease.holder if alive and lease else None,
            server_alive=alive,
        )

    def forget(self, robot: str) -> None:
        """Show the robot's next overview fresh (after a person acted on it)."""
        self._overviews.forget(robot)

    def overview(self, robot: str) -> Overview:
        """The overview of one robot (cached: see the module docstring)."""
        return self._overviews.get(robot, lambda: self._overview(robot, time.time_ns()))

    def overview_ready(self, robot: str) -> Overview | None:
        """The cached overview of the robot, without waiting (None when there is none yet)."""
        return self._overviews.peek(robot, lambda: self._overview(robot, time.time_ns()))

    def _overview(self, robot: str, now: int) -> Overview:
        run = self.read.latest_run(robot)
        equity = self._equity.get(run.id, lambda: self._equity_view(run.id)) if run else _empty_equity()
        last = self.queries.last_equity(run.id) if run else None
        day, day_pnl = self._day_pnl(robot, run, last.ts if last else None, last.equity if last else None)
        positions = self.positions(run.id) if run else []
        return Overview(
            robot=robot,
            status=self.status(robot, now),
            run=RunView.model_validate(run) if run else None,
            equity_now=last.equity if last else None,
            cash_now=last.cash if last else None,
            day=day,
            day_pnl=day_pnl,
            total_pnl=last.equity - float(run.starting_cash) if run and last else None,
            equity=equity,
            positions=positions,
            working_orders=self.orders(robot, statuses=OPEN_STATUSES, limit=50, run=run),
            recent_fills=self.fills(robot, limit=20, run=run),
            next_runs=self.next_runs(robot, now),
            counts=self._counts.get(run.id, lambda: self.queries.counts(run.id)) if run else {},
            generated_at=now,
        )

    def _equity_view(self, run_id: str) -> EquityView:
        with self._guard:
            sampler = self._samplers.get(run_id)
            if sampler is None:
                if len(self._samplers) > 16:
                    self._samplers.clear()
                sampler = self._samplers[run_id] = EquitySampler(self.queries, run_id, EQUITY_POINTS)
        points = sampler.refresh()
        peak = float("-inf")
        drawdown = []
        for point in points:
            peak = max(peak, point.equity)
            drawdown.append(point.equity / peak - 1 if peak > 0 else 0.0)
        return EquityView(
            t_ms=[p.ts // 1_000_000 for p in points],
            equity=[p.equity for p in points],
            drawdown=drawdown,
            max_drawdown=min(drawdown, default=0.0),
        )

    def _day_pnl(
        self, robot: str, run: RunRow | None, last_ts: int | None, last_equity: float | None
    ) -> tuple[str | None, float | None]:
        """The P&L of the day of the newest equity point (in the robot's zone): a replay's day is its market day.

        As in the reports, a point belongs to the day of the instant just before it (a daily bar's close,
        stamped at midnight, closes the previous day); the day starts from the last point of the day before.
        """
        if run is None or last_ts is None or last_equity is None:
            return None, None
        zone = ZoneInfo(self.robots[robot].timezone)
        local = datetime.fromtimestamp((last_ts - 1) / 1e9, tz=UTC).astimezone(zone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        start_ns = int(start.astimezone(UTC).timestamp()) * 1_000_000_000
        before = self.queries.equity_before(run.id, start_ns + 1)
        base = before.equity if before is not None else float(run.starting_cash)
        return local.date().isoformat(), last_equity - base

    def positions(self, run_id: str) -> list[PositionView]:
        """The run's open positions, marked at their last prices."""
        return [
            PositionView(
                symbol=p.symbol,
                qty=p.qty,
                avg_price=p.avg_price,
                last_price=p.last_price,
                unrealized_pnl=float(p.qty) * (p.last_price - float(p.avg_price)),
                realized_pnl=p.realized_pnl,
            )
            for p in self.read.positions(run_id)
            if p.qty != 0
        ]

    def next_runs(self, robot: str, now: int, count: int = 5) -> list[NextRunView]:
        """The robot's next planned jobs (cached for 30 s)."""
        return self._next.get(robot, lambda: self._next_runs(robot, now, count))

    def _next_runs(self, robot: str, now: int, count: int) -> list[NextRunView]:
        moment = datetime.fromtimestamp(now / 1e9, tz=UTC)
        try:
            planned = self.schedule(robot).next_jobs(moment, count)
        except ConfigError:
            return []  # the calendar knows no further: nothing to show
        return [
            NextRunView(
                job=job.job,
                at=_ns(job.at),
                until=_ns(job.until) if job.until is not None else None,
            )
            for job in planned
        ]

    # -- lists ----------------------------------------------------------------------------------------------------

    def _run(self, robot: str, run_id: str | None) -> RunRow | None:
        if run_id is None:
            return self.read.latest_run(robot)
        run = self.read.run(run_id)
        return run if run is not None and run.robot == robot else None

    def runs(self, robot: str, limit: int = 20) -> list[RunView]:
        """The robot's newest runs."""
        return [RunView.model_validate(r) for r in self.read.runs(robot, limit=limit)]

    def orders(
        self,
        robot: str,
        *,
        run_id: str | None = None,
        symbol: str | None = None,
        side: str | None = None,
        statuses: tuple[str, ...] = (),
        limit: int = 100,
        run: RunRow | None = None,
    ) -> list[OrderView]:
        """The run's orders matching the filters, newest first."""
        run = run or self._run(robot, run_id)
        if run is None:
            return []
        rows = self.queries.orders(run.id, symbol=symbol, side=side, statuses=statuses, limit=limit)
        return [OrderView.model_validate(r) for r in rows]

    def fills(
        self,
        robot: str,
        *,
        run_id: str | None = None,
        symbol: str | None = None,
        side: str | None = None,
        limit: int = 100,
        run: RunRow | None = None,
    ) -> list[FillView]:
        """The run's fills matching the filters, newest first."""
        run = run or self._run(robot, run_id)
        if run is None:
            return []
        return [FillView.model_validate(r) for r in self.queries.fills(run.id, symbol=symbol, side=side, limit=limit)]

    def symbols(self, robot: str, run_id: str | None = None) -> list[str]:
        """The symbols of the run's orders (for the filters)."""
        run = self._run(robot, run_id)
        return self.queries.symbols(run.id) if run else []

    def job_history(self, robot: str, limit: int = 50) -> list[JobView]:
        """The robot's newest jobs."""
        return [JobView.model_validate(r) for r in self.jobs.history(robot, limit)]

    def requests(self, robot: str, limit: int = 20) -> list[RequestView]:
        """The robot's newest requests and their answers."""
        return [RequestView.model_validate(r) for r in self.queries.requests(robot, limit)]

    def risk(self, robot: str, run_id: str | None = None, limit: int = 100) -> RiskView:
        """The run's newest risk events and refused market data."""
        run = self._run(robot, run_id)
        if run is None:
            return RiskView(run_id=None, risk_events=[], rejected_data=[])
        rejected = [
            RejectedDataView(
                ts=r.ts, symbol=r.symbol, kind=r.kind, reason=r.reason, values=[_finite(v) for v in r.values]
            )
            for r in self.queries.rejected_data(run.id, limit)
        ]
        events = [RiskEventView.model_validate(r) for r in self.queries.risk_events(run.id, limit)]
        return RiskView(run_id=run.id, risk_events=events, rejected_data=rejected)

    # -- health ---------------------------------------------------------------------------------------------------

    def health(self, now: int) -> HealthView:
        """CPU, memory, the home's disk, this process, and each robot's feed."""
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.home))
        process = psutil.Process()
        return HealthView(
            cpu_percent=psutil.cpu_percent(interval=None),
            load_average=list(os.getloadavg()),
            memory_percent=memory.percent,
            memory_used=memory.total - memory.available,
            memory_total=memory.total,
            disk_percent=disk.percent,
            disk_free=disk.free,
            disk_total=disk.total,
            process_rss=process.memory_info().rss,
            process_uptime_s=max(0.0, now / 1e9 - process.create_time()),
            feeds=[self.feed(robot, now) for robot in self.robots],
        )

    def feed(self, robot: str, now: int) -> FeedView:
        """The robot's market data: the newest ``feed_*`` journal lines and, for a running live run, staleness."""
        config = self.robots[robot].data
        run = self.read.latest_run(robot)
        events = self.queries.feed_events(run.id) if run else []
        stale = None
        if run is not None and config.live and run.status == "running" and run.last_ts is not None:
            stale = max(0.0, (now - run.last_ts) / 1e9)
        return FeedView(
            robot=robot,
            source=config.source,
            live=config.live,
            last_event_ts=run.last_ts if run else None,
            staleness_s=stale,
            events=[{"ts": e.ts, "type": e.type, "data": e.data} for e in events],
        )


def _empty_equity() -> EquityView:
    return EquityView(t_ms=[], equity=[], drawdown=[], max_drawdown=0.0)


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
