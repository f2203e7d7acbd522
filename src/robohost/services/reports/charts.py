"""The report's charts as PNG bytes, drawn with matplotlib's object API on its Agg canvas.

No pyplot: figures are plain ``Figure`` objects rendered off screen and dropped after use, so nothing
needs a display, nothing is left open, and the global backend of the process is left alone. Must not
import ``robohost.cli`` or ``robohost.bootstrap``.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

WIDTH_IN = 9.0
HEIGHT_IN = 3.2
DPI = 110
LINE = "#1f4e79"
FILL = "#9dc3e6"
LOSS = "#c0392b"
PAPER = "#d35400"


def _figure(height: float = HEIGHT_IN) -> Figure:
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _money(value: float, _position: object = None) -> str:
    return f"{value:,.0f}"


def equity_chart(equity: pd.Series) -> bytes:
    """The equity at each day's close."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(equity.index, equity.to_numpy(), color=LINE, linewidth=1.2)
    ax.axhline(float(equity.iloc[0]), color="#888888", linewidth=0.8, linestyle=":")
    ax.set_title("Equity at each day's close")
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.grid(alpha=0.3)
    return _png(fig)


def underwater_chart(drawdown: pd.Series) -> bytes:
    """The fall from the running peak (the underwater curve), in percent."""
    fig = _figure(HEIGHT_IN * 0.8)
    ax = fig.add_subplot()
    values = -drawdown.to_numpy() * 100.0
    ax.fill_between(drawdown.index, values, 0.0, color=LOSS, alpha=0.45, linewidth=0)
    ax.plot(drawdown.index, values, color=LOSS, linewidth=0.8)
    ax.set_title("Drawdown from the running peak (underwater curve)")
    ax.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    ax.set_ylim(top=0.0, bottom=min(float(values.min()) * 1.1, -0.1))
    ax.grid(alpha=0.3)
    return _png(fig)


def returns_histogram(returns: pd.Series) -> bytes:
    """The distribution of daily returns, in percent."""
    fig = _figure()
    ax = fig.add_subplot()
    values = returns.to_numpy() * 100.0
    bins = max(10, min(80, int(math.sqrt(len(values))) * 2))
    ax.hist(values, bins=bins, color=FILL, edgecolor=LINE, linewidth=0.5)
    if len(values):
        ax.axvline(float(values.mean()), color=PAPER, linewidth=1.2, label=f"mean {values.mean():.3f} %")
        ax.legend(loc="upper right", frameon=False)
    ax.set_title("Distribution of daily returns")
    ax.xaxis.set_major_formatter(PercentFormatter(decimals=1))
    ax.set_ylabel("days")
    ax.grid(alpha=0.3)
    return _png(fig)


def monthly_heatmap(table: pd.DataFrame) -> bytes:
    """Monthly returns as a coloured table: years down, months across, the year's return on the right."""
    rows = max(len(table), 1)
    fig = _figure(1.0 + 0.32 * rows)
    ax = fig.add_subplot()
    months = table.iloc[:, :12].to_numpy(dtype=np.float64) * 100.0 if len(table) else np.full((1, 12), np.nan)
    limit = float(np.nanmax(np.abs(months))) if np.isfinite(months).any() else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-max(limit, 1e-9), vmax=max(limit, 1e-9))
    grid = np.full((rows, 13), np.nan)
    grid[:, :12] = months
    ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn", norm=norm, aspect="auto")
    values = table.to_numpy(dtype=np.float64)
    for r in range(len(table)):
        for c in range(13):
            value = float(values[r, c])
            if math.isfinite(value):
                weight = "bold" if c == 12 else "normal"
                text = f"{value * 100:.1f}".replace("-0.0", "0.0")
                ax.text(c, r, text, ha="center", va="center", fontsize=7.5, fontweight=weight)
    ax.set_xticks(range(13), [str(c) for c in table.columns] if len(table) else [""] * 13)
    ax.set_yticks(range(len(table)), [str(y) for y in table.index])
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.axvline(11.5, color="#333333", linewidth=1.0)
    ax.set_title("Monthly returns (%)", pad=18)
    return _png(fig)


def band_chart(
    equity: pd.Series, low: np.ndarray, median: np.ndarray, high: np.ndarray, band: tuple[float, float]
) -> bytes:
    """The paper equity drawn inside the bootstrap band of the backtest."""
    fig = _figure()
    ax = fig.add_subplot()
    x = equity.index
    ax.fill_between(x, low, high, color=FILL, alpha=0.55, linewidth=0, label=f"backtest {band[0]:.0f}–{band[1]:.0f} %")
    ax.plot(x, median, color=LINE, linewidth=1.0, linestyle="--", label="backtest median")
    ax.plot(x, equity.to_numpy(), color=PAPER, linewidth=1.6, label="paper")
    ax.set_title("Paper equity inside the backtest's bootstrap band")
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.legend(loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def drawdown_distribution_chart(drawdowns: np.ndarray, paper: float, percentile_95: float) -> bytes:
    """The bootstrapped maximum drawdowns, with the paper's and the 95th percentile marked."""
    fig = _figure(HEIGHT_IN * 0.9)
    ax = fig.add_subplot()
    ax.hist(drawdowns * 100.0, bins=50, color=FILL, edgecolor=LINE, linewidth=0.4)
    ax.axvline(percentile_95 * 100.0, color=LINE, linestyle="--", linewidth=1.0, label="95th percentile")
    ax.axvline(paper * 100.0, color=PAPER, linewidth=1.8, label=f"paper {paper:.2%}")
    ax.set_title("Maximum drawdown: paper versus bootstrapped backtest paths of the same length")
    ax.xaxis.set_major_formatter(PercentFormatter(decimals=1))
    ax.set_ylabel("paths")
    ax.legend(loc="upper right", frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)
