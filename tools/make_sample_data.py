"""Build src/robohost/sample_data/stocks_daily.csv.gz from the public-domain bokeh_sampledata stocks.

Reads ``bokeh_sampledata/_data/stocks.csv.gz`` (Quandl WIKI daily prices, 2000-2013) from the
installed package, or from its wheel fetched with ``pip download`` into a temporary directory,
keeps AAPL, GOOG, IBM and MSFT, adjusts prices and volumes by the source's adjusted close and
writes ``symbol,date,open,high,low,close,volume`` sorted by symbol then date, gzipped with a
fixed header so that a rerun produces the same bytes. Run: ``.venv/bin/python tools/make_sample_data.py``.
Imports nothing from robohost.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

SOURCE_MEMBER = "bokeh_sampledata/_data/stocks.csv.gz"
SOURCE_PACKAGE = "bokeh_sampledata==2026.1"  # downloaded when the package is not installed
SOURCE_SHA256 = "5abadf99b2d394f920120a27de6f0df129859d71d4cfb0bf661bcc99446ab1fd"  # its stocks.csv.gz
TICKERS = ("AAPL", "GOOG", "IBM", "MSFT")
OUTPUT = Path(__file__).resolve().parent.parent / "src" / "robohost" / "sample_data" / "stocks_daily.csv.gz"


def source_bytes() -> bytes:
    """Return the bytes of stocks.csv.gz from the installed package or a downloaded wheel."""
    try:
        return importlib.resources.files("bokeh_sampledata").joinpath("_data", "stocks.csv.gz").read_bytes()
    except ModuleNotFoundError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp]
        subprocess.run([*command, SOURCE_PACKAGE], check=True)
        wheel = next(Path(tmp).glob("bokeh_sampledata-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(SOURCE_MEMBER)


def adjust(raw: pd.DataFrame) -> pd.DataFrame:
    """Scale prices by adj_close/close (4 decimals) and volume by its inverse, for the four tickers."""
    raw = raw[raw["Ticker"].isin(TICKERS)]
    factor = raw["Adj Close"] / raw["Close"]
    out = pd.DataFrame({"symbol": raw["Ticker"], "date": raw["Date"]})
    for column in ("Open", "High", "Low", "Close"):
        out[column.lower()] = (raw[column] * factor).round(4)
    out["volume"] = (raw["Volume"] / factor).round().astype("int64")
    out = out.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    assert (out[["open", "high", "low", "close"]] > 0).all().all(), "a price is not positive"
    assert (out["low"] <= out[["open", "close"]].min(axis=1)).all(), "low above open or close"
    assert (out["high"] >= out[["open", "close"]].max(axis=1)).all(), "high below open or close"
    assert not out.duplicated(["symbol", "date"]).any(), "duplicate date"
    return out


def main() -> None:
    """Regenerate the sample data file and print a summary."""
    data = source_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"warning: stocks.csv.gz has sha256 {digest}, expected {SOURCE_SHA256}", file=sys.stderr)
    frame = adjust(pd.read_csv(io.BytesIO(data), compression="gzip"))
    text = frame.to_csv(index=False, lineterminator="\n").encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as archive:
        archive.write(text)
    OUTPUT.write_bytes(buffer.getvalue())
    counts = frame.groupby("symbol").size().to_dict()
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes): {counts}")


if __name__ == "__main__":
    main()
