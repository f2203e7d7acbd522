"""Backups of a 1 GB trading database while the robot trades: how long the engine is held up, and how long
backup, verification and restore take.

Builds a robot home whose SQLite database is about ``--size-gb`` (bulk rows in ``equity_points`` and
``journal``), then measures, printing one JSON line each:

1. ``backup``: ``make_backup`` of the idle home to a local folder (snapshot, tar, zstd, age, copy checked by
   reading it back); ``verify``: the full verification with the private key; ``restore``: into a new home.
2. ``replay-baseline``: a replay of synthetic one-minute bars at full speed, the journal in that database
   (writer process), alone. The engine's events are timed through the feed: the gap between the engine taking
   one event and the next is how long that event was held up (processing, and any wait for the journal).
3. ``replay-with-backup-thread``: the same while a backup runs in a thread of the engine's process, as
   ``robohost serve``'s chore runs it; ``replay-with-backup-process``: while ``robohost backup`` runs as a
   separate process. Gaps are counted inside the backup's window.

Run: ``python bench/backup_stall.py`` (about 5 minutes on a 2-core machine; ``--size-gb 0.2`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

JOURNAL_PAYLOAD = "x" * 480
GAP_THRESHOLD_S = 0.001


class GapFeed:
    """A replay feed that times the engine: the longest waits between taking one event and the next."""

    def __init__(self, feed: Any) -> None:
        self.feed = feed
        self.gaps: list[tuple[float, float]] = []  # (when, seconds) for gaps above GAP_THRESHOLD_S
        self.events_seen = 0
        self.started = 0.0
        self.ended = 0.0

    @property
    def symbols(self) -> Sequence[str]:
        return self.feed.symbols

    @property
    def kinds(self) -> Mapping[str, frozenset[int]]:
        return self.feed.kinds

    @property
    def intervals_ns(self) -> Mapping[str, int]:
        return self.feed.intervals_ns

    @property
    def signature(self) -> str:
        return self.feed.signature

    def event_columns(self) -> Any:
        return self.feed.event_columns()

    def events(self, start_seq: int) -> Iterator[Any]:
        clock, gaps, threshold = time.perf_counter, self.gaps, GAP_THRESHOLD_S
        self.started = last = clock()
        count = 0
        for event in self.feed.events(start_seq):
            now = clock()
            if now - last > threshold:
                gaps.append((now, now - last))
            count += 1
            yield event
            last = clock()
        self.events_seen = count
        self.ended = clock()


def build_home(root: Path, size_gb: float) -> Path:
    """A robot home whose database holds about ``size_gb`` of rows (built with plain bulk inserts)."""
    import pyrage

    from robohost.adapters.db.engine import make_engine
    from robohost.adapters.db.migrate import upgrade
    from robohost.services.homes import create_home

    home = create_home(root / "home").path
    identity = pyrage.x25519.Identity.generate()
    (root / "key.txt").write_text(f"{identity}\n")
    with (home / "robohost.toml").open("a") as fh:
        fh.write(f'\n[backup]\nrecipients = ["{identity.to_public()}"]\ntargets = ["{root / "offsite"}"]\n')
    engine = make_engine(f"sqlite:///{home / 'robohost.db'}")
    upgrade(engine)
    engine.dispose()
    db = sqlite3.connect(home / "robohost.db")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "INSERT INTO runs (id, robot, mode, status, started_at, seed, starting_cash, strategy, feed_signature, config,"
        " last_seq, events_processed, rejected_count) VALUES ('BULK', 'bulk', 'replay', 'completed', 1, 1, '100000',"
        " 's', 'f', '{}', 0, 0, 0)"
    )
    target = size_gb * 1e9
    points = int(target * 0.25 / 45)
    db.executemany(
        "INSERT INTO equity_points (run_id, ts, equity, cash) VALUES ('BULK', ?, ?, ?)",
        ((i * 60_000_000_000, 100_000.0 + (i % 997), 5_000.0 + (i % 31)) for i in range(points)),
    )
    db.commit()
    seq = 0
    while (home / "robohost.db").stat().st_size < target:
        db.executemany(
            "INSERT INTO journal (run_id, seq, ts, type, data) VALUES ('BULK', ?, ?, 'note', ?)",
            ((s, s, f'{{"i": {s}, "text": "{JOURNAL_PAYLOAD}"}}') for s in range(seq, seq + 100_000)),
        )
        db.commit()
        seq += 100_000
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return home


def _settings(home: Path) -> Any:
    from robohost.config.loader import load_home
    from robohost.services.backup.settings import BackupSettings

    return BackupSettings.from_home(load_home(home))


def backup_once(home: Path) -> tuple[Any, dict[str, Any]]:
    """One backup of the home; its report and a JSON line."""
    from robohost.adapters.db.backups import BackupStore
    from robohost.adapters.db.engine import make_engine
    from robohost.services.backup.make import make_backup

    settings = _settings(home)
    engine = make_engine(settings.database_url)
    try:
        report = make_backup(settings, BackupStore(engine), trigger="bench")
    finally:
        engine.dispose()
    return report, {
        "seconds": round(report.seconds, 2),
        "snapshot_seconds": round(report.snapshot_seconds, 2),
        "archive_mb": round(report.size / 1e6, 1),
        "probe_max_stall_ms": round(report.max_stall_ms, 2),
    }


def replay(home: Path, bars: int, during: str | None) -> dict[str, Any]:
    """Replay ``bars`` at full speed into the home's database; with ``during``, run a backup meanwhile."""
    from robohost.adapters.db.engine import make_engine
    from robohost.adapters.db.journal import SqlJournal
    from robohost.adapters.db.queries import ReadModel
    from robohost.adapters.db.writer import ProcessJournal
    from robohost.adapters.feeds.replay import ReplayFeed
    from robohost.adapters.feeds.synthetic import synthetic_bars
    from robohost.adapters.strategies import load_strategy_class
    from robohost.config.models import RobotConfig
    from robohost.services.paper import PaperTrading

    frame = synthetic_bars(bars, seed=11)
    frame["volume"] *= 100
    feed = GapFeed(ReplayFeed.from_frame(frame))
    cfg = RobotConfig.model_validate(
        {
            "strategy": "robohost.examples.sma_cross:SmaCross",
            "params": {"fast": 10, "slow": 30, "qty": 100},
            "starting_cash": 100_000_000,
            "timezone": "UTC",
            "data": {"path": ["<generated>"]},
            "fills": {"participation": 1.0, "slippage_bps": 0.0, "latency_ms": 0},
        }
    )
    url = f"sqlite:///{home / 'robohost.db'}"
    engine = make_engine(url)
    journal = SqlJournal(engine)
    service = PaperTrading(
        "bench",
        cfg,
        journal,
        ReadModel(engine),
        lambda _cfg: feed,
        lambda ref: load_strategy_class(ref, home),
        logging.getLogger("bench"),
        open_writer=lambda: ProcessJournal(journal, url),
    )
    window: dict[str, Any] = {}

    def backup_in_thread() -> None:
        time.sleep(2.0)
        window["start"] = time.perf_counter()
        _, window["backup"] = backup_once(home)
        window["end"] = time.perf_counter()

    def backup_in_process() -> None:
        time.sleep(2.0)
        window["start"] = time.perf_counter()
        out = subprocess.run(
            [str(Path(sys.executable).with_name("robohost")), "--home", str(home), "backup", "--json"],
            capture_output=True,
            text=True,
            check=True,
            timeout=1800,
        ).stdout
        window["end"] = time.perf_counter()
        made = json.loads(out)
        window["backup"] = {"seconds": made["seconds"], "probe_max_stall_ms": made["max_stall_ms"]}

    helper = None
    if during is not None:
        helper = threading.Thread(target=backup_in_thread if during == "thread" else backup_in_process)
        helper.start()
    started = time.perf_counter()
    service.run("new")
    seconds = time.perf_counter() - started
    if helper is not None:
        helper.join()
    engine.dispose()
    lo, hi = window.get("start", feed.started), window.get("end", feed.ended)
    inside = sorted((gap for when, gap in feed.gaps if lo <= when <= hi), reverse=True)
    result: dict[str, Any] = {
        "bars": bars,
        "seconds": round(seconds, 2),
        "bars_per_sec": round(bars / seconds),
        "max_event_gap_ms": round(max(inside, default=0.0) * 1000, 2),
        "gaps_over_50ms": sum(1 for g in inside if g > 0.05),
        "gaps_over_10ms": sum(1 for g in inside if g > 0.01),
        "top_gaps_ms": [round(g * 1000, 1) for g in inside[:5]],
    }
    if during is not None:
        result["backup"] = window.get("backup")
        result["backup_inside_replay"] = bool(window) and window["end"] <= feed.ended
        result["median_gap_over_1ms_ms"] = round(statistics.median(inside) * 1000, 2) if inside else 0.0
    return result


def restore_once(root: Path, home: Path, name: str) -> dict[str, Any]:
    """Verify the backup in full, then restore it into a new home; time both."""
    from robohost.services.backup.restore import restore_archive
    from robohost.services.backup.verify import verify_archive

    archive = root / "offsite" / name
    started = time.perf_counter()
    report = verify_archive(archive, root / "key.txt", work_parent=root)
    verify_s = time.perf_counter() - started
    assert report.ok, report.problems
    started = time.perf_counter()
    restore_archive(archive, root / "key.txt", root / "restored")
    restore_s = time.perf_counter() - started
    size = (root / "restored" / "robohost.db").stat().st_size
    return {"verify_seconds": round(verify_s, 2), "restore_seconds": round(restore_s, 2), "restored_gb": size / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="robohost-backup-bench-"))
    try:
        started = time.perf_counter()
        home = build_home(root, args.size_gb)
        size = (home / "robohost.db").stat().st_size
        print(
            json.dumps({"database_gb": round(size / 1e9, 3), "build_seconds": round(time.perf_counter() - started, 1)})
        )
        report, line = backup_once(home)
        print(json.dumps({"measure": "backup (idle robot)", **line}), flush=True)
        print(json.dumps({"measure": "verify + restore", **restore_once(root, home, report.name)}), flush=True)
        shutil.rmtree(root / "restored")
        base = replay(home, 400_000, None)
        print(json.dumps({"measure": "replay-baseline", **base}), flush=True)
        bars = min(12_000_000, int(base["bars_per_sec"] * (report.seconds * 6 + 10)))  # outlast the backup
        for during in ("thread", "process"):
            result = replay(home, bars, during)
            print(json.dumps({"measure": f"replay-with-backup-{during}", **result}), flush=True)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
