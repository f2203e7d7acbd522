"""The P&L report of a real run, looked at as a person would: rendered PDF pages, their text, the HTML, the CSV.

Runs on SQLite and PostgreSQL (``db_url``). The PDF is rendered with poppler (``pdftoppm``, ``pdftotext``).
"""

from __future__ import annotations

import base64
import csv
import io
import re
import subprocess
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg

from robohost.adapters.db.journal import SqlJournal
from robohost.adapters.feeds.synthetic import synthetic_bars
from robohost.engine.records import Batch, EventRecord
from robohost.examples.sma_cross import SmaCross
from robohost.services.reports import metrics as m
from robohost.services.reports.data import gather
from robohost.services.reports.document import pnl_document
from robohost.services.reports.html import render_html
from robohost.services.reports.operations import operations_record
from robohost.services.reports.pnl import pnl_report
from support import ROBOT, SYMBOL, RobotRun, Scripted, bars, buy, database, fail, plan, run_robot
from system import need_program

CHART_TITLES = ("Equity curve", "Underwater curve", "Daily returns distribution", "Monthly returns")
GENERATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def market() -> pd.DataFrame:
    """A year and a half of seeded daily bars of two symbols, liquid enough for 100 shares a fill."""
    frames = [
        synthetic_bars(540, symbol=s, seed=seed, start="2023-01-02", interval="1D", volatility=0.02)
        for s, seed in (("AAA", 3), ("BBB", 4))
    ]
    both = pd.concat(frames, ignore_index=True)
    both["volume"] *= 100
    return both


def trading_run(db_url: str) -> RobotRun:
    """The example SMA robot on ``market()`` with fees and slippage."""
    return run_robot(
        db_url,
        SmaCross,
        market(),
        params={"fast": 3, "slow": 12, "qty": 100},
        fills={"slippage_bps": 5.0},
        fees={"per_share": 0.01, "minimum": 1.0},
    )


# -- looking at the PDF --------------------------------------------------------------------------
def words_by_page(pdf: Path) -> list[list[tuple[float, float, float, float, str]]]:
    """Every word of every page with its box in points (xMin, yMin, xMax, yMax), from ``pdftotext -bbox``."""
    out = subprocess.run(
        [need_program("pdftotext", "poppler-utils"), "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = []
    for page in out.split("<page ")[1:]:
        words = re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page)
        pages.append([(float(a), float(b), float(c), float(d), w) for a, b, c, d, w in words])
    return pages


def find_heading(pages: list[list[tuple[float, float, float, float, str]]], title: str) -> tuple[int, float]:
    """The page (0-based) and the bottom (points) of the line that reads ``title``."""
    first, *rest = title.split()
    for number, words in enumerate(pages):
        for i, (_, _, _, y_max, word) in enumerate(words):
            if word == first and [w[4] for w in words[i + 1 : i + 1 + len(rest)]] == rest:
                return number, y_max
    raise AssertionError(f"no heading {title!r} in the PDF")


def render_pages(pdf: Path, folder: Path, dpi: int = 50) -> list[Path]:
    """The PDF's pages as PNG files."""
    subprocess.run(
        [need_program("pdftoppm", "poppler-utils"), "-r", str(dpi), "-png", str(pdf), str(folder / "page")], check=True
    )
    return sorted(folder.glob("page-*.png"))


def ink(region: np.ndarray) -> tuple[float, float]:
    """The fraction of non-white pixels of an RGB(A) region, and the standard deviation of its grey levels."""
    grey = region[..., :3].mean(axis=2)
    return float((grey < 0.95).mean()), float(grey.std())


def pdf_text(pdf: Path) -> str:
    """The PDF's text, laid out as on the page."""
    return subprocess.run(
        [need_program("pdftotext", "poppler-utils"), "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def value_of(text: str, label: str) -> str:
    """The value printed on the summary line ``label``."""
    found = re.search(rf"^\s*{re.escape(label)}\s+(\S.*?)\s*$", text, re.MULTILINE)
    assert found, f"no line {label!r} in the PDF text"
    return found.group(1)


# -- the tests -----------------------------------------------------------------------------------
def test_the_report_shows_the_database_figures(db_url: str, tmp_path: Path) -> None:
    run = trading_run(db_url)
    read = run.read
    equity = read.equity(ROBOT)
    fills = read.fills(ROBOT)
    summary = read.latest_run(ROBOT).summary
    assert len(fills) > 20 and summary is not None

    report = pnl_report(read, ROBOT, tmp_path / "reports", generated_at=GENERATED)

    first, last = report.data.first_day, report.data.last_day
    assert set(report.files) == {"html", "pdf", "csv"}
    assert report.files["pdf"] == tmp_path / "reports" / f"pnl-{ROBOT}-{first}-{last}.pdf"
    assert report.files["csv"].name == f"trades-{ROBOT}-{first}-{last}.csv"
    assert all(path.stat().st_size > 0 for path in report.files.values())

    # the numbers in the PDF's text are the database's
    text = pdf_text(report.files["pdf"])
    assert value_of(text, "Ending equity") == f"{equity[-1].equity:,.2f}" == f"{summary['final_equity']:,.2f}"
    assert value_of(text, "Starting equity") == f"{summary['starting_equity']:,.2f}"
    assert value_of(text, "Total return") == f"{summary['total_return']:+.2%}"
    assert value_of(text, "Fills") == str(len(fills)) == str(summary["fills"])
    assert value_of(text, "Fees paid") == f"{sum(f.fee for f in fills):,.2f}"
    assert "no scheduler history yet" in text
    assert "No backtest given" in text

    # the pages exist, and every chart's region below its title holds a drawing
    pages = render_pages(report.files["pdf"], tmp_path)
    assert len(pages) >= 3
    words = words_by_page(report.files["pdf"])
    assert len(words) == len(pages)
    for title in CHART_TITLES:
        number, bottom = find_heading(words, title)
        picture = mpimg.imread(pages[number])
        scale = picture.shape[0] / 841.89  # pixels per point of an A4 page
        top = int((bottom + 4) * scale)
        region = picture[top : top + int(110 * scale), int(45 * scale) : int(550 * scale)]
        covered, spread = ink(region)
        assert covered > 0.03 and spread > 0.05, (title, covered, spread)
    margin = mpimg.imread(pages[0])[:, : int(30 * picture.shape[0] / 841.89)]  # the left margin: blank
    assert ink(margin)[0] == 0.0

    # the trades CSV: one row per trade, P&L adding up with the database's realised P&L and fees
    with report.files["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(report.data.trades) > 5
    closed = [Decimal(r["pnl"]) for r in rows if r["exit_time"]]
    open_fees = sum((Decimal(r["fees"]) for r in rows if not r["exit_time"]), Decimal(0))
    realized = sum((f.realized_pnl for f in fills), Decimal(0))
    assert sum(closed, Decimal(0)) - open_fees == realized - sum((f.fee for f in fills), Decimal(0))
    assert report.metrics.trades.trades == len(closed)
    held = {p.symbol: float(p.qty) for p in read.positions(run.run_id) if p.qty}
    assert report.data.open_positions == held
    assert len([r for r in rows if not r["exit_time"]]) == len(held)  # one open trade per symbol still held


def test_the_html_is_self_contained_and_has_the_figures(tmp_path: Path) -> None:
    backtest = tmp_path / "backtest.csv"
    returns = np.random.default_rng(2).normal(0.0005, 0.01, 300)
    days = pd.bdate_range("2020-01-01", periods=300).strftime("%Y-%m-%d")
    pd.DataFrame({"date": days, "return": returns}).to_csv(backtest, index=False)
    run = trading_run(f"sqlite:///{tmp_path / 'r.db'}")
    report = pnl_report(run.read, ROBOT, tmp_path, formats=("html",), backtest_file=backtest)
    assert set(report.files) == {"html", "csv"}
    assert report.forward is not None and report.forward.backtest_days == 300
    html = report.files["html"].read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.IGNORECASE)
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(CHART_TITLES) + 2  # and the bootstrap band and the drawdown distribution
    for encoded in images:
        picture = mpimg.imread(io.BytesIO(base64.b64decode(encoded)), format="png")
        assert picture.shape[1] > 500 and ink(picture)[0] > 0.03
    for title in (*CHART_TITLES, "Per symbol", "Operations record", "Appendix: trades", "AAA", "BBB"):
        assert title in html
    assert f"{report.metrics.ending_equity:,.2f}" in html
    assert f"Verdict: {report.forward.verdict}" in html


def test_a_period_starts_from_the_equity_before_it(db_url: str) -> None:
    run = trading_run(db_url)
    whole = run.read.equity(ROBOT)
    data = gather(run.read, ROBOT, start=date(2023, 6, 1), end=date(2024, 1, 1))
    assert (data.first_day, data.last_day) == (date(2023, 6, 1), date(2023, 12, 31))
    # the bars are stamped at midnight UTC, so the point at 2023-06-01 00:00 closes May 31st
    before = [p for p in whole if p.ts <= pd.Timestamp("2023-06-01", tz="UTC").value]
    inside = [
        p
        for p in whole
        if pd.Timestamp("2023-06-01", tz="UTC").value < p.ts <= pd.Timestamp("2024-01-01", tz="UTC").value
    ]
    assert data.equity.iloc[0] == before[-1].equity
    assert list(data.equity.iloc[1:]) == [p.equity for p in inside]
    assert len(data.fills) == sum(1 for f in run.read.fills(ROBOT) if data.start_ns <= f.ts < data.end_ns) > 0
    metrics = m.performance(data.equity, np.array([]), data.in_market, 0.0, 252)
    assert metrics.total_return == pytest.approx(inside[-1].equity / before[-1].equity - 1.0, rel=1e-12)


def test_the_operations_record_counts_what_happened(db_url: str, tmp_path: Path) -> None:
    rows = [(100.0, 101.0, 99.0, 100.0, 1e6)] * 8
    rows[2] = (100.0, 101.0, 99.0, float("nan"), 1e6)  # refused by validation
    run = run_robot(
        db_url,
        Scripted,
        bars(SYMBOL, rows),
        params=plan(buy(0, 100), fail(1, "oops"), buy(3, 1)),
        on_strategy_error="skip",
        risk={"max_order_notional": 500.0, "max_daily_loss": 0.5},  # 100 x 100 is refused; the first fee halts
        fees={"minimum": 1.0},
    )
    assert run.outcome.status == "halted"
    now = pd.Timestamp("2024-01-03 12:00", tz="UTC").value
    SqlJournal(database(db_url)).commit(
        Batch(run.run_id, events=[EventRecord(run.run_id, 1, now, "feed_degraded", {"silent_s": 130.0})])
    )
    start, end = pd.Timestamp("2024-01-01", tz="UTC").value, pd.Timestamp("2024-02-01", tz="UTC").value

    ops = operations_record(run.read, ROBOT, start, end, include={run.run_id})
    assert [(r.id, r.status) for r in ops.runs] == [(run.run_id, "halted")]
    assert "daily loss" in (ops.runs[0].halt_reason or "")
    assert (ops.halts, ops.feed_outages, ops.errors) == (1, 1, 1)
    assert (ops.risk_rejections, ops.risk_halts, ops.rejected_data) == (1, 1, 1)
    assert ops.robot_status == "halted"
    assert ops.scheduled_sessions is None and ops.backups is None
    kinds = [(i.kind, i.what) for i in ops.incidents]
    assert [i.ts for i in ops.incidents] == sorted(i.ts for i in ops.incidents)
    assert sorted(kinds) == [("error", "strategy_error"), ("feed", "feed_degraded"), ("halt", "halted")]

    # a period without them: nothing counted (the run is listed, being the report's)
    later = operations_record(run.read, ROBOT, end, end + 10**15, include={run.run_id})
    assert (later.halts, later.feed_outages, later.errors, later.risk_rejections, later.rejected_data) == (0,) * 5
    assert operations_record(run.read, ROBOT, end, end + 10**15).runs == ()  # its wall-clock time is not then

    data = gather(run.read, ROBOT)
    html = render_html(
        pnl_document(data, m.performance(data.equity, np.array([]), data.in_market, 0.0, 252), None, GENERATED)
    )
    for text in ("no scheduler history yet", "no backup history yet", "feed_degraded", "silent_s=130.0", "oops"):
        assert text in html
