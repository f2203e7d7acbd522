"""``robohost report``: reports built from the trading database (``report pnl``)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from robohost.cli.common import HomeOption, JsonOption, RobotOption, console, opened, print_json
from robohost.errors import ConfigError, StateError

if TYPE_CHECKING:
    from robohost.services.reports.pnl import PnlReport

REPORTS_DIR = "reports"

report_app = typer.Typer(help="Reports from the trading database.", no_args_is_help=True)


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: expected an ISO date like 2010-01-31, got {text!r}") from None


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _as_dict(report: PnlReport) -> dict[str, Any]:
    m, data, ft = report.metrics, report.data, report.forward
    summary = {
        "robot": data.robot,
        "run_id": data.run.id,
        "from": str(data.first_day),
        "to": str(data.last_day),
        "days": m.days,
        "periods_per_year": m.periods_per_year,
        "starting_equity": m.starting_equity,
        "ending_equity": m.ending_equity,
        "total_return": m.total_return,
        "cagr": _number(m.cagr),
        "annual_volatility": _number(m.annual_volatility),
        "sharpe": _number(m.sharpe),
        "sortino": _number(m.sortino),
        "calmar": _number(m.calmar),
        "max_drawdown": m.max_drawdown,
        "max_drawdown_days": m.drawdown.days if m.drawdown else 0,
        "trades": m.trades.trades,
        "win_rate": _number(m.trades.win_rate),
        "profit_factor": _number(m.trades.profit_factor),
        "average_win": _number(m.trades.average_win),
        "average_loss": _number(m.trades.average_loss),
        "exposure": _number(m.exposure),
        "turnover": _number(m.turnover),
        "fills": len(data.fills),
        "fees": data.fees,
        "slippage_estimate": data.slippage.total,
    }
    forward = None
    if ft is not None:
        forward = {
            "backtest": ft.backtest,
            "verdict": ft.verdict,
            "reasons": list(ft.reasons),
            "psr": _number(ft.psr),
            "min_trl": _number(ft.min_trl),
            "sharpe_per_day": _number(ft.sharpe),
            "backtest_sharpe_per_day": _number(ft.backtest_sharpe),
            "drawdown_percentile": ft.drawdown_percentile,
        }
    return {"files": {k: str(v) for k, v in report.files.items()}, "summary": summary, "forward": forward}


@report_app.command("pnl")
def pnl(
    home: HomeOption = None,
    robot: RobotOption = None,
    run: Annotated[str | None, typer.Option("--run", help="A run id (default: the robot's latest run).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First day (ISO date, inclusive).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End day (ISO date, exclusive).")] = None,
    formats: Annotated[str, typer.Option("--format", help="html, pdf or html,pdf.")] = "html,pdf",
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder to write into (default: the home's reports/).")
    ] = None,
    backtest: Annotated[
        Path | None,
        typer.Option("--backtest", help="A backtest CSV: daily returns (date, return) or trades (exit_time, pnl)."),
    ] = None,
    backtest_run: Annotated[
        str | None, typer.Option("--backtest-run", help="A robohost replay run of this database as the backtest.")
    ] = None,
    periods_per_year: Annotated[
        int | None,
        typer.Option("--periods-per-year", help="Annualisation: 252 (trading days) or 365 (default by market)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the paper-trading P&L report (HTML, PDF and the trades as CSV) and print where."""
    # heavy: only when used (matplotlib and reportlab would add 0.4 s to every other command's start)
    from robohost.services.reports.pnl import parse_formats, pnl_report

    chosen = parse_formats(formats)
    first, last = _day(start, "--from"), _day(end, "--to")
    with opened(home) as app:
        name, _ = app.home.robot(robot)
        report = pnl_report(
            app.read,
            name,
            out if out is not None else app.home.path / REPORTS_DIR,
            run_id=run,
            start=first,
            end=last,
            formats=chosen,
            backtest_file=backtest,
            backtest_run=backtest_run,
            annualization=periods_per_year,
            sign_in=app.home.path,
        )
    if as_json:
        print_json(_as_dict(report))
        return
    m = report.metrics
    console.print(
        f"P&L report of {name}, run {report.data.run.id}, {report.data.first_day} to {report.data.last_day}: "
        f"return {m.total_return:+.2%}, max drawdown {m.max_drawdown:.2%}, {len(report.data.fills)} fills",
        soft_wrap=True,
    )
    if report.forward is not None:
        console.print(f"forward test vs backtest: {report.forward.verdict}", soft_wrap=True)
    for path in report.files.values():
        typer.echo(f"wrote {path}")


@report_app.command("setup")
def setup(
    home: HomeOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="The file to write (default: reports/setup.md in the home).")
    ] = None,
    local_zone: Annotated[
        str | None, typer.Option("--local-zone", help="The server's time zone (default: this machine's).")
    ] = None,
) -> None:
    """Write the setup-and-run instructions of this deployment (Markdown; no secret values, only where they live)."""
    from robohost.services.reports.setup import setup_document
    from robohost.services.scheduling.zones import local_zone as machine_zone
    from robohost.services.scheduling.zones import zone_named

    with opened(home) as app:
        zone = zone_named(local_zone) if local_zone else machine_zone()
        text = setup_document(app.home, app.read, datetime.now(UTC).astimezone(zone), zone)
        target = out if out is not None else app.home.path / REPORTS_DIR / "setup.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {target}")


@report_app.command("verify")
def verify(
    report: Annotated[Path, typer.Argument(help="A report (its .html, .pdf, .csv or .sig.json file).")],
    home: HomeOption = None,
    key: Annotated[
        str | None,
        typer.Option("--key", help="The signer's public key or its SHA256: fingerprint, as you trust it."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a signed report against the database: signature, files, the hash chain and the tables."""
    from robohost.services.reports.track_record import verify_report

    with opened(home) as app:
        result = verify_report(report, app.engine, key)
    if as_json:
        print_json({"ok": result.ok, "checked": list(result.checked), "problems": list(result.problems)})
    else:
        for line in result.checked:
            console.print(f"[green]ok[/green]   {line}", soft_wrap=True)
        for line in result.problems:
            console.print(f"[red]FAIL[/red] {line}", soft_wrap=True)
    if not result.ok:
        raise StateError(f"report {report.name} does not match the database: {result.problems[0]}")
