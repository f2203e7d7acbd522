"""The neutral report model: sections of paragraphs, tables and figures, with every value already formatted.

``pnl_document`` turns the gathered data, the metrics, the forward test and the operations record into a
``Document``; the HTML and PDF renderers only lay it out, so both show exactly the same content. Must not
import ``robohost.cli`` or ``robohost.bootstrap``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import ClassVar

import pandas as pd

from robohost.services.reports import charts
from robohost.services.reports.data import ReportData
from robohost.services.reports.forward import ALPHA, BAND, ForwardTest
from robohost.services.reports.metrics import PerformanceMetrics, daily_returns, drawdowns, monthly_returns
from robohost.services.reports.operations import OperationsRecord
from robohost.services.reports.trades import Trade

MAX_TRADE_ROWS = 5_000
"""Trades listed in the appendix of the HTML and PDF; the CSV always holds all of them."""
NA = "n/a"


@dataclass(frozen=True)
class Paragraph:
    """A paragraph; ``style`` is "body", "note" (small print) or "verdict"."""

    text: str
    style: str = "body"
    kind: ClassVar[str] = "paragraph"


@dataclass(frozen=True)
class Table:
    """A table of text cells; ``numeric`` marks the right-aligned columns."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()
    title: str = ""
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class Chart:
    """A chart as PNG bytes, with a text alternative."""

    title: str
    png: bytes
    alt: str
    kind: ClassVar[str] = "chart"


Block = Paragraph | Table | Chart


@dataclass(frozen=True)
class Section:
    """A titled part of the report."""

    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Document:
    """A whole report, ready for any renderer."""

    title: str
    subtitle: str
    sections: tuple[Section, ...]
    footer: str = ""
    meta: dict[str, str] = field(default_factory=dict)


# -- formatting ----------------------------------------------------------------------------------
def money(value: float | Decimal | None) -> str:
    """1,234.56 (n/a for None or NaN)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NA
    return f"{float(value):,.2f}"


def pct(value: float, signed: bool = False) -> str:
    """A fraction as a percentage with two decimals (+1.23% when ``signed``)."""
    if not math.isfinite(value):
        return NA
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def ratio(value: float, digits: int = 2) -> str:
    """A plain number with ``digits`` decimals."""
    return f"{value:.{digits}f}" if math.isfinite(value) else NA


def quantity(value: float) -> str:
    """A quantity without needless decimals."""
    return f"{value:,.8f}".rstrip("0").rstrip(".")


def local_time(ts: int | None, timezone: str) -> str:
    """ns since the epoch as 'YYYY-MM-DD HH:MM' in ``timezone`` (empty for None)."""
    if ts is None:
        return ""
    return pd.Timestamp(ts, unit="ns", tz="UTC").tz_convert(timezone).strftime("%Y-%m-%d %H:%M")


def utc_time(ts: int | None) -> str:
    """ns since the epoch as ISO 8601 UTC, to the second (empty for None)."""
    if ts is None:
        return ""
    return pd.Timestamp(ts, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(ns: int | None) -> str:
    """A holding time: '12d 3h', '3h 20m', '45s'."""
    if ns is None:
        return ""
    seconds = ns // 1_000_000_000
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


# -- the document ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrackRecord:
    """The run's hash chain as the report attests it, and the key that signs the report."""

    chain_length: int
    chain_head: str
    key_fingerprint: str
    problems: tuple[str, ...] = ()


def pnl_document(
    data: ReportData,
    metrics: PerformanceMetrics,
    forward: ForwardTest | None,
    generated_at: datetime,
    track: TrackRecord | None = None,
) -> Document:
    """Build the P&L report of ``data`` (with its track record's chain head when ``track`` is given)."""
    period = f"{data.first_day} to {data.last_day}"
    return Document(
        title=f"P&L report: {data.robot}",
        subtitle=(
            f"Paper trading from {period} · run {data.run.id} ({data.run.mode}, {data.run.status}) · "
            f"strategy {data.run.strategy}"
        ),
        sections=(
            _summary(data, metrics),
            _charts(data),
            _per_symbol(data),
            _forward(forward),
            _operations(data.operations, data.timezone),
            *((_track_record(track, data),) if track is not None else ()),
            _trades_appendix(data),
        ),
        footer=f"robohost · generated {generated_at.strftime('%Y-%m-%d %H:%M:%S %Z')} · times in {data.timezone}",
        meta={"robot": data.robot, "run": data.run.id, "period": period},
    )


def _summary(data: ReportData, m: PerformanceMetrics) -> Section:
    closed = [t for t in data.trades if t.pnl is not None]
    still_open = len(data.trades) - len(closed)
    t = m.trades
    spell = m.drawdown
    if spell is None:
        dd_time = "no drawdown"
    else:
        end = f"recovered {spell.recovery.date()}" if spell.recovery is not None else "not recovered by the end"
        dd_time = f"{spell.days} days (peak {spell.peak.date()}, trough {spell.trough.date()}, {end})"
    market = "trading days" if m.periods_per_year < 365 else "calendar days"
    rows = (
        ("Period", f"{data.first_day} to {data.last_day} ({m.days} daily returns)"),
        ("Starting equity", money(m.starting_equity)),
        ("Ending equity", money(m.ending_equity)),
        ("Total return", pct(m.total_return, signed=True)),
        ("CAGR", pct(m.cagr, signed=True)),
        ("Annualised volatility", pct(m.annual_volatility)),
        ("Sharpe ratio", ratio(m.sharpe)),
        ("Sortino ratio", ratio(m.sortino)),
        ("Calmar ratio", ratio(m.calmar)),
        ("Maximum drawdown", pct(m.max_drawdown)),
        ("Maximum drawdown duration", dd_time),
        ("Trades closed", f"{t.trades}" + (f" (+{still_open} open at the end)" if still_open else "")),
        ("Win rate", pct(t.win_rate)),
        ("Profit factor", ratio(t.profit_factor)),
        ("Average win / average loss", f"{money(t.average_win)} / {money(t.average_loss)}"),
        ("Exposure (days ending in the market)", pct(m.exposure)),
        ("Turnover (traded notional / mean equity, per year)", f"{ratio(m.turnover)}×"),
        ("Fills", f"{len(data.fills)}"),
        ("Fees paid", money(data.fees)),
        ("Slippage paid (estimated)", money(data.slippage.total)),
        ("Annualisation", f"{m.periods_per_year} periods a year ({market}); risk-free rate 0"),
    )
    notes = (
        Paragraph(
            "Returns are daily: the equity at each day's close over the previous close; trade figures use each "
            "closed trade's realised P&L net of its fees. The README's \"Reports\" section defines every figure.",
            "note",
        ),
        Paragraph(f"Slippage: {data.slippage.method}", "note"),
    )
    return Section("summary", "Summary", (Table(("Figure", "Value"), rows, (False, True)), *notes))


def _charts(data: ReportData) -> Section:
    returns = daily_returns(data.equity)
    blocks: list[Block] = [
        Chart("Equity curve", charts.equity_chart(data.equity), "The equity at each day's close."),
        Chart(
            "Underwater curve",
            charts.underwater_chart(drawdowns(data.equity)),
            "The fall of the equity from its running peak, in percent.",
        ),
        Chart(
            "Daily returns distribution",
            charts.returns_histogram(returns),
            "A histogram of the daily returns, in percent.",
        ),
        Chart(
            "Monthly returns",
            charts.monthly_heatmap(monthly_returns(data.equity)),
            "Each month's compounded return in percent, years down and months across, the year's on the right.",
        ),
    ]
    return Section("charts", "Charts", tuple(blocks))


def _per_symbol(data: ReportData) -> Section:
    fees: dict[str, Decimal] = defaultdict(Decimal)
    notional: dict[str, float] = defaultdict(float)
    fills: dict[str, int] = defaultdict(int)
    for f in data.fills:
        fees[f.symbol] += f.fee
        notional[f.symbol] += abs(f.qty * f.price)
        fills[f.symbol] += 1
    trades: dict[str, list[Trade]] = defaultdict(list)
    for trade in data.trades:
        trades[trade.symbol].append(trade)
    rows = []
    for symbol in sorted(set(fills) | set(trades) | set(data.open_positions)):
        closed = [t.pnl for t in trades[symbol] if t.pnl is not None]
        wins = sum(1 for p in closed if p > 0)
        open_qty = data.open_positions.get(symbol, 0.0)
        rows.append(
            (
                symbol,
                str(len(closed)),
                pct(wins / len(closed)) if closed else NA,
                money(sum(closed, Decimal(0))),
                str(fills[symbol]),
                money(fees[symbol]),
                money(data.slippage.by_symbol.get(symbol, 0.0)),
                money(notional[symbol]),
                quantity(open_qty) if open_qty else "",
            )
        )
    header = ("Symbol", "Trades", "Win rate", "Net P&L", "Fills", "Fees", "Slippage (est.)", "Notional", "Open")
    if not rows:
        return Section("symbols", "Per symbol", (Paragraph("No fills and no trades in the period."),))
    table = Table(header, tuple(rows), (False, *([True] * 8)))
    note = Paragraph(
        "Net P&L sums the trades closed in the period (realised P&L minus fees); Open is the quantity "
        "still held at the end (negative: short).",
        "note",
    )
    return Section("symbols", "Per symbol", (table, note))


def _forward(ft: ForwardTest | None) -> Section:
    title = "Forward test versus backtest"
    if ft is None:
        text = (
            "No backtest given: pass --backtest FILE (daily returns or trades) or --backtest-run RUN_ID to "
            "compare the paper period with the robot's backtest."
        )
        return Section("forward", title, (Paragraph(text, "note"),))
    rows = (
        ("Backtest", ft.backtest),
        ("Daily returns (paper / backtest)", f"{ft.days} / {ft.backtest_days}"),
        (
            "Sharpe per day (paper / backtest)",
            f"{ratio(ft.sharpe, 4)} / {ratio(ft.backtest_sharpe, 4)}",
        ),
        (
            "Sharpe annualised (paper / backtest)",
            f"{ratio(ft.annual_sharpe)} / {ratio(ft.annual_backtest_sharpe)}",
        ),
        ("Skewness / kurtosis of paper returns", f"{ratio(ft.skewness, 3)} / {ratio(ft.kurtosis, 3)}"),
        ("PSR against the backtest Sharpe", pct(ft.psr)),
        ("PSR against zero", pct(ft.psr_zero)),
        (
            "Minimum track record length (backtest Sharpe vs 0, 95 %)",
            f"{ft.min_trl:,.0f} days" if math.isfinite(ft.min_trl) else "infinite (no positive backtest Sharpe)",
        ),
        ("Paper maximum drawdown", pct(ft.max_drawdown)),
        ("Percentile among bootstrapped drawdowns", f"{ft.drawdown_percentile:.1f}"),
        ("Bootstrapped drawdown, 95th percentile", pct(ft.drawdown_p95)),
        (
            f"Final equity vs band ({BAND[0]:.0f}–{BAND[1]:.0f} %)",
            f"{money(float(ft.equity.iloc[-1]))} vs {money(float(ft.band_low[-1]))}–{money(float(ft.band_high[-1]))}",
        ),
        ("Closes outside the band", f"{ft.days_outside_band} of {len(ft.equity)}"),
        ("Bootstrap", f"{ft.paths:,} paths, seed {ft.seed}, daily returns drawn with replacement"),
    )
    rule = (
        f"Rule: inconsistent when the paper Sharpe is significantly below the backtest's (PSR < {ALPHA:.0%}) and "
        f"the path agrees (maximum drawdown beyond the bootstrap's {BAND[1]:.0f}th percentile, or final equity "
        f"below the band's {BAND[0]:.0f} % line); inconclusive when only one of these shows or the record is "
        "shorter than the minimum track record length; consistent otherwise."
    )
    blocks: tuple[Block, ...] = (
        Paragraph(f"Verdict: {ft.verdict}", "verdict"),
        *(Paragraph(f"• {reason}") for reason in ft.reasons),
        Table(("Figure", "Value"), rows, (False, True)),
        Paragraph(rule, "note"),
        Chart(
            "Bootstrap band",
            charts.band_chart(ft.equity, ft.band_low, ft.band_median, ft.band_high, BAND),
            "The paper equity (line) inside the band of equity paths bootstrapped from the backtest's returns.",
        ),
        Chart(
            "Drawdown distribution",
            charts.drawdown_distribution_chart(ft.bootstrap_drawdowns, ft.max_drawdown, ft.drawdown_p95),
            "A histogram of the bootstrapped maximum drawdowns, with the paper's marked.",
        ),
    )
    return Section("forward", title, blocks)


def _operations(ops: OperationsRecord, timezone: str) -> Section:
    state = ops.robot_status or "never run"
    blocks: list[Block] = [
        Paragraph(f"Robot state now: {state}" + (f" ({ops.robot_reason})" if ops.robot_reason else "")),
        Table(
            ("Run", "Mode", "Status", "Started (UTC)", "Ended (UTC)", "Events", "Halt reason"),
            tuple(
                (
                    r.id,
                    r.mode,
                    r.status,
                    utc_time(r.started_at),
                    utc_time(r.ended_at),
                    f"{r.events:,}",
                    r.halt_reason or "",
                )
                for r in ops.runs
            ),
            (False, False, False, False, False, True, False),
            title="Runs",
        ),
        Table(
            ("Halts", "Feed outages", "Errors", "Risk rejections", "Risk halts", "Rejected market data"),
            (
                tuple(
                    str(n)
                    for n in (
                        ops.halts,
                        ops.feed_outages,
                        ops.errors,
                        ops.risk_rejections,
                        ops.risk_halts,
                        ops.rejected_data,
                    )
                ),
            ),
            (True,) * 6,
            title="Counts in the period",
        ),
    ]
    if ops.incidents:
        blocks.append(
            Table(
                ("Time", "Kind", "Run", "What", "Detail"),
                tuple((local_time(i.ts, timezone), i.kind, i.run_id, i.what, i.detail) for i in ops.incidents),
                title="Incidents",
            )
        )
    else:
        blocks.append(Paragraph("No incidents in the period: no halt, no feed outage, no error."))
    if ops.scheduled_sessions is None:
        blocks.append(Paragraph("Scheduler: no scheduler history yet (scheduled and missed sessions, uptime)."))
    else:
        uptime = pct(ops.uptime) if ops.uptime is not None else NA
        blocks.append(
            Paragraph(
                f"Scheduler: {ops.scheduled_sessions} sessions scheduled, {ops.sessions_run} run, "
                f"{ops.missed_sessions} missed; uptime {uptime}."
            )
        )
    if ops.backups is None:
        blocks.append(Paragraph("Backups: no backup history yet."))
    else:
        blocks.append(Paragraph(f"Backups: {ops.backups}, the last at {utc_time(ops.last_backup_at) or NA} UTC."))
    return Section("operations", "Operations record", tuple(blocks))


def _track_record(track: TrackRecord, data: ReportData) -> Section:
    blocks: list[Paragraph | Table] = [
        Paragraph(
            f"Every order and fill line of run {data.run.id} is hash-chained in the trading database (each line's "
            "SHA-256 commits to the one before). At the time of this report the chain held "
            f"{track.chain_length} lines and ended in:"
        ),
        Paragraph(track.chain_head, "mono"),
        Paragraph(
            f"The report is signed with the ed25519 key {track.key_fingerprint} (the signature and the files' "
            "SHA-256 are in the .sig.json file beside it). 'robohost report verify REPORT' recomputes the chain "
            "from the database and checks the signature: any later edit of an order or a fill is found."
        ),
    ]
    if track.problems:
        blocks.append(Paragraph("The database already disagreed with its chain: " + "; ".join(track.problems), "note"))
    return Section("track", "Track record", tuple(blocks))


def _trades_appendix(data: ReportData) -> Section:
    trades = data.trades
    shown = trades[:MAX_TRADE_ROWS]
    rows = tuple(
        (
            str(i),
            t.symbol,
            t.side,
            local_time(t.entry_ts, data.timezone),
            local_time(t.exit_ts, data.timezone) or "open",
            quantity(t.qty),
            f"{t.entry_price:,.4f}",
            f"{t.exit_price:,.4f}" if t.exit_price is not None else "",
            money(t.pnl) if t.pnl is not None else "",
            duration(t.holding_ns),
        )
        for i, t in enumerate(shown, start=1)
    )
    header = ("#", "Symbol", "Side", "Entry", "Exit", "Qty", "Entry price", "Exit price", "P&L", "Held")
    numeric = (True, False, False, False, False, True, True, True, True, True)
    blocks: list[Block] = [
        Paragraph(
            f"{len(trades)} trades: those closed in the period, then those still open at its end. P&L is the "
            f"realised P&L net of the trade's fees; times in {data.timezone}. The same list is in the CSV file."
        )
    ]
    if len(trades) > len(shown):
        blocks.append(Paragraph(f"Showing the first {len(shown):,} of {len(trades):,}; the CSV has them all.", "note"))
    blocks.append(Table(header, rows, numeric) if rows else Paragraph("No trades in the period."))
    return Section("trades", "Appendix: trades", tuple(blocks))
