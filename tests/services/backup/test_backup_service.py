"""Making, recording, verifying, checking and restoring backups of a real home, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backup_support import AgeKey, SshServer, age_key, keygen, make_home, sshd, table_rows
from robohost.adapters.db.backups import BackupStore
from robohost.adapters.db.engine import make_engine
from robohost.adapters.db.lease import robot_lease
from robohost.bootstrap import open_app
from robohost.config.loader import load_home
from robohost.errors import BackupError, StateError
from robohost.services.backup.make import make_backup
from robohost.services.backup.restore import restore_archive
from robohost.services.backup.retention import archive_name
from robohost.services.backup.settings import BackupSettings
from robohost.services.backup.verify import check_backups, verify_backup
from robohost.services.server.chores import UnavailableChore

__all__ = ["sshd"]


def _home(tmp_path: Path, db_url: str, key: AgeKey, **kwargs: object) -> Path:
    url = None if db_url.startswith("sqlite") else db_url  # SQLite: the home's own robohost.db
    return make_home(tmp_path / "home", url, [key.recipient], **{"targets": ["backups"], **kwargs})  # type: ignore[arg-type]


def _settings(home: Path) -> BackupSettings:
    return BackupSettings.from_home(load_home(home))


def _store(settings: BackupSettings) -> BackupStore:
    return BackupStore(make_engine(settings.database_url))


def test_a_backup_is_recorded_and_verifies_in_full(db_url: str, tmp_path: Path) -> None:
    key = age_key(tmp_path)
    home = _home(tmp_path, db_url, key)
    settings = _settings(home)
    store = _store(settings)
    report = make_backup(settings, store)
    assert report.outcome == "ok"
    assert report.row_counts["equity_points"] == 300 and report.row_counts["journal"] == 300
    copy = home / "backups" / report.name
    assert copy.stat().st_size == report.size
    row = store.by_name(report.name)
    assert row is not None
    assert (row.outcome, row.size, row.sha256, row.trigger) == ("ok", report.size, report.sha256, "manual")
    assert row.targets == [{"target": str(home / "backups"), "outcome": "ok"}]
    assert row.duration_ms is not None and row.max_stall_ms is not None and row.recipients == [key.recipient]

    verified = verify_backup(None, key.identity_file, settings, store)
    assert verified.ok, verified.problems
    assert verified.manifest is not None
    stored = {f.path for f in verified.manifest.files}
    assert "home/robohost.toml" in stored and "home/logs/robohost.log" in stored
    home_files = {p for p in stored if p.startswith("home/")}
    assert not any(p.endswith(("secrets.toml", "robohost.db")) or p.startswith("home/backups") for p in home_files)
    assert stored - home_files == {
        "database/robohost.db" if db_url.startswith("sqlite") else "database/robohost.pgdump"
    }
    assert verified.row_counts == report.row_counts
    row = store.by_name(report.name)
    assert row is not None and row.verify_outcome == "ok" and (row.verify_detail or "").startswith("full: ")
    store.engine.dispose()


def test_verification_catches_a_corrupted_archive(tmp_path: Path) -> None:
    key = age_key(tmp_path)
    home = _home(tmp_path, "sqlite", key)
    settings = _settings(home)
    store = _store(settings)
    report = make_backup(settings, store)
    assert check_backups(settings, store).startswith(f"{home / 'backups'}: {report.name} ok")
    row = store.by_name(report.name)
    assert row is not None and row.verify_outcome == "checked"

    copy = home / "backups" / report.name
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x20
    copy.write_bytes(bytes(data))
    verified = verify_backup(report.name, key.identity_file, settings, store)
    assert not verified.ok
    assert verified.problems[0] == "the target's copy differs from the archive that was made (size or SHA-256)"
    assert "damaged" in verified.problems[1]
    with pytest.raises(BackupError, match="SHA-256 differs"):
        check_backups(settings, store)  # the weekly check without the key sees it too
    row = store.by_name(report.name)
    assert row is not None and row.verify_outcome == "failed"
    store.engine.dispose()


def test_retention_runs_after_the_upload_and_spares_other_homes(tmp_path: Path) -> None:
    key = age_key(tmp_path)
    home = _home(tmp_path, "sqlite", key, keep_daily=2)
    settings = _settings(home)
    folder = home / "backups"
    folder.mkdir()
    old = [archive_name(settings.label, datetime(2024, 1, day, 3, tzinfo=UTC)) for day in range(1, 6)]
    other = archive_name("another-home", datetime(2024, 1, 1, tzinfo=UTC))
    for name in [*old, other, "notes.txt"]:
        (folder / name).write_bytes(b"x")
    store = _store(settings)
    report = make_backup(settings, store)
    assert report.targets[0].deleted == old[:4]
    assert sorted(p.name for p in folder.iterdir()) == sorted([old[4], report.name, other, "notes.txt"])
    store.engine.dispose()


def test_a_failing_target_makes_a_partial_backup_that_is_recorded(sshd: SshServer, tmp_path: Path) -> None:
    key = age_key(tmp_path)
    wrong = keygen(tmp_path / "wrong_host")
    pin = " ".join(wrong.with_suffix(".pub").read_text().split()[:2])
    url = sshd.url(tmp_path / "remote")
    home = _home(tmp_path, "sqlite", key, targets=["backups", url], host_keys={sshd.host_port: pin})
    settings = BackupSettings.from_home(load_home(home))
    settings = BackupSettings(**{**settings.__dict__, "ssh_key": sshd.client_key})
    store = _store(settings)
    with pytest.raises(BackupError, match="copied to 1 of 2 target"):
        make_backup(settings, store)
    row = store.recent(1)[0]
    assert row.outcome == "partial"
    assert "host key has CHANGED" in (row.error or "")
    assert [t["outcome"] for t in row.targets] == ["ok", "failed"]
    assert (home / "backups" / row.file_name).exists() and not (tmp_path / "remote").exists()
    store.engine.dispose()


def test_no_recipient_no_backup(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", None, [], ["backups"])
    with pytest.raises(BackupError, match="no backup recipients"):
        make_backup(_settings(home), None)
    app = open_app(home)
    try:
        chores = app.chores()
        assert isinstance(chores["backup"], UnavailableChore) and "recipients" in chores["backup"].reason
    finally:
        app.close()


def test_the_scheduled_chores_back_up_and_check(tmp_path: Path) -> None:
    key = age_key(tmp_path)
    home = _home(tmp_path, "sqlite", key)
    app = open_app(home)
    try:
        chores = app.chores()
        backup, verify = chores["backup"], chores["verify"]
        assert callable(backup) and callable(verify)
        summary = backup("demo")
        assert summary.startswith("robohost-home-") and "copied to 1 of 1 target" in summary
        assert backup("another robot").startswith("covered by ")  # one backup of the home, not one per robot
        assert "ok" in verify("demo")
        rows = BackupStore(app.engine).recent()
        assert [(r.trigger, r.outcome, r.verify_outcome) for r in rows] == [("schedule", "ok", "checked")]
    finally:
        app.close()


# -- restore --------------------------------------------------------------------------------------------------
def _backup(tmp_path: Path, db_url: str) -> tuple[Path, AgeKey, Path, dict[str, list[tuple[object, ...]]]]:
    key = age_key(tmp_path)
    home = _home(tmp_path, db_url, key)
    settings = _settings(home)
    store = _store(settings)
    report = make_backup(settings, store)
    store.engine.dispose()
    return home, key, home / "backups" / report.name, table_rows(settings.database_url, skip=("backups",))


def test_restore_refuses_a_home_in_use_then_moves_it_aside(db_url: str, tmp_path: Path) -> None:
    home, key, archive, rows = _backup(tmp_path, db_url)
    url = load_home(home).database_url
    (home / "strategies" / "new_robot.py").write_text("# written after the backup\n")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM journal")
    engine.dispose()
    with pytest.raises(StateError, match="--force"):
        restore_archive(archive, key.identity_file, home)
    assert table_rows(url, skip=("backups",)) != rows  # refused: nothing changed

    report = restore_archive(archive, key.identity_file, home, force=True)
    assert table_rows(url, skip=("backups",)) == rows
    assert not (home / "strategies" / "new_robot.py").exists()
    assert report.moved_aside is not None
    assert (report.moved_aside / "strategies" / "new_robot.py").exists()  # the state before is kept aside
    assert (home / "secrets.toml").exists() and (home / "backups" / archive.name).exists()
    store = BackupStore(make_engine(url))
    assert store.by_name(archive.name).outcome == "ok"  # type: ignore[union-attr]
    store.engine.dispose()


def test_restore_into_a_new_home(tmp_path: Path) -> None:
    home, key, archive, rows = _backup(tmp_path, "sqlite")
    new = tmp_path / "new-home"
    report = restore_archive(archive, key.identity_file, new)
    assert report.moved_aside is None
    assert table_rows(f"sqlite:///{new / 'robohost.db'}", skip=("backups",)) == rows
    assert (new / "robohost.toml").read_text() == (home / "robohost.toml").read_text()
    assert not (new / "secrets.toml").exists()


def test_a_damaged_archive_changes_nothing(tmp_path: Path) -> None:
    home, key, archive, rows = _backup(tmp_path, "sqlite")
    data = bytearray(archive.read_bytes())
    data[-100] ^= 0x01
    archive.write_bytes(bytes(data))
    before = sorted(os.listdir(home))
    with pytest.raises(BackupError, match="damaged"):
        restore_archive(archive, key.identity_file, home, force=True)
    assert sorted(os.listdir(home)) == before
    assert table_rows(f"sqlite:///{home / 'robohost.db'}", skip=("backups",)) == rows


def test_restore_refuses_while_a_server_runs_the_robot(tmp_path: Path) -> None:
    home, key, archive, _ = _backup(tmp_path, "sqlite")
    engine = make_engine(f"sqlite:///{home / 'robohost.db'}")
    lease = robot_lease(engine, "sma-cross", "serve pid 4242@elsewhere")
    assert lease.try_acquire()
    try:
        with pytest.raises(StateError, match="robot sma-cross is run by serve pid 4242@elsewhere"):
            restore_archive(archive, key.identity_file, home, force=True)
        assert not list(home.glob(".before-restore-*"))  # nothing was moved
    finally:
        lease.release()
        engine.dispose()


def test_a_backup_clears_what_a_killed_one_left(tmp_path: Path) -> None:
    key = age_key(tmp_path)
    home = _home(tmp_path, "sqlite", key)
    settings = _settings(home)
    store = _store(settings)
    left = home / ".backup-killed"
    left.mkdir()
    (left / "archive.tar.zst").write_bytes(b"half")
    long_ago = datetime(2024, 1, 1, tzinfo=UTC)
    os.utime(left, (long_ago.timestamp(), long_ago.timestamp()))
    fresh = home / ".backup-running-now"  # another backup at work: left alone
    fresh.mkdir()
    store.start(settings.label, "robohost-home-20240101T000000.000Z.tar.zst.age", "schedule", 1, [])
    make_backup(settings, store)
    assert not left.exists() and fresh.exists()
    killed = store.by_name("robohost-home-20240101T000000.000Z.tar.zst.age")
    assert killed is not None and killed.outcome == "interrupted"
    store.engine.dispose()
