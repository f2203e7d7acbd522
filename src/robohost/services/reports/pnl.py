"""The paper-trading P&L report: gather, compute, compare with a backtest, render, write the files.

``pnl_report`` writes ``pnl-<robot>-<first day>-<last day>.html`` and ``.pdf`` and
``trades-<robot>-<first day>-<last day>.csv`` into the output folder (the CLI passes the home's
``reports/``) and returns what it wrote with the figures behind it. Must not import ``robohost.cli`` or
``robohost.bootstrap``.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from robohost import __version__
from robohost.adapters.db.queries import ReadModel
from robohost.errors import ConfigError, StateError
from robohost.services.reports.data import ReportData, daily_equity, gather
from robohost.services.reports.document import TrackRecord, pnl_document
from robohost.services.reports.forward import Backtest, ForwardTest, backtest_from_equity, compare, load_backtest_csv
from robohost.services.reports.html import render_html
from robohost.services.reports.metrics import PerformanceMetrics, performance
from robohost.services.reports.pdf import render_pdf
from robohost.services.reports.track_record import (
    SIGNATURE_SUFFIX,
    chain_state,
    fingerprint,
    public_key_text,
    sign_report,
    signing_key,
)
from robohost.services.reports.trades import Trade

FORMATS = ("html", "pdf")
TRADE_COLUMNS = (
    "symbol",
    "side",
    "entry_time",
    "exit_time",
    "qty",
    "entry_price",
    "exit_price",
    "pnl",
    "fees",
    "holding_days",
)


@dataclass(frozen=True)
class PnlReport:
    """What ``pnl_report`` wrote (by kind: "html", "pdf", "csv") and the figures behind it."""

    files: dict[str, Path]
    data: ReportData
    metrics: PerformanceMetrics
    forward: ForwardTest | None


def parse_formats(text: str) -> tuple[str, ...]:
    """'html,pdf' -> ('html', 'pdf'); ConfigError for anything else."""
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ConfigError(f"--format: expected html, pdf or html,pdf, got {text!r}")
    return chosen


def run_backtest(read: ReadModel, run_id: str) -> Backtest:
    """The daily returns of a robohost run (a replay of the robot's history) in this database."""
    run = read.run(run_id)
    if run is None:
        raise StateError(f"--backtest-run: no run {run_id!r} in this database: see 'robohost status'")
    points = read.equity(run.robot, run.id)
    if not points:
        raise StateError(f"--backtest-run: run {run_id} has no equity points")
    closes = daily_equity(points, str(run.config.get("timezone") or "UTC"))
    start = pd.Series([float(run.starting_cash)], index=pd.DatetimeIndex([closes.index[0] - timedelta(days=1)]))
    return backtest_from_equity(f"run {run.id} of robot {run.robot}", pd.concat([start, closes]))


def write_trades_csv(trades: Collection[Trade], path: Path) -> None:
    """Write the trades, one row each (times ISO 8601 UTC; empty exit fields while open)."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(TRADE_COLUMNS)
        for t in trades:
            holding = t.holding_ns
            writer.writerow(
                (
                    t.symbol,
                    t.side,
                    _iso(t.entry_ts),
                    _iso(t.exit_ts),
                    repr(t.qty),
                    f"{t.entry_price:.10g}",
                    "" if t.exit_price is None else f"{t.exit_price:.10g}",
                    "" if t.pnl is None else format(t.pnl.normalize(), "f"),
                    format(t.fees.normalize(), "f"),
                    "" if holding is None else f"{holding / 86_400e9:.6f}",
                )
            )


def _iso(ts: int | None) -> str:
    """ns since the epoch as ISO 8601 UTC, to the nanosecond when needed (empty for None)."""
    return "" if ts is None else pd.Timestamp(ts, unit="ns", tz="UTC").isoformat().replace("+00:00", "Z")


def pnl_report(
    read: ReadModel,
    robot: str,
    out_dir: Path,
    *,
    run_id: str | None = None,
    start: date | None = None,
    end: date | None = None,
    formats: Collection[str] = FORMATS,
    backtest_file: Path | None = None,
    backtest_run: str | None = None,
    annualization: int | None = None,
    generated_at: datetime | None = None,
    sign_in: Path | None = None,
) -> PnlReport:
    """Build the P&L report of one run of ``robot`` over the days ``start`` <= day < ``end`` and write it.

    ``sign_in``: the robot home whose key signs the report (``pnl-….sig.json``, see ``track_record``).
    """
    if backtest_file is not None and backtest_run is not None:
        raise ConfigError("give --backtest FILE or --backtest-run RUN_ID, not both")
    if start is not None and end is not None and end <= start:
        raise ConfigError(f"--to ({end}) must be after --from ({start})")
    if annualization is not None and annualization <= 0:
        raise ConfigError(f"--periods-per-year must be positive, got {annualization}")
    data = gather(read, robot, run_id, start, end, annualization)
    closed = np.array([float(t.pnl) for t in data.trades if t.pnl is not None], dtype=np.float64)
    metrics = performance(data.equity, closed, data.in_market, data.traded_notional, data.periods_per_year)
    backtest: Backtest | None = None
    if backtest_file is not None:
        backtest = load_backtest_csv(backtest_file, float(data.equity.iloc[0]), data.periods_per_year, data.timezone)
    elif backtest_run is not None:
        backtest = run_backtest(read, backtest_run)
    forward = compare(data.equity, backtest, data.periods_per_year) if backtest is not None else None

    track: TrackRecord | None = None
    if sign_in is not None:
        state = chain_state(read.engine, data.run.id)
        key = public_key_text(signing_key(sign_in).public_key())
        track = TrackRecord(state.length, state.head, fingerprint(key), state.problems)
    moment = generated_at or datetime.now(UTC)
    doc = pnl_document(data, metrics, forward, moment, track)
    stem = f"{robot}-{data.first_day}-{data.last_day}"
    files: dict[str, Path] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if "html" in formats:
            files["html"] = out_dir / f"pnl-{stem}.html"
            files["html"].write_text(render_html(doc), encoding="utf-8")
        if "pdf" in formats:
            files["pdf"] = out_dir / f"pnl-{stem}.pdf"
            files["pdf"].write_bytes(render_pdf(doc))
        files["csv"] = out_dir / f"trades-{stem}.csv"
        write_trades_csv(data.trades, files["csv"])
        if track is not None and sign_in is not None:
            attestation = {
                "robot": robot,
                "run_id": data.run.id,
                "period": [str(data.first_day), str(data.last_day)],
                "chain_length": track.chain_length,
                "chain_head": track.chain_head,
                "fills": len(data.fills),
                "final_equity": repr(float(data.equity.iloc[-1])),
                "generated_at": moment.isoformat(),
                "robohost": __version__,
            }
            files["signature"] = sign_report(
                sign_in, attestation, dict(files), out_dir / f"pnl-{stem}{SIGNATURE_SUFFIX}"
            )
    except OSError as exc:
        raise ConfigError(f"cannot write the report into {out_dir}: {exc.strerror or exc}") from None
    return PnlReport(files, data, metrics, forward)
