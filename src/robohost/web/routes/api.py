"""``/api/v1``: everything the pages show and do, as JSON (and CSV exports), for a session or an API token.

Reading needs any principal; ``run``, ``stop``, ``resume`` and ``signout-all`` need the ``operate`` scope
(a session has it) and, from a browser session, the CSRF token. Downloads are audited. The OpenAPI schema
is ``/api/v1/openapi.json`` (signed in too).
"""

from __future__ import annotations

import csv
import io
import pathlib
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel

from robohost.errors import StateError
from robohost.services.auth import Principal
from robohost.services.dashboard_files import file_in as file_in_folder
from robohost.services.dashboard_files import list_files, read_log_tail
from robohost.services.dashboard_views import (
    EquityView,
    FileView,
    FillView,
    HealthView,
    JobView,
    NextRunView,
    OrderView,
    Overview,
    RequestView,
    RiskView,
    RobotStatusView,
    RunView,
)
from robohost.web.context import WebContext
from robohost.web.deps import Ctx, api_principal, client_ip, csrf, operate
from robohost.web.security import CSP_FILES

router = APIRouter(prefix="/api/v1", dependencies=[Depends(api_principal), Depends(csrf)], tags=["api"])

RobotName = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$", description="the robot's name")]
Limit = Annotated[int, Query(ge=1, le=10_000, description="at most this many rows, newest first")]
Side = Literal["buy", "sell"]
OrderStatus = Literal["open", "pending", "working", "partially_filled", "filled", "cancelled", "expired", "rejected"]
OPEN = ("pending", "working", "partially_filled")
RunId = Annotated[str | None, Query(max_length=64, description="a run id (default: the latest run)")]
Symbol = Annotated[str | None, Query(max_length=64)]
CSV_LIMIT = 1_000_000


class Me(BaseModel):
    """Who is asking."""

    user: str
    method: str
    scope: str


class ActionResult(BaseModel):
    """A request handed to the robot's server: poll ``/api/v1/requests/{request_id}`` for its answer."""

    robot: str
    action: str
    request_id: int


class ResumeResult(BaseModel):
    """A robot's kill switch cleared."""

    robot: str
    resumed: bool
    was_halted_because: str


class SignedOut(BaseModel):
    """Sessions ended by ``signout-all``."""

    sessions_ended: int


class LogLines(BaseModel):
    """The newest lines of ``logs/robohost.log``, secrets masked."""

    lines: list[str]


class AuditView(BaseModel):
    """An audited event."""

    id: int
    ts: int
    actor: str | None
    ip: str | None
    action: str
    robot: str | None
    detail: str | None
    outcome: str


async def robot_of(robot: RobotName, ctx: Ctx) -> str:
    """The robot named in the path; 404 when the home has no such robot."""
    if not ctx.dashboard.has_robot(robot):
        raise HTTPException(404, "no robot of that name")
    return robot


Robot = Annotated[str, Depends(robot_of)]
_overview_json: dict[str, tuple[Overview, bytes]] = {}


@router.get("/openapi.json", include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    """The OpenAPI schema of this API."""
    return JSONResponse(request.app.openapi())


@router.get("/me", response_model=Me)
def me(principal: Annotated[Principal, Depends(api_principal)]) -> Me:
    """Who the caller is and what they may do."""
    return Me(user=principal.user, method=principal.method, scope=principal.scope)


@router.get("/robots", response_model=list[RobotStatusView])
def robots(ctx: Ctx) -> list[RobotStatusView]:
    """Every robot of the home at a glance."""
    now = ctx.clock()
    return [ctx.dashboard.status(name, now) for name in ctx.dashboard.robot_names()]


@router.get("/robots/{robot}/overview", response_model=Overview)
async def overview(robot: Robot, ctx: Ctx) -> Response:
    """Status, equity and drawdown, today's P&L, positions, working orders, recent fills, next runs."""
    view = ctx.dashboard.overview_ready(robot)  # the polled path: served from the cache on the event loop
    if view is None:
        view = await run_in_threadpool(ctx.dashboard.overview, robot)
    cached = _overview_json.get(robot)
    if cached is None or cached[0] is not view:
        cached = (view, view.model_dump_json().encode())
        _overview_json[robot] = cached
    return Response(cached[1], media_type="application/json")


@router.get("/robots/{robot}/status", response_model=RobotStatusView)
def status(robot: Robot, ctx: Ctx) -> RobotStatusView:
    """The robot's state: running, stopped, halted or degraded, and who serves it."""
    return ctx.dashboard.status(robot, ctx.clock())


@router.get("/robots/{robot}/runs", response_model=list[RunView])
def runs(robot: Robot, ctx: Ctx, limit: Limit = 20) -> list[RunView]:
    """The robot's newest runs."""
    return ctx.dashboard.runs(robot, limit)


def _statuses(status: Sequence[str] | None) -> tuple[str, ...]:
    chosen: list[str] = []
    for value in status or ():
        chosen += OPEN if value == "open" else [value]
    return tuple(dict.fromkeys(chosen))


@router.get("/robots/{robot}/orders", response_model=list[OrderView])
def orders(
    robot: Robot,
    ctx: Ctx,
    run_id: RunId = None,
    symbol: Symbol = None,
    side: Side | None = None,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
    limit: Limit = 100,
) -> list[OrderView]:
    """The run's orders, newest first; ``status=open`` means pending, working or partially filled."""
    return ctx.dashboard.orders(robot, run_id=run_id, symbol=symbol, side=side, statuses=_statuses(status), limit=limit)


@router.get("/robots/{robot}/fills", response_model=list[FillView])
def fills(
    robot: Robot, ctx: Ctx, run_id: RunId = None, symbol: Symbol = None, side: Side | None = None, limit: Limit = 100
) -> list[FillView]:
    """The run's fills, newest first."""
    return ctx.dashboard.fills(robot, run_id=run_id, symbol=symbol, side=side, limit=limit)


def _csv(rows: Iterable[BaseModel], fields: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        values = row.model_dump(mode="json")
        writer.writerow([_cell(values[name]) for name in fields])
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell; text that a spreadsheet would run as a formula is quoted with a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _download(ctx: WebContext, principal: Principal, request: Request, name: str, robot: str | None) -> None:
    ctx.audit.record(
        "download", "ok", ctx.clock(), actor=principal.user, ip=client_ip(request), robot=robot, detail=name
    )


@router.get("/robots/{robot}/orders.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def orders_csv(
    robot: Robot,
    ctx: Ctx,
    request: Request,
    principal: Annotated[Principal, Depends(api_principal)],
    run_id: RunId = None,
    symbol: Symbol = None,
    side: Side | None = None,
    status: Annotated[list[OrderStatus] | None, Query()] = None,
) -> Response:
    """The run's orders as CSV (newest first)."""
    rows = ctx.dashboard.orders(
        robot, run_id=run_id, symbol=symbol, side=side, statuses=_statuses(status), limit=CSV_LIMIT
    )
    name = f"orders-{robot}.csv"
    _download(ctx, principal, request, name, robot)
    return _csv_response(_csv(rows, list(OrderView.model_fields)), name)


@router.get("/robots/{robot}/fills.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def fills_csv(
    robot: Robot,
    ctx: Ctx,
    request: Request,
    principal: Annotated[Principal, Depends(api_principal)],
    run_id: RunId = None,
    symbol: Symbol = None,
    side: Side | None = None,
) -> Response:
    """The run's fills as CSV (newest first)."""
    rows = ctx.dashboard.fills(robot, run_id=run_id, symbol=symbol, side=side, limit=CSV_LIMIT)
    name = f"fills-{robot}.csv"
    _download(ctx, principal, request, name, robot)
    return _csv_response(_csv(rows, list(FillView.model_fields)), name)


def _csv_response(text: str, name: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Content-Security-Policy": CSP_FILES}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/robots/{robot}/equity", response_model=EquityView)
def equity(robot: Robot, ctx: Ctx) -> EquityView:
    """The latest run's equity curve (sampled) and drawdown."""
    return ctx.dashboard.overview(robot).equity


@router.get("/robots/{robot}/jobs", response_model=list[JobView])
def jobs(robot: Robot, ctx: Ctx, limit: Limit = 50) -> list[JobView]:
    """The robot's job history, newest first."""
    return ctx.dashboard.job_history(robot, limit)


@router.get("/robots/{robot}/requests", response_model=list[RequestView])
def requests(robot: Robot, ctx: Ctx, limit: Limit = 20) -> list[RequestView]:
    """People's requests to the robot's server and its answers, newest first."""
    return ctx.dashboard.requests(robot, limit)


@router.get("/robots/{robot}/risk", response_model=RiskView)
def risk(robot: Robot, ctx: Ctx, run_id: RunId = None, limit: Limit = 100) -> RiskView:
    """The run's risk events and refused market data, newest first."""
    return ctx.dashboard.risk(robot, run_id, limit)


@router.get("/robots/{robot}/schedule", response_model=list[NextRunView])
def schedule(robot: Robot, ctx: Ctx) -> list[NextRunView]:
    """The robot's next planned jobs."""
    return ctx.dashboard.next_runs(robot, ctx.clock())


@router.post("/robots/{robot}/run", response_model=ActionResult)
def run(robot: Robot, ctx: Ctx, request: Request, principal: Annotated[Principal, Depends(operate)]) -> ActionResult:
    """Ask the robot's server to start a session now (as ``robohost trigger run``)."""
    request_id = ctx.control.request(robot, "run", principal.user, client_ip(request), ctx.clock())
    ctx.dashboard.forget(robot)
    return ActionResult(robot=robot, action="run", request_id=request_id)


@router.post("/robots/{robot}/stop", response_model=ActionResult)
def stop(robot: Robot, ctx: Ctx, request: Request, principal: Annotated[Principal, Depends(operate)]) -> ActionResult:
    """Ask the robot's server to stop its session (as ``robohost trigger stop``)."""
    request_id = ctx.control.request(robot, "stop", principal.user, client_ip(request), ctx.clock())
    ctx.dashboard.forget(robot)
    return ActionResult(robot=robot, action="stop", request_id=request_id)


@router.post("/robots/{robot}/resume", response_model=ResumeResult, responses={409: {"description": "not halted"}})
def resume(robot: Robot, ctx: Ctx, request: Request, principal: Annotated[Principal, Depends(operate)]) -> ResumeResult:
    """Clear the robot's kill switch after a halt (as ``robohost resume``); 409 when it is not halted."""
    try:
        reason = ctx.control.resume(robot, principal.user, client_ip(request), ctx.clock())
    except StateError as exc:
        raise HTTPException(409, str(exc)) from None
    ctx.dashboard.forget(robot)
    return ResumeResult(robot=robot, resumed=True, was_halted_because=reason)


@router.get("/requests/{request_id}", response_model=RequestView)
def request_answer(request_id: Annotated[int, Path(ge=1, le=2**62)], ctx: Ctx) -> RequestView:
    """A request and, once the robot's server handled it, its answer."""
    row = ctx.control.answer(request_id)
    if row is None:
        raise HTTPException(404, "no request with that id")
    return RequestView.model_validate(row)


@router.get("/health", response_model=HealthView)
def health(ctx: Ctx) -> HealthView:
    """CPU, memory, the home's disk, this process, and each robot's market data."""
    return ctx.dashboard.health(ctx.clock())


@router.get("/reports", response_model=list[FileView])
def reports(ctx: Ctx) -> list[FileView]:
    """The reports in the home's ``reports/`` folder, newest first."""
    return list_files(ctx.reports_dir)


FileName = Annotated[str, Path(max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


@router.get(
    "/reports/{name}", response_class=FileResponse, responses={200: {"content": {"application/octet-stream": {}}}}
)
def report_file(
    name: FileName, ctx: Ctx, request: Request, principal: Annotated[Principal, Depends(api_principal)]
) -> FileResponse:
    """Download a report (audited)."""
    path = file_in_folder(ctx.reports_dir, name)
    if path is None:
        raise HTTPException(404, "no report of that name")
    _download(ctx, principal, request, f"report {name}", None)
    return _file(path)


@router.get("/backups", response_model=list[FileView])
def backups(ctx: Ctx) -> list[FileView]:
    """The backups robohost recorded and those in local target folders, newest first."""
    return ctx.backups.list()


@router.get(
    "/backups/{name}", response_class=FileResponse, responses={200: {"content": {"application/octet-stream": {}}}}
)
def backup_file(
    name: FileName, ctx: Ctx, request: Request, principal: Annotated[Principal, Depends(api_principal)]
) -> FileResponse:
    """Download an encrypted backup from a local target folder (audited)."""
    path = ctx.backups.path(name)
    if path is None:
        raise HTTPException(404, "no backup of that name in a local target folder")
    _download(ctx, principal, request, f"backup {name}", None)
    return _file(path)


def _file(path: pathlib.Path) -> FileResponse:
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=path.name,
        content_disposition_type="attachment",
        headers={"Content-Security-Policy": CSP_FILES},
    )


@router.get("/logs", response_model=LogLines)
def logs(ctx: Ctx, lines: Annotated[int, Query(ge=1, le=5000)] = 200) -> LogLines:
    """The newest lines of the home's log, secrets masked."""
    return LogLines(lines=read_log_tail(ctx.log_file, lines, lambda ls: list(ctx.redactor.lines(ls))))


@router.get("/audit", response_model=list[AuditView])
def audit(ctx: Ctx, limit: Limit = 100) -> list[AuditView]:
    """The audit log, newest first."""
    return [AuditView.model_validate(row, from_attributes=True) for row in ctx.audit.recent(limit)]


@router.post("/signout-all", response_model=SignedOut)
def signout_all(ctx: Ctx, request: Request, principal: Annotated[Principal, Depends(operate)]) -> SignedOut:
    """End every session of the caller's user (every browser signs in again)."""
    ended = ctx.auth.signout_all(principal.user, ctx.clock(), actor=principal.user, ip=client_ip(request))
    return SignedOut(sessions_ended=ended)
