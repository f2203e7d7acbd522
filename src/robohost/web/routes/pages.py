"""The dashboard's pages (server-rendered, refreshed in place by ``static/dashboard.js``) and its buttons.

Every page needs a signed-in browser session. The buttons (Run now, Stop, Resume after halt) are forms that
post here with the CSRF token; the page's script asks for a confirmation first and, where it can, sends them
to the API instead and shows the server's answer in place.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from robohost.errors import StateError
from robohost.services.auth import Principal
from robohost.services.dashboard_files import list_files, read_log_tail
from robohost.web.deps import Ctx, client_ip, csrf, page_principal
from robohost.web.render import render

router = APIRouter(dependencies=[Depends(page_principal), Depends(csrf)], include_in_schema=False)
Viewer = Annotated[Principal, Depends(page_principal)]
RobotQuery = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]
RunQuery = Annotated[str | None, Query(max_length=64)]
OPEN = ("pending", "working", "partially_filled")


def _robot(ctx: Ctx, robot: str | None) -> str:
    names = ctx.dashboard.robot_names()
    chosen = robot or names[0]
    if chosen not in names:
        raise HTTPException(404, "no robot of that name")
    return chosen


def _page(request: Request, name: str, principal: Principal, **values: Any) -> Response:
    return render(request, name, principal, **values)


@router.get("/")
def overview(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    robot: RobotQuery = None,
    request_id: Annotated[int | None, Query(alias="request", ge=1, le=2**62)] = None,
    notice: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The robot at a glance: status, equity and drawdown, P&L, positions, orders, fills, next runs."""
    name = _robot(ctx, robot)
    view = ctx.dashboard.overview(name)
    answer = ctx.control.answer(request_id) if request_id else None
    return _page(
        request,
        "overview.html",
        principal,
        robot=name,
        o=view,
        requests=ctx.dashboard.requests(name, 5),
        answer=answer if answer is not None and answer.robot == name else None,
        notice=notice,
    )


@router.get("/orders")
def orders(
    request: Request,
    ctx: Ctx,
    principal: Viewer,
    robot: RobotQuery = None,
    run_id: RunQuery = None,
    symbol: Annotated[str | None, Query(max_length=64)] = None,
    side: Literal["", "buy", "sell"] = "",
    status: Literal[
        "", "open", "pending", "working", "partially_filled", "filled", "cancelled", "expired", "rejected"
    ] = "",
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> Response:
    """Orders and fills of a run, with filters and CSV export."""
    name = _robot(ctx, robot)
    statuses = OPEN if status == "open" else (status,) if status else ()
    filters = {"run_id": run_id or "", "symbol": symbol or "", "side": side, "status": status, "limit": limit}
    shared = {key: filters[key] for key in ("run_id", "symbol", "side") if filters[key]}
    return _page(
        request,
        "orders.html",
        principal,
        robot=name,
        runs=ctx.dashboard.runs(name, 50),
        symbols=ctx.dashboard.symbols(name, run_id),
        filters=filters,
        export_query=urlencode({**shared, **({"status": status} if status else {})}),
        fills_query=urlencode(shared),
        orders=ctx.dashboard.orders(
            name, run_id=run_id, symbol=symbol or None, side=side or None, statuses=statuses, limit=limit
        ),
        fills=ctx.dashboard.fills(name, run_id=run_id, symbol=symbol or None, side=side or None, limit=limit),
    )


@router.get("/jobs")
def jobs(request: Request, ctx: Ctx, principal: Viewer, robot: RobotQuery = None) -> Response:
    """The server's job history and people's requests."""
    name = _robot(ctx, robot)
    return _page(
        request,
        "jobs.html",
        principal,
        robot=name,
        jobs=ctx.dashboard.job_history(name, 100),
        requests=ctx.dashboard.requests(name, 50),
        next_runs=ctx.dashboard.next_runs(name, ctx.clock()),
    )


@router.get("/risk")
def risk(request: Request, ctx: Ctx, principal: Viewer, robot: RobotQuery = None, run_id: RunQuery = None) -> Response:
    """Risk rejections, halts and refused market data."""
    name = _robot(ctx, robot)
    return _page(request, "risk.html", principal, robot=name, risk=ctx.dashboard.risk(name, run_id, 200))


@router.get("/health")
def health(request: Request, ctx: Ctx, principal: Viewer) -> Response:
    """CPU, memory, disk, and the robots' market data."""
    return _page(request, "health.html", principal, health=ctx.dashboard.health(ctx.clock()))


@router.get("/reports")
def reports(request: Request, ctx: Ctx, principal: Viewer) -> Response:
    """The reports, to download."""
    return _page(request, "files.html", principal, title="Reports", kind="reports", files=list_files(ctx.reports_dir))


@router.get("/backups")
def backups(request: Request, ctx: Ctx, principal: Viewer) -> Response:
    """The backups, to download (encrypted: only the owner's private key opens them)."""
    return _page(request, "files.html", principal, title="Backups", kind="backups", files=ctx.backups.list())


@router.get("/logs")
def logs(request: Request, ctx: Ctx, principal: Viewer, lines: Annotated[int, Query(ge=1, le=5000)] = 200) -> Response:
    """The newest lines of the home's log, with secrets masked."""
    shown = read_log_tail(ctx.log_file, lines, lambda ls: list(ctx.redactor.lines(ls)))
    return _page(request, "logs.html", principal, lines=shown, count=lines)


@router.get("/audit")
def audit(request: Request, ctx: Ctx, principal: Viewer) -> Response:
    """Sign-ins, failures and actions, newest first."""
    return _page(request, "audit.html", principal, rows=ctx.audit.recent(200))


RobotPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]


@router.post("/robots/{robot}/{action}")
def act(
    request: Request, ctx: Ctx, principal: Viewer, robot: RobotPath, action: Literal["run", "stop", "resume"]
) -> Response:
    """A button: Run now, Stop (a request to the robot's server) or Resume after halt."""
    name = _robot(ctx, robot)
    now = ctx.clock()
    ctx.dashboard.forget(name)
    if action == "resume":
        try:
            reason = ctx.control.resume(name, principal.user, client_ip(request), now)
            notice = f"resumed (it had halted: {reason})"
        except StateError as exc:
            notice = str(exc)
        return RedirectResponse("/?" + urlencode({"robot": name, "notice": notice[:200]}), 303)
    request_id = ctx.control.request(name, action, principal.user, client_ip(request), now)
    return RedirectResponse("/?" + urlencode({"robot": name, "request": request_id}), 303)
