"""What the dashboard and its API show: each robot's state at a glance, its orders, fills, jobs, risk events,
the server's health, reports, backups and the redacted log.

The views are pydantic models (the web layer's response schemas): money as exact decimals, times as ns
since the epoch (UTC). Every client polling the overview shares one computation: it is kept for
``overview_ttl_s`` and then recomputed on a worker thread while the previous one is still served, so a request
never waits for it (only the very first does). The equity curve is sampled incrementally (``EquitySampler``),
so a page never waits for a scan of millions of equity points either.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import psutil
from pydantic import BaseModel, ConfigDict

from robohost.adapters.backup.targets import is_archive
from robohost.adapters.db.backups import BackupStore
from robohost.adapters.db.dashboard import OPEN_STATUSES, DashboardQueries
from robohost.adapters.db.jobs import JobStore
from robohost.adapters.db.lease import LeaseRow
from robohost.adapters.db.queries import EquityPoint, ReadModel, RunRow
from robohost.config.models import RobotConfig
from robohost.errors import ConfigError
from robohost.services.scheduling.plan import Schedule
from robohost.services.status import robot_status

K = TypeVar("K")
V = TypeVar("V")
SERVER_ALIVE_NS = 30_000_000_000
"""A lease whose heartbeat is older than this has no live server behind it."""
EQUITY_POINTS = 500
COUNTS_TTL_S = 10.0
"""The overview's row counts (a scan of the run's orders and fills) are recounted at most this often."""


class View(BaseModel):
    """Base of the views: read from dataclasses' attributes."""

    model_config = ConfigDict(from_attributes=True)


class RobotStatusView(View):
    """A robot at a glance: ``running``, ``stopped``, ``halted`` or ``degraded``, why, and who runs it."""

    robot: str
    status: str
    state: str
    reason: str | None
    run_id: str | None
    mode: str
    served_by: str | None
    server_alive: bool


class RunView(View):
    """A paper run's progress."""

    id: str
    status: str
    mode: str
    started_at: int
    ended_at: int | None
    starting_cash: Decimal
    events_processed: int
    rejected_count: int
    last_ts: int | None


class PositionView(View):
    """A position, marked at its last price."""

    symbol: str
    qty: Decimal
    avg_price: Decimal
    last_price: float
    unrealized_pnl: float
    realized_pnl: Decimal


class OrderView(View):
    """An order's latest state."""

    id: str
    symbol: str
    side: str
    type: str
    qty: float
    limit_price: float | None
    stop_price: float | None
    tif: str
    status: str
    filled_qty: float
    avg_fill_price: float | None
    fees: Decimal
    created_ts: int
    updated_ts: int
    reason: str


class FillView(View):
    """A fill."""

    id: str
    order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    fee: Decimal
    ts: int
    liquidity: str
    tier: str
    ambiguous: bool
    realized_pnl: Decimal


class NextRunView(View):
    """A planned job: when (ns, UTC) and, for a session, until when."""

    job: str
    at: int
    until: int | None


class EquityView(View):
    """The equity curve (sampled to at most about 500 points) and its drawdown from the running peak."""

    t_ms: list[int]
    equity: list[float]
    drawdown: list[float]
    max_drawdown: float


class Overview(View):
    """Everything the overview page shows."""

    robot: str
    status: RobotStatusView
    run: RunView | None
    equity_now: float | None
    cash_now: float | None
    day: str | None
    day_pnl: float | None
    total_pnl: float | None
    equity: EquityView
    positions: list[PositionView]
    working_orders: list[OrderView]
    recent_fills: list[FillView]
    next_runs: list[NextRunView]
    counts: dict[str, int]
    generated_at: int


class JobView(View):
    """A job of the server's history."""

    id: int
    job: str
    trigger: str
    planned_at: int | None
    started_at: int | None
    ended_at: int | None
    outcome: str
    attempts: int
    error: str | None
    run_id: str | None


class RequestView(View):
    """A person's request and the server's answer."""

    id: int
    robot: str
    action: str
    job: str | None
    requested_by: str
    requested_at: int
    handled_at: int | None
    handled_by: str | None
    outcome: str | None


class RiskEventView(View):
    """A risk rejection, halt or resume."""

    ts: int
    kind: str
    rule: str
    reason: str
    order_id: str | None


class RejectedDataView(View):
    """A row of market data refused by validation (NaN and infinities as null)."""

    ts: int
    symbol: str
    kind: str
    reason: str
    values: list[float | None]


class RiskView(View):
    """A run's risk events and rejected data, newest first."""

    run_id: str | None
    risk_events: list[RiskEventView]
    rejected_data: list[RejectedDataView]


class FeedView(View):
    """A robot's market data as the journal saw it: its source, the newest feed lines, how stale it is."""

    robot: str
    source: str
    live: bool
    last_event_ts: int | None
    staleness_s: float | None
    events: list[dict[str, Any]]


class HealthView(View):
    """The server's health: CPU, memory, the home's disk, this process, and each robot's feed."""

    cpu_percent: float
    load_average: list[float]
    memory_percent: float
    memory_used: int
    memory_total: int
    disk_percent: float
    disk_free: int
    disk_total: int
    process_rss: int
    process_uptime_s: float
    feeds: list[FeedView]


class FileView(View):
    """A downloadable file (a report, a backup)."""

    name: str
    size: int
    modified: int
    detail: str | None = None


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


def list_files(folder: Path, *, suffixes: tuple[str, ...] = (), limit: int = 500) -> list[FileView]:
    """The files of a folder (not its sub-folders), newest first."""
    if not folder.is_dir():
        return []
    files = []
    for path in folder.iterdir():
        if path.is_file() and not path.name.startswith(".") and (not suffixes or path.name.endswith(suffixes)):
            info = path.stat()
            files.append(FileView(name=path.name, size=info.st_size, modified=info.st_mtime_ns))
    files.sort(key=lambda f: (f.modified, f.name), reverse=True)
    return files[:limit]


def file_in(folder: Path, name: str) -> Path | None:
    """``folder/name`` when ``name`` is a plain file name of a file directly inside ``folder``; else None."""
    if not name or name != Path(name).name or name.startswith(".") or "\x00" in name:
        return None
    path = folder / name
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, OSError, RuntimeError):
        return None
    return resolved if resolved.parent == folder.resolve() and resolved.is_file() else None


def read_log_tail(
    path: Path, lines: int, redact: Callable[[list[str]], list[str]], max_bytes: int = 4 << 20
) -> list[str]:
    """The last ``lines`` lines of a log file (reading at most ``max_bytes`` from its end), redacted."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            start = max(0, size - max_bytes)
            fh.seek(start)
            data = fh.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if start > 0 and text:
        text = text[1:]  # the first line was cut
    shown: list[str] = []
    for line in text[-lines:] if lines > 0 else []:
        shown += readable_log_line(line)
    return redact(shown)


_SHOWN_FIELDS = ("time", "level", "component", "event", "message", "pid", "exception")


def readable_log_line(line: str) -> list[str]:
    """A JSON log event as ``TIME LEVEL component: message key=value ...`` (its traceback on the lines after);
    any other line as it is."""
    if not line.startswith("{"):
        return [line]
    try:
        event = json.loads(line)
    except ValueError:
        return [line]
    if not isinstance(event, dict) or "message" not in event:
        return [line]
    extra = " ".join(f"{key}={value}" for key, value in event.items() if key not in _SHOWN_FIELDS)
    head = f"{event.get('time', '')} {str(event.get('level', '')).upper()} {event.get('component', '')}: "
    shown = [head + str(event["message"]) + (f"  {extra}" if extra else "")]
    if event.get("exception"):
        shown += str(event["exception"]).splitlines()
    return shown


class HomeBackups:
    """The home's backups for the dashboard: what the database recorded and what local target folders hold."""

    def __init__(self, store: BackupStore, folders: Callable[[], list[Path]]) -> None:
        self.store = store
        self.folders = folders

    def list(self) -> list[FileView]:
        """Every backup recorded or found in a local folder, newest first (size 0: not downloadable here)."""
        found: dict[str, FileView] = {}
        for folder in self.folders():
            for item in list_files(folder, limit=1000):
                if is_archive(item.name):
                    found[item.name] = item
        views = []
        for row in self.store.recent(500):
            local = found.pop(row.file_name, None)
            note = row.outcome + (f", verified {row.verify_outcome}" if row.verify_outcome else "")
            size = local.size if local else 0
            views.append(FileView(name=row.file_name, size=size, modified=row.started_at, detail=note))
        views += [item.model_copy(update={"detail": "not recorded in this database"}) for item in found.values()]
        views.sort(key=lambda f: (f.modified, f.name), reverse=True)
        return views

    def path(self, name: str) -> Path | None:
        """The local file of the backup ``name``, if a local target folder holds it."""
        if not is_archive(name):
            return None
        for folder in self.folders():
            path = file_in(folder, name)
            if path is not None:
                return path
        return None
