"""Read commands: ``status``, ``orders``, ``fills``, ``equity`` (``--json`` for scripts)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from robohost.cli.common import HomeOption, JsonOption, RobotOption, console, iso, opened, print_json
from robohost.errors import StateError
from robohost.services.status import robot_status

RunOption = Annotated[str | None, typer.Option("--run", help="A run id (default: the robot's latest run).")]
LimitOption = Annotated[int | None, typer.Option("--limit", help="Show only the newest N rows.")]


def status(home: HomeOption = None, robot: RobotOption = None, as_json: JsonOption = False) -> None:
    """The robot's state, its last run, positions and P&L."""
    with opened(home) as app:
        name, cfg = app.home.robot(robot)
        state = robot_status(app.read, name)
        last = app.read.latest_run(name)
        positions = app.read.positions(last.id) if last else []
    data: dict[str, Any] = {
        "robot": name,
        "state": state.state,
        "reason": state.reason,
        "strategy": cfg.strategy,
        "last_run": None,
        "positions": [
            {
                "symbol": p.symbol,
                "qty": p.qty,
                "avg_price": p.avg_price,
                "last_price": p.last_price,
                "unrealized_pnl": (p.last_price - float(p.avg_price)) * float(p.qty) if p.qty else 0.0,
                "realized_pnl": p.realized_pnl,
            }
            for p in positions
        ],
    }
    if last is not None:
        data["last_run"] = {
            "id": last.id,
            "status": last.status,
            "started_at": iso(last.started_at),
            "ended_at": iso(last.ended_at),
            "events": last.events_processed,
            "rejected_market_data": last.rejected_count,
            "summary": last.summary,
        }
    if as_json:
        print_json(data)
        return
    console.print(f"robot [bold]{name}[/bold]: {data['state']}" + (f" ({data['reason']})" if data["reason"] else ""))
    if last is None:
        console.print("no run yet: robohost run")
        return
    console.print(
        f"last run {last.id}: {last.status}, started {iso(last.started_at)}, {last.events_processed:,} events"
    )
    summary = last.summary or {}
    if summary:
        console.print(
            f"equity {summary.get('final_equity', 0):,.2f} (return {summary.get('total_return', 0):+.2%}, "
            f"max drawdown {summary.get('max_drawdown', 0):.2%}), {summary.get('round_trips', 0)} round trips"
        )
    table = Table("symbol", "qty", "avg price", "last", "unrealized", "realized", title="positions")
    for p in data["positions"]:
        table.add_row(
            p["symbol"],
            f"{float(p['qty']):g}",
            f"{float(p['avg_price']):,.2f}",
            f"{p['last_price']:,.2f}",
            f"{p['unrealized_pnl']:,.2f}",
            f"{float(p['realized_pnl']):,.2f}",
        )
    console.print(table)


def orders(
    home: HomeOption = None,
    robot: RobotOption = None,
    run: RunOption = None,
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """The robot's orders, with status and the reason of any rejection."""
    with opened(home) as app:
        name, _ = app.home.robot(robot)
        rows = app.read.orders(name, run, limit)
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    table = Table("id", "symbol", "side", "type", "qty", "limit", "stop", "status", "filled", "avg price", "reason")
    for r in rows:
        table.add_row(
            r.id,
            r.symbol,
            r.side,
            r.type,
            f"{r.qty:g}",
            _num(r.limit_price),
            _num(r.stop_price),
            r.status,
            f"{r.filled_qty:g}",
            _num(r.avg_fill_price),
            r.reason,
        )
    console.print(table)


def fills(
    home: HomeOption = None,
    robot: RobotOption = None,
    run: RunOption = None,
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """The robot's fills: time, price, fee, and which data decided them."""
    with opened(home) as app:
        name, _ = app.home.robot(robot)
        rows = app.read.fills(name, run, limit)
    if as_json:
        print_json([{**asdict(r), "time": iso(r.ts)} for r in rows])
        return
    table = Table("time", "order", "symbol", "side", "qty", "price", "fee", "tier", "realized", "flag")
    for r in rows:
        table.add_row(
            iso(r.ts),
            r.order_id,
            r.symbol,
            r.side,
            f"{r.qty:g}",
            f"{r.price:,.4f}",
            f"{r.fee}",
            r.tier,
            f"{float(r.realized_pnl):,.2f}",
            "ambiguous bar" if r.ambiguous else "",
        )
    console.print(table)


def equity(
    home: HomeOption = None,
    robot: RobotOption = None,
    run: RunOption = None,
    limit: LimitOption = None,
    as_json: JsonOption = False,
) -> None:
    """The equity curve: equity and cash at each marked time."""
    with opened(home) as app:
        name, _ = app.home.robot(robot)
        points = app.read.equity(name, run, limit)
    if not points and not as_json:
        raise StateError(f"robot {name!r} has no equity points yet: robohost run")
    if as_json:
        print_json([{"time": iso(p.ts), "ts": p.ts, "equity": p.equity, "cash": p.cash} for p in points])
        return
    table = Table("time", "equity", "cash")
    for p in points:
        table.add_row(iso(p.ts), f"{p.equity:,.2f}", f"{p.cash:,.2f}")
    console.print(table)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:,.4f}"
