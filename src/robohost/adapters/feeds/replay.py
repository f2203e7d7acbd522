"""Replay recorded market data (CSV, gzipped CSV, Parquet or a DataFrame) as a ``MarketFeed``.

Files are "long": one row per event. The columns decide the kind of event (case-insensitive):
bars need ``open, high, low, close, volume``, trades ``price, size``, quotes ``bid, ask,
bid_size, ask_size``; all need a time column (``ts``, ``timestamp``, ``datetime``, ``time``,
``date``, or ``date`` plus ``time``) and ``symbol``, unless the file is given as ``SYMBOL=path``.
Naive times are read in the given timezone; everything is stored as ns since the epoch, UTC.

The feed never cleans data: NaN, infinities, negative prices, high below low, duplicate or
out-of-order timestamps all pass through unchanged (unparseable numbers become NaN), because
the engine rejects and counts them. Several symbols and files are merged into one stream
sorted stably by (running maximum of the time the event is known within its own (symbol, kind)
sequence — a bar's end, a trade's or quote's time —, kind, symbol index, position in the input),
so no sequence is ever reordered, an out-of-order row stays right behind its predecessor, and no
bar is seen before the trades and quotes inside it. Files of one symbol and kind are read in the order given.

Loading uses pandas and numpy; ``events`` runs over plain lists (the engine's hot path).
This module must not import robohost.config, robohost.cli, robohost.services or robohost.adapters.db.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
import warnings
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from robohost.domain.market import BAR, KIND_NAMES, QUOTE, TRADE
from robohost.engine.history import History
from robohost.engine.ports import MarketEvent
from robohost.errors import ConfigError, DataError

TIME_COLUMNS = ("ts", "timestamp", "datetime", "time", "date")
"""Accepted names of the time column, in order of preference."""
FIELD_COLUMNS: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        BAR: ("open", "high", "low", "close", "volume"),
        TRADE: ("price", "size"),
        QUOTE: ("bid", "ask", "bid_size", "ask_size"),
    }
)
"""The value columns of each event kind, in ``MarketEvent`` field order."""
MAX_SLEEP_S = 5.0
"""Longest wait between two paced events: longer gaps in the data are shortened to this."""

_READ_ERRORS = (ValueError, OSError, EOFError, zlib.error, pa.ArrowException)


@dataclass(frozen=True, slots=True)
class _Part:
    """One file or frame, normalised: local symbol codes, UTC ns times and float fields."""

    kind: int
    symbols: list[str]
    codes: np.ndarray
    ts: np.ndarray
    fields: list[np.ndarray]


class ReplayFeed:
    """A ``MarketFeed`` over events held in memory; build it with ``load_replay`` or ``from_frame``."""

    def __init__(
        self,
        *,
        symbols: Sequence[str],
        kinds: list[int],
        syms: list[int],
        ts: list[int],
        fields: Sequence[list[float]],
        kinds_by_symbol: Mapping[str, frozenset[int]],
        intervals_ns: Mapping[str, int],
        signature: str,
        span_ns: tuple[int, int] = (0, 0),
        speed: float | None = None,
        columns: History | None = None,
    ) -> None:
        if speed is not None and not speed > 0.0:
            raise ValueError(f"speed must be positive or None, not {speed!r}")
        self._symbols = tuple(symbols)
        self._kinds = kinds
        self._syms = syms
        self._ts = ts
        self._f1, self._f2, self._f3, self._f4, self._f5 = fields
        self._kinds_by_symbol = MappingProxyType(dict(kinds_by_symbol))
        self._intervals_ns = MappingProxyType(dict(intervals_ns))
        self._signature = signature
        self._speed = speed
        self._first_ts, self._last_ts = span_ns
        self._columns = columns

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        symbol: str | None = None,
        symbols: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        timezone: str = "UTC",
        speed: float | None = None,
        name: str = "<frame>",
    ) -> ReplayFeed:
        """Build a feed from a DataFrame laid out like a file, without touching the disk.

        ``symbol`` plays the part of a ``SYMBOL=`` prefix: it names the rows of a frame without a
        symbol column, or selects that symbol's rows. Other arguments are as for ``load_replay``.

        The signature is a hash of the frame's columns and values plus the filters.
        """
        _check_timezone(timezone)
        part = _frame_part(frame, name, symbol, timezone)
        digest = hashlib.sha256(repr([str(c) for c in frame.columns]).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return _assemble([part], [(symbol, digest.digest())], symbols, start, end, timezone, speed)

    @property
    def symbols(self) -> Sequence[str]:
        """Symbols, indexed by the symbol index of each event."""
        return self._symbols

    @property
    def kinds(self) -> Mapping[str, frozenset[int]]:
        """Which event kinds (BAR/TRADE/QUOTE) each symbol carries."""
        return self._kinds_by_symbol

    @property
    def intervals_ns(self) -> Mapping[str, int]:
        """Most common positive gap between consecutive bars per symbol (0 without two bars)."""
        return self._intervals_ns

    @property
    def signature(self) -> str:
        """sha256 (hex) of the data's bytes and the filters; the same in every process."""
        return self._signature

    @property
    def speed(self) -> float | None:
        """Replay speed (1.0 = real time), or None for as fast as possible."""
        return self._speed

    @property
    def first_ts(self) -> int:
        """Earliest event time, ns since the epoch, UTC."""
        return self._first_ts

    @property
    def last_ts(self) -> int:
        """Latest event time, ns since the epoch, UTC."""
        return self._last_ts

    def event_columns(self) -> History | None:
        """Every event's time and five fields as numpy arrays indexed by seq (what ``ctx.history`` reads)."""
        return self._columns

    def __len__(self) -> int:
        return len(self._ts)

    def __repr__(self) -> str:
        return f"ReplayFeed({len(self)} events, symbols={list(self._symbols)}, speed={self._speed})"

    def events(self, start_seq: int = 0) -> Iterator[MarketEvent]:
        """Yield events in time order, beginning with the event numbered ``start_seq``."""
        if start_seq < 0:
            raise ValueError(f"start_seq must be >= 0, not {start_seq}")
        if self._speed is None:
            return self._zip(start_seq)
        return self._paced(start_seq, self._speed)

    def _zip(self, k: int) -> Iterator[MarketEvent]:
        return zip(
            range(k, len(self._ts)),
            self._kinds[k:],
            self._syms[k:],
            self._ts[k:],
            self._f1[k:],
            self._f2[k:],
            self._f3[k:],
            self._f4[k:],
            self._f5[k:],
            strict=True,
        )

    def _paced(self, k: int, speed: float) -> Iterator[MarketEvent]:
        """Yield events at their time gaps divided by ``speed``, each wait capped at ``MAX_SLEEP_S``."""
        event_ns_per_s = 1e9 * speed
        anchor_wall = anchor_ts = 0.0
        anchored = False
        for event in self._zip(k):
            ts = event[3]
            if not anchored:
                anchor_wall, anchor_ts, anchored = time.monotonic(), ts, True
            else:
                delay = anchor_wall + (ts - anchor_ts) / event_ns_per_s - time.monotonic()
                if delay > MAX_SLEEP_S:
                    time.sleep(MAX_SLEEP_S)
                    anchor_wall, anchor_ts = time.monotonic(), ts
                elif delay > 0.0:
                    time.sleep(delay)
            yield event


def load_replay(
    paths: Sequence[Path | str],
    *,
    symbols: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    timezone: str = "UTC",
    speed: float | None = None,
) -> ReplayFeed:
    """Load CSV, CSV.gz or Parquet files (or ``SYMBOL=path``) into one time-ordered ``ReplayFeed``.

    With ``SYMBOL=path`` the file needs no symbol column (if it has one, only SYMBOL's rows are
    kept). ``symbols`` keeps only those symbols, indexed in that order (None or empty: all, sorted);
    ``start`` (inclusive) and ``end`` (exclusive) filter on event time, naive values read in
    ``timezone``; ``speed`` paces ``events`` (1.0 = real time, None = as fast as possible).
    Raises ``DataError`` naming the file when a file is missing, unreadable or lacks columns.
    """
    if not paths:
        raise DataError("no market data files given")
    _check_timezone(timezone)
    parts: list[_Part] = []
    digests: list[tuple[str | None, bytes]] = []
    for spec in paths:
        prefix, path = _split_spec(spec)
        data = _read_bytes(path)
        parts.append(_frame_part(_read_frame(data, str(path), prefix), str(path), prefix, timezone))
        digests.append((prefix, hashlib.sha256(data).digest()))
    return _assemble(parts, digests, symbols, start, end, timezone, speed)


def _check_timezone(timezone: str) -> None:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"unknown timezone {timezone!r}; use an IANA name such as 'America/New_York'") from None


def _split_spec(spec: Path | str) -> tuple[str | None, Path]:
    text = str(spec)
    path = Path(text)
    if "=" in text and not path.exists():
        prefix, _, rest = text.partition("=")
        if prefix and rest:
            return prefix, Path(rest)
    return None, path


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such market data file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read market data ({exc.strerror or exc})") from None


def _read_frame(data: bytes, label: str, prefix: str | None) -> pd.DataFrame:
    """Parse CSV (plain or gzip) or Parquet bytes, reading only the columns that matter."""
    is_parquet = data[:4] == b"PAR1"
    compression = "gzip" if data[:2] == b"\x1f\x8b" else None
    try:
        if is_parquet:
            names = list(pq.ParquetFile(io.BytesIO(data)).schema_arrow.names)
        else:
            names = list(pd.read_csv(io.BytesIO(data), nrows=0, compression=compression).columns)
        columns = _pick_columns([str(n) for n in names], label, prefix)[1]
        wanted = list(dict.fromkeys(columns.values()))
        if is_parquet:
            frame = pd.read_parquet(io.BytesIO(data), columns=wanted)
        else:
            symbol_type = {columns["symbol"]: str} if "symbol" in columns else None
            frame = pd.read_csv(
                io.BytesIO(data), compression=compression, usecols=wanted, dtype=symbol_type, low_memory=False
            )
    except _READ_ERRORS as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{label}: not a readable CSV or Parquet file ({reason})") from None
    return frame


def _pick_columns(names: list[str], label: str, prefix: str | None) -> tuple[int, dict[str, str]]:
    """Return the event kind and a map canonical name -> actual column, or raise ``DataError``."""
    lower: dict[str, str] = {}
    for name in names:
        lower.setdefault(name.strip().lower(), name)
    complete = [k for k, cols in FIELD_COLUMNS.items() if all(c in lower for c in cols)]
    kind = complete[0] if complete else max(FIELD_COLUMNS, key=lambda k: sum(c in lower for c in FIELD_COLUMNS[k]))
    time_cols = [c for c in TIME_COLUMNS if c in lower]
    needed = ["symbol", "ts", *FIELD_COLUMNS[kind]]
    missing = [c for c in FIELD_COLUMNS[kind] if c not in lower]
    if not time_cols:
        missing.insert(0, "ts (or timestamp/datetime/time/date)")
    if "symbol" not in lower and prefix is None:
        missing.insert(0, "symbol (or give the file as SYMBOL=path)")
    if missing:
        raise DataError(
            f"{label}: missing columns {', '.join(missing)} "
            f"(a {KIND_NAMES[kind]} file has {', '.join(needed)}; found {', '.join(names) or 'none'})"
        )
    columns = {c: lower[c] for c in FIELD_COLUMNS[kind]}
    if time_cols == ["time", "date"]:  # separate date and time columns, joined when parsed
        columns.update(date=lower["date"], time=lower["time"])
    else:
        columns["ts"] = lower[time_cols[0]]
    if "symbol" in lower:
        columns["symbol"] = lower["symbol"]
    return kind, columns


def _frame_part(frame: pd.DataFrame, label: str, prefix: str | None, timezone: str) -> _Part:
    """Normalise one frame: symbol codes, UTC ns times, float fields (garbage becomes NaN)."""
    names = [str(c) for c in frame.columns]
    kind, columns = _pick_columns(names, label, prefix)
    frame = frame.set_axis(names, axis=1)
    if prefix is not None and "symbol" in columns:
        frame = frame[(frame[columns["symbol"]].astype(str) == prefix).to_numpy()]
    if prefix is not None:
        symbols, codes = [prefix], np.zeros(len(frame), dtype=np.int64)
    else:
        codes, uniques = pd.factorize(frame[columns["symbol"]])
        if len(codes) and codes.min() < 0:
            raise DataError(f"{label}: empty symbol in data row {int(np.argmin(codes)) + 1}")
        symbols = [str(u) for u in uniques]
    if "ts" not in columns:
        stamps = frame[columns["date"]].astype(str) + " " + frame[columns["time"]].astype(str)
    else:
        stamps = frame[columns["ts"]]
    ts = _utc_ns(stamps, label, timezone)
    fields = [_floats(frame[columns[c]]) for c in FIELD_COLUMNS[kind]]
    return _Part(kind, symbols, np.asarray(codes, dtype=np.int64), ts, fields)


def _floats(column: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(column):
        column = pd.to_numeric(column, errors="coerce")
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _utc_ns(column: pd.Series, label: str, timezone: str) -> np.ndarray:
    """Convert a time column to int64 ns since the epoch, UTC (naive values are in ``timezone``)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        stamps = pd.DatetimeIndex(column)
    elif pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        if len(values) and not np.isfinite(values).all():
            _bad_time(column, int(np.flatnonzero(~np.isfinite(values))[0]), label)
        if not ((values >= 19000101) & (values <= 21001231) & (values % 1 == 0)).all():
            return _epoch_ns(column, values)
        stamps = pd.DatetimeIndex(pd.to_datetime(values.astype(np.int64).astype(str), format="%Y%m%d"))
    else:
        stamps = _parse_times(column)
    bad = np.flatnonzero(stamps.isna())
    if len(bad):
        _bad_time(column, int(bad[0]), label)
    try:
        stamps = stamps.tz_convert("UTC") if stamps.tz is not None else stamps.tz_localize(timezone)
    except (ValueError, OSError) as exc:  # ambiguous or missing local times around a DST change
        reason = str(exc).split(". ")[0].split(", try")[0]
        raise DataError(f"{label}: times do not fit timezone {timezone} ({reason})") from None
    return stamps.as_unit("ns").asi8


def _bad_time(column: pd.Series, row: int, label: str) -> None:
    raise DataError(f"{label}: cannot read time {column.iloc[row]!r} in data row {row + 1}")


def _parse_times(column: pd.Series) -> pd.DatetimeIndex:
    """Parse text times: ISO 8601 first (mixed offsets become UTC), then any inferable format."""
    for utc in (False, True):
        try:
            return pd.DatetimeIndex(pd.to_datetime(column, format="ISO8601", utc=utc))
        except (ValueError, TypeError, OverflowError):
            continue
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.DatetimeIndex(pd.to_datetime(column, errors="coerce"))
        except (ValueError, TypeError):
            return pd.DatetimeIndex(pd.to_datetime(column, errors="coerce", utc=True))


def _epoch_ns(column: pd.Series, values: np.ndarray) -> np.ndarray:
    """Numeric times that are not YYYYMMDD are epoch s, ms, us or ns, told apart by magnitude."""
    largest = float(np.abs(values).max()) if len(values) else 0.0
    scale = 10**9 if largest < 1e11 else 10**6 if largest < 1e14 else 10**3 if largest < 1e17 else 1
    if pd.api.types.is_integer_dtype(column):
        return column.to_numpy(dtype=np.int64) * scale
    return np.round(values * scale).astype(np.int64)


def _to_ns(value: datetime | None, timezone: str) -> int | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo is not None else stamp.tz_localize(timezone)
    return int(stamp.as_unit("ns").value)


def _assemble(
    parts: list[_Part],
    digests: list[tuple[str | None, bytes]],
    symbols: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
    timezone: str,
    speed: float | None,
) -> ReplayFeed:
    """Filter, merge and index the parts into a feed."""
    symbols = list(symbols) if symbols else None
    start_ns, end_ns = _to_ns(start, timezone), _to_ns(end, timezone)
    present = sorted({s for p in parts for s in p.symbols})
    if symbols is None:
        universe = present
    else:
        universe = list(dict.fromkeys(symbols))
        absent = [s for s in universe if s not in present]
        if absent:
            raise DataError(f"no market data for {', '.join(absent)} (the files hold {', '.join(present)})")
    index = {s: i for i, s in enumerate(universe)}

    chunks: list[list[np.ndarray]] = [[] for _ in range(8)]  # kind, symbol, ts, five fields
    for part in parts:
        lookup = np.array([index.get(s, -1) for s in part.symbols], dtype=np.int64)
        sym = lookup[part.codes] if len(part.codes) else part.codes
        keep = sym >= 0
        if start_ns is not None:
            keep &= part.ts >= start_ns
        if end_ns is not None:
            keep &= part.ts < end_ns
        everything = bool(keep.all())
        n = len(keep) if everything else int(keep.sum())
        columns = [sym, part.ts, *part.fields]
        chunks[0].append(np.full(n, part.kind, dtype=np.int64))
        for i, column in enumerate(columns, start=1):
            chunks[i].append(column if everything else column[keep])
        for i in range(len(columns) + 1, 8):
            chunks[i].append(np.full(n, np.nan))
    kind, sym, ts, *fields = (c[0] if len(c) == 1 else np.concatenate(c) for c in chunks)
    if not len(ts):
        raise DataError("no market events left after filtering by symbols and time; check start/end and symbols")

    intervals = _intervals(sym[kind == BAR], ts[kind == BAR], universe)
    group = sym * 3 + kind
    if (group == group[0]).all():
        order = None  # one sequence: its own order is already the merged order
    else:
        # a bar is known when it closes: merge bars by their end, trades and quotes by their time
        lengths = np.array([intervals[s] for s in universe], dtype=np.int64)
        known_at = np.where(kind == BAR, ts + lengths[sym], ts)
        running_max = pd.Series(known_at).groupby(group).cummax().to_numpy()
        order = np.lexsort((sym, kind, running_max))

    kinds_by_symbol: dict[str, frozenset[int]] = {s: frozenset() for s in universe}
    for g in np.flatnonzero(np.bincount(group)).tolist():
        name = universe[g // 3]
        kinds_by_symbol[name] = kinds_by_symbol[name] | {g % 3}

    signature = hashlib.sha256()
    for prefix, digest in digests:
        signature.update(repr(prefix).encode() + digest)
    signature.update(repr((None if symbols is None else universe, start_ns, end_ns, timezone)).encode())

    def ordered(values: np.ndarray) -> np.ndarray:
        return values if order is None else values[order]

    def listed(values: np.ndarray) -> list[Any]:
        if values.dtype.kind == "f" and np.isnan(values).all():
            return [math.nan] * len(values)  # one shared NaN object instead of a million
        return (values if order is None else values[order]).tolist()

    return ReplayFeed(
        symbols=universe,
        kinds=listed(kind),
        syms=listed(sym),
        ts=listed(ts),
        fields=[listed(column) for column in fields],
        kinds_by_symbol=kinds_by_symbol,
        intervals_ns=intervals,
        signature=signature.hexdigest(),
        span_ns=(int(ts.min()), int(ts.max())),
        speed=speed,
        columns=History(ordered(ts), *(ordered(column) for column in fields)),
    )


def _intervals(sym: np.ndarray, ts: np.ndarray, universe: list[str]) -> dict[str, int]:
    """Bar length per symbol: the most common positive gap between its consecutive bars (ties: the shortest).

    A symbol whose bars show no gap (a single bar) takes the length most symbols have; symbols without
    bars get 0.
    """
    result = _gaps(sym, ts, universe)
    lengths = [v for v in result.values() if v > 0]
    if lengths:
        common = max(sorted(set(lengths)), key=lengths.count)
        for name in set(universe[i] for i in np.unique(sym).tolist()):
            if result[name] == 0:
                result[name] = common
    return result


def _gaps(sym: np.ndarray, ts: np.ndarray, universe: list[str]) -> dict[str, int]:
    """Most common positive gap between consecutive bars of each symbol (0 where there is none)."""
    result = dict.fromkeys(universe, 0)
    by_symbol = np.argsort(sym, kind="stable")
    sym, ts = sym[by_symbol], ts[by_symbol]
    gaps = np.diff(ts)
    ok = (sym[1:] == sym[:-1]) & (gaps > 0)
    sym, gaps = sym[1:][ok], gaps[ok]
    if not len(gaps):
        return result
    order = np.lexsort((gaps, sym))
    sym, gaps = sym[order], gaps[order]
    firsts = np.flatnonzero(np.r_[True, (sym[1:] != sym[:-1]) | (gaps[1:] != gaps[:-1])])
    counts = np.diff(np.r_[firsts, len(gaps)])
    sym, gaps = sym[firsts], gaps[firsts]
    for i in np.lexsort((gaps, -counts, sym))[::-1].tolist():  # the last write per symbol wins
        result[universe[sym[i]]] = int(gaps[i])
    return result
