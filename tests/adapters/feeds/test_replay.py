"""Tests of the replay feed: formats, merge order, raw pass-through, filters, resume, signature, pacing."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from robohost.adapters.feeds import replay
from robohost.adapters.feeds.replay import ReplayFeed, load_replay
from robohost.adapters.feeds.synthetic import synthetic_bars
from robohost.domain.market import BAR, QUOTE, TRADE
from robohost.domain.values import NS_PER_DAY, NS_PER_MINUTE, NS_PER_SECOND
from robohost.errors import ConfigError, DataError
from robohost.sample_data import sample_data_path

NAN = math.nan
T0 = int(datetime(2024, 1, 2, tzinfo=UTC).timestamp()) * NS_PER_SECOND

BARS_CSV = """Symbol,Date,Open,High,Low,Close,Volume
AAA,2024-01-02,10.0,11.0,9.5,10.5,100
AAA,2024-01-03,10.5,12.0,10.0,11.5,200
BBB,2024-01-02,20.0,21.0,19.0,20.5,300
"""


def write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` (gzipped when the name ends in .gz) and return the path."""
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Compare two events, counting NaN equal to NaN."""
    return len(a) == len(b) and all(
        (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)) or x == y
        for x, y in zip(a, b, strict=True)
    )


def assert_events(feed: ReplayFeed, expected: list[tuple[object, ...]]) -> None:
    got = list(feed.events(0))
    assert len(got) == len(expected), got
    for g, e in zip(got, expected, strict=True):
        assert same(g, e), (g, e)


EXPECTED_BARS = [
    (0, BAR, 0, T0, 10.0, 11.0, 9.5, 10.5, 100.0),
    (1, BAR, 1, T0, 20.0, 21.0, 19.0, 20.5, 300.0),
    (2, BAR, 0, T0 + NS_PER_DAY, 10.5, 12.0, 10.0, 11.5, 200.0),
]


@pytest.mark.parametrize("name", ["bars.csv", "bars.csv.gz"])
def test_loads_csv_and_gzipped_csv(tmp_path: Path, name: str) -> None:
    feed = load_replay([write(tmp_path / name, BARS_CSV)])
    assert list(feed.symbols) == ["AAA", "BBB"]
    assert dict(feed.kinds) == {"AAA": frozenset({BAR}), "BBB": frozenset({BAR})}
    assert len(feed) == 3
    assert (feed.first_ts, feed.last_ts) == (T0, T0 + NS_PER_DAY)
    assert_events(feed, EXPECTED_BARS)


def test_loads_parquet(tmp_path: Path) -> None:
    frame = pd.read_csv(write(tmp_path / "bars.csv", BARS_CSV))
    frame.to_parquet(tmp_path / "bars.parquet", index=False)
    assert_events(load_replay([tmp_path / "bars.parquet"]), EXPECTED_BARS)


def test_trades_and_quotes_carry_nan_in_unused_fields(tmp_path: Path) -> None:
    trades = write(tmp_path / "t.csv", "symbol,ts,price,size\nAAA,2024-01-02T00:00:01Z,10.0,5\n")
    quotes = write(
        tmp_path / "q.csv", "SYMBOL,TIMESTAMP,BID,ASK,BID_SIZE,ASK_SIZE\nAAA,2024-01-02T00:00:00Z,9.9,10.1,3,4\n"
    )
    feed = load_replay([trades, quotes])
    assert dict(feed.kinds) == {"AAA": frozenset({TRADE, QUOTE})}
    assert dict(feed.intervals_ns) == {"AAA": 0}
    assert_events(
        feed,
        [
            (0, QUOTE, 0, T0, 9.9, 10.1, 3.0, 4.0, NAN),
            (1, TRADE, 0, T0 + NS_PER_SECOND, 10.0, 5.0, NAN, NAN, NAN),
        ],
    )


def test_symbol_prefix_names_a_file_without_symbol_column(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "time,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n")
    feed = load_replay([f"XYZ={path}"])
    assert list(feed.symbols) == ["XYZ"]
    assert_events(feed, [(0, BAR, 0, T0, 1.0, 2.0, 0.5, 1.5, 10.0)])


def test_symbol_prefix_selects_rows_of_a_file_with_symbol_column(tmp_path: Path) -> None:
    path = write(tmp_path / "bars.csv", BARS_CSV)
    feed = load_replay([f"BBB={path}"])
    assert list(feed.symbols) == ["BBB"]
    assert_events(feed, [(0, BAR, 0, T0, 20.0, 21.0, 19.0, 20.5, 300.0)])


def test_file_without_symbol_column_needs_prefix(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError, match=r"x\.csv: missing columns symbol \(or give the file as SYMBOL=path\)"):
        load_replay([path])


def test_merge_orders_by_time_then_kind_then_symbol_index(tmp_path: Path) -> None:
    a = write(tmp_path / "a.csv", "ts,open,high,low,close,volume\n2024-01-02 00:02,1,1,1,1,1\n2024-01-02,1,1,1,1,1\n")
    b = write(tmp_path / "b.csv", "ts,price,size\n2024-01-02 00:00,2,1\n2024-01-02 00:01,2,1\n")
    c = write(tmp_path / "c.csv", "ts,open,high,low,close,volume\n2024-01-02,3,3,3,3,3\n2024-01-02 00:03,3,3,3,3,3\n")
    feed = load_replay([f"B={b}", f"C={c}", f"A={a}"], symbols=["C", "B", "A"])
    assert list(feed.symbols) == ["C", "B", "A"]
    got = [(kind, sym, (ts - T0) // NS_PER_MINUTE) for _, kind, sym, ts, *_ in feed.events(0)]
    # Bars count from their close (C's bars are 3 minutes long, and A takes that length): B's trades at
    # 0 and 1 come before C's first bar (closing at 3). A's second row goes back in time: it stays right
    # after A's first row (running max: closes at 5).
    assert got == [(TRADE, 1, 0), (TRADE, 1, 1), (BAR, 0, 0), (BAR, 2, 2), (BAR, 2, 0), (BAR, 0, 3)]


def test_out_of_order_and_duplicate_rows_stay_in_place(tmp_path: Path) -> None:
    text = "symbol,ts,price,size\n" + "".join(
        f"{sym},2024-01-02 00:00:{sec:02d},{price},1\n"
        for sym, sec, price in [
            ("A", 1, 1.0),
            ("B", 2, 2.0),
            ("A", 3, 3.0),
            ("A", 3, 4.0),  # duplicate time
            ("A", 2, 5.0),  # out of order
            ("B", 4, 6.0),
            ("A", 5, 7.0),
        ]
    )
    feed = load_replay([write(tmp_path / "t.csv", text)])
    prices = [event[4] for event in feed.events(0)]
    assert prices == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    seconds = [(event[3] - T0) // NS_PER_SECOND for event in feed.events(0)]
    assert seconds == [1, 2, 3, 3, 2, 4, 5]
    assert [event[0] for event in feed.events(0)] == list(range(7))


def test_bad_values_pass_through_and_garbage_becomes_nan(tmp_path: Path) -> None:
    text = (
        "symbol,date,open,high,low,close,volume\n"
        "A,2024-01-02,abc,,inf,-5,NaN\n"
        "A,2024-01-03,10,8,12,9,-1\n"  # high below low, negative volume
        "A,2024-01-03,-inf,1e3,0,0,1\n"  # duplicate date
    )
    feed = load_replay([write(tmp_path / "bad.csv", text)])
    assert_events(
        feed,
        [
            (0, BAR, 0, T0, NAN, NAN, math.inf, -5.0, NAN),
            (1, BAR, 0, T0 + NS_PER_DAY, 10.0, 8.0, 12.0, 9.0, -1.0),
            (2, BAR, 0, T0 + NS_PER_DAY, -math.inf, 1000.0, 0.0, 0.0, 1.0),
        ],
    )


def test_start_is_inclusive_end_exclusive_and_naive_times_use_timezone(tmp_path: Path) -> None:
    lines = "".join(f"2024-01-0{d} 09:30,{d},{d},{d},{d},1\n" for d in range(2, 7))
    path = write(tmp_path / "x.csv", "datetime,open,high,low,close,volume\n" + lines)
    feed = load_replay(
        [f"X={path}"], start=datetime(2024, 1, 3, 9, 30), end=datetime(2024, 1, 5, 9, 30), timezone="America/New_York"
    )
    assert [event[4] for event in feed.events(0)] == [3.0, 4.0]
    assert feed.first_ts == int(pd.Timestamp("2024-01-03 14:30", tz="UTC").value)
    aware = load_replay([f"X={path}"], start=datetime(2024, 1, 5, 14, 30, tzinfo=UTC), timezone="America/New_York")
    assert [event[4] for event in aware.events(0)] == [5.0, 6.0]


def test_aware_times_are_converted_to_utc(tmp_path: Path) -> None:
    text = "ts,price,size\n2024-01-01T19:00:00-05:00,1,1\n2024-07-01T20:00:00-04:00,2,1\n"
    feed = load_replay([f"X={write(tmp_path / 't.csv', text)}"], timezone="Asia/Tokyo")
    assert [event[3] for event in feed.events(0)] == [
        T0,
        int(pd.Timestamp("2024-07-02", tz="UTC").value),
    ]


def test_separate_date_and_time_columns_and_numeric_times(tmp_path: Path) -> None:
    split = write(tmp_path / "s.csv", "date,time,price,size\n2024-01-02,00:00:01,1,1\n")
    yyyymmdd = write(tmp_path / "d.csv", "date,price,size\n20240102,1,1\n")
    epoch_ms = write(tmp_path / "e.csv", f"ts,price,size\n{T0 // 1_000_000 + 1000},1,1\n")
    assert next(load_replay([f"S={split}"]).events(0))[3] == T0 + NS_PER_SECOND
    assert next(load_replay([f"D={yyyymmdd}"]).events(0))[3] == T0
    assert next(load_replay([f"E={epoch_ms}"]).events(0))[3] == T0 + NS_PER_SECOND


def test_events_resume_exactly_at_sequence_number() -> None:
    feed = ReplayFeed.from_frame(pd.concat([synthetic_bars(50, symbol=s, seed=i) for i, s in enumerate("XYZ")]))
    everything = list(feed.events(0))
    assert [event[0] for event in everything] == list(range(150))
    for k in (0, 1, 77, 149, 150, 151):
        assert list(feed.events(k)) == everything[k:]
    with pytest.raises(ValueError, match="start_seq"):
        feed.events(-1)


def signature_in_subprocess(path: Path) -> str:
    src = Path(replay.__file__).resolve().parents[3]
    code = (
        "import sys; from robohost.adapters.feeds.replay import load_replay; print(load_replay(sys.argv[1:]).signature)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src), "PYTHONHASHSEED": "123"},
    )
    return result.stdout.strip()


def test_signature_is_stable_and_follows_data_and_filters(tmp_path: Path) -> None:
    path = write(tmp_path / "bars.csv", BARS_CSV)
    signature = load_replay([path]).signature
    assert len(signature) == 64
    assert load_replay([path], speed=10.0).signature == signature
    assert signature_in_subprocess(path) == signature
    assert load_replay([path], symbols=["AAA"]).signature != signature
    assert load_replay([path], start=datetime(2024, 1, 3)).signature != signature
    assert load_replay([path], timezone="Europe/Paris").signature != signature
    write(path, BARS_CSV.replace("300", "301"))
    assert load_replay([path]).signature != signature


def test_frame_signature_follows_values() -> None:
    frame = synthetic_bars(100)
    signature = ReplayFeed.from_frame(frame).signature
    assert ReplayFeed.from_frame(frame.copy()).signature == signature
    changed = frame.copy()
    changed.loc[50, "close"] += 0.01
    assert ReplayFeed.from_frame(changed).signature != signature


def test_intervals_daily_and_minute(tmp_path: Path) -> None:
    minute = synthetic_bars(30, symbol="M", interval="1min")
    minute = minute.drop(index=[3, 4, 10])  # gaps do not change the most common step
    feed = ReplayFeed.from_frame(minute)
    assert dict(feed.intervals_ns) == {"M": NS_PER_MINUTE}
    daily = load_replay([sample_data_path()], symbols=["IBM"], timezone="America/New_York")
    assert dict(daily.intervals_ns) == {"IBM": NS_PER_DAY}


def test_sample_data_loads() -> None:
    feed = load_replay([sample_data_path()])
    assert list(feed.symbols) == ["AAPL", "GOOG", "IBM", "MSFT"]
    counts = {s: 0 for s in feed.symbols}
    for event in feed.events(0):
        counts[feed.symbols[event[2]]] += 1
    assert counts == {"AAPL": 3270, "GOOG": 2148, "IBM": 3270, "MSFT": 3270}
    assert all(kinds == frozenset({BAR}) for kinds in feed.kinds.values())
    stamps = [event[3] for event in feed.events(0)]
    assert stamps == sorted(stamps)


def test_missing_columns_name_file_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "partial.csv", "symbol,date,open,close,volume\nA,2024-01-02,1,1,1\n")
    with pytest.raises(DataError) as caught:
        load_replay([path])
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "missing columns high, low" in message


def test_unreadable_files_raise_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothere\.csv: no such market data file"):
        load_replay([tmp_path / "nothere.csv"])
    with pytest.raises(DataError, match=r"empty\.csv: not a readable CSV or Parquet file"):
        load_replay([write(tmp_path / "empty.csv", "")])
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable"):
        load_replay([tmp_path / "broken.parquet"])
    with pytest.raises(DataError, match=r"when\.csv: cannot read time 'soon' in data row 2"):
        load_replay([write(tmp_path / "when.csv", "symbol,ts,price,size\nA,2024-01-02,1,1\nA,soon,1,1\n")])


def test_filters_that_leave_nothing_or_name_absent_symbols(tmp_path: Path) -> None:
    path = write(tmp_path / "bars.csv", BARS_CSV)
    with pytest.raises(DataError, match="no market data for ZZZ"):
        load_replay([path], symbols=["ZZZ"])
    with pytest.raises(DataError, match="no market events left"):
        load_replay([path], start=datetime(2030, 1, 1))
    with pytest.raises(ConfigError, match="unknown timezone"):
        load_replay([path], timezone="Mars/Olympus")


def test_pacing_at_1000x_takes_at_least_the_scaled_data_span() -> None:
    frame = synthetic_bars(101, interval="1s")
    feed = ReplayFeed.from_frame(frame, speed=1000.0)
    span_s = (feed.last_ts - feed.first_ts) / NS_PER_SECOND / 1000.0  # 0.1 s
    began = time.monotonic()
    assert len(list(feed.events(0))) == 101
    assert time.monotonic() - began >= span_s * 0.999


def test_pacing_caps_each_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(replay, "time", SimpleNamespace(monotonic=lambda: now[0], sleep=fake_sleep))
    frame = synthetic_bars(4, interval="1s")
    frame.loc[2:, "ts"] += pd.Timedelta(hours=1)  # a one-hour gap before the third bar
    feed = ReplayFeed.from_frame(frame, speed=2.0)
    assert len(list(feed.events(0))) == 4
    assert sleeps == [0.5, replay.MAX_SLEEP_S, 0.5]
