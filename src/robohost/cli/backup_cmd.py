"""``robohost backup`` (make one now; ``verify``, ``list``, ``pull``), ``robohost restore`` and ``robohost upgrade``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from robohost.adapters.backup.targets import open_target
from robohost.adapters.db.backups import BackupStore
from robohost.bootstrap import App
from robohost.cli.common import HOME_ENV, HomeOption, JsonOption, Settings, console, iso, opened, print_json
from robohost.config.backup_syntax import is_sftp, parse_sftp_url
from robohost.errors import BackupError, ConfigError
from robohost.services.backup.catalog import list_backups, pull_backups
from robohost.services.backup.make import make_backup
from robohost.services.backup.restore import restore_archive
from robohost.services.backup.retention import archive_sort_key
from robohost.services.backup.upgrade import UpgradeRequest, run_upgrade
from robohost.services.backup.verify import verify_backup

backup_app = typer.Typer(
    invoke_without_command=True,
    help="Make an encrypted backup now (no subcommand), or verify, list and pull backups.",
)

RecipientOption = Annotated[
    list[str] | None,
    typer.Option("--recipient", help="An age public key (age1...) that can open the backup; adds to the config's."),
]
TargetOption = Annotated[
    list[str] | None,
    typer.Option("--target", help="A folder or sftp://user@host:port/path; adds to the config's targets."),
]
IdentityOption = Annotated[
    Path, typer.Option("--identity", help="Your age identity file (private key); never stored on the server.")
]


def _home_path(home: Path | None) -> Path | None:
    chosen = home or Settings.home or (Path(os.environ[HOME_ENV]) if os.environ.get(HOME_ENV) else None)
    if chosen is not None:
        return chosen
    return Path.cwd() if (Path.cwd() / "robohost.toml").exists() else None


@contextmanager
def _maybe_opened(home: Path | None) -> Iterator[App | None]:
    """The home's app when there is a home (given, or the current folder); None on the owner's computer."""
    path = _home_path(home)
    if path is None:
        yield None
        return
    with opened(path) as app:
        yield app


def say(text: str, style: str | None = None) -> None:
    """Print one message as it is: no rich markup (messages hold '[backup]'), no wrapping."""
    console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _mb(size: int | None) -> str:
    return "" if size is None else f"{size / 1e6:.1f} MB"


@backup_app.callback()
def backup(
    ctx: typer.Context,
    home: HomeOption = None,
    recipient: RecipientOption = None,
    target: TargetOption = None,
    json: JsonOption = False,
) -> None:
    """Make an encrypted backup of the home now and copy it to every target (.tar.zst.age)."""
    if home is not None:
        Settings.home = home  # 'robohost backup --home H list' means H for the subcommand too
    if ctx.invoked_subcommand is not None:
        if recipient or target:
            raise ConfigError(
                f"--recipient and --target before '{ctx.invoked_subcommand}' apply only to making a backup"
            )
        return
    with opened(home) as app:
        settings = app.backup_settings(recipient or [], target or [])
        report = make_backup(settings, BackupStore(app.engine), trigger="manual")
    if json:
        print_json(
            {
                "name": report.name,
                "outcome": report.outcome,
                "size": report.size,
                "sha256": report.sha256,
                "seconds": round(report.seconds, 3),
                "snapshot_seconds": round(report.snapshot_seconds, 3),
                "max_stall_ms": round(report.max_stall_ms, 3),
                "row_counts": report.row_counts,
                "targets": [t.as_json() for t in report.targets],
            }
        )
        return
    say(f"backup {report.name}")
    say(
        f"  {_mb(report.size)}, sha256 {report.sha256[:16]}..., {report.seconds:.1f} s "
        f"(snapshot {report.snapshot_seconds:.1f} s; database held up at most {report.max_stall_ms:.0f} ms)"
    )
    for result in report.targets:
        removed = f"; retention removed {len(result.deleted)}" if result.deleted else ""
        say(f"  -> {result.target}: {result.outcome}{removed}")


@backup_app.command("verify")
def verify(
    identity: IdentityOption,
    archive: Annotated[
        str | None,
        typer.Argument(help="An archive file, or a backup's name on the target (default: the newest there)."),
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="Where to fetch it (default: the first).")] = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Download a backup, decrypt it, check every hash, restore its database temporarily and check it."""
    with _maybe_opened(home) as app:
        settings = app.backup_settings() if app else None
        store = BackupStore(app.engine) if app else None
        report = verify_backup(archive, identity, settings, store, target)
    if json:
        print_json(
            {
                "name": report.name,
                "ok": report.ok,
                "problems": report.problems,
                "files_checked": report.files_checked,
                "row_counts": report.row_counts,
            }
        )
    else:
        say(report.summary, "green" if report.ok else "red")
        for problem in report.problems[1:]:
            say(f"  {problem}")
    if not report.ok:
        raise typer.Exit(BackupError.exit_code)


@backup_app.command("list")
def list_cmd(
    target: Annotated[list[str] | None, typer.Option("--target", help="List only these targets.")] = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """The backups: recorded in the database and found on the targets, with their verification."""
    with opened(home) as app:
        listings, errors = list_backups(app.backup_settings(), BackupStore(app.engine), target)
    if json:
        print_json(
            {
                "backups": [
                    {
                        "name": item.name,
                        "created": item.created.isoformat() if item.created else None,
                        "size": item.size,
                        "locations": item.locations,
                        "outcome": item.record.outcome if item.record else None,
                        "verify_outcome": item.record.verify_outcome if item.record else None,
                        "verified_at": iso(item.record.verified_at) if item.record else None,
                    }
                    for item in listings
                ],
                "errors": errors,
            }
        )
    else:
        table = Table()
        table.add_column("name", overflow="fold")
        for column in ("size", "outcome", "copies", "verified"):
            table.add_column(column)
        for item in listings:
            record = item.record
            verified = f"{record.verify_outcome} {iso(record.verified_at)}" if record and record.verify_outcome else ""
            table.add_row(
                escape(item.name),
                _mb(item.size),
                record.outcome if record else "(not recorded here)",
                "\n".join(item.locations) or "none",
                verified,
            )
        console.print(table)  # the only rich markup: a table
        for error in errors:
            say(error, "red")
    if errors:
        raise typer.Exit(BackupError.exit_code)


@backup_app.command("pull")
def pull(
    target: Annotated[str, typer.Argument(help="A folder or sftp://user@host:port/path holding backups.")],
    to: Annotated[Path, typer.Option("--to", help="Where to put them (default: the current folder).")] = Path("."),
    name: Annotated[list[str] | None, typer.Option("--name", help="Only this backup (repeatable).")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Only the newest backup.")] = False,
    host_key: Annotated[
        str | None,
        typer.Option("--host-key", help="The SFTP server's pinned key ('ssh-ed25519 AAAA...' or SHA256:...)."),
    ] = None,
    ssh_key: Annotated[Path | None, typer.Option("--ssh-key", help="Your SSH private key for the SFTP server.")] = None,
    home: HomeOption = None,
) -> None:
    """Copy backups from a target to this computer (only those not already here)."""
    with _maybe_opened(home) as app:
        settings = app.backup_settings() if app else None
        host_keys = dict(settings.host_keys) if settings else {}
        if host_key and is_sftp(target):
            host_keys[parse_sftp_url(target).host_port] = host_key
        key = ssh_key or (settings.ssh_key if settings else None)
        passphrase = settings.ssh_key_passphrase if settings and not ssh_key else None
        source = open_target(target, settings.home if settings else Path.cwd(), host_keys, key, passphrase)
        try:
            names = list(name or [])
            if latest:
                listed = [f.name for f in source.list()]
                if not listed:
                    raise BackupError(f"{source.label}: no backups")
                names = [max(listed, key=archive_sort_key)]
            pulled = pull_backups(source, to, names, BackupStore(app.engine) if app else None)
        finally:
            source.close()
    for item in pulled:
        say(f"{'already here' if item.skipped else 'pulled'}: {item.path} ({_mb(item.size)})")
    say(f"{len(pulled)} backup(s) in {to.resolve()}; open one with: age -d -i key.txt NAME | zstd -d | tar -x")


def restore(
    archive: Annotated[Path, typer.Argument(help="The backup file (.tar.zst.age) to restore.")],
    identity: IdentityOption,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a home in use (its state is first moved aside).")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Restore a robot home and its database from a backup; refuses to replace a home in use without --force."""
    target = _home_path(home) or Path.cwd()
    report = restore_archive(archive, identity, target, force=force)
    say(f"restored {archive.name} into {report.home}")
    if report.moved_aside is not None:
        say(f"  the previous state was moved to {report.moved_aside}")
    say(f"  {report.files} files; database {report.database}: {sum(report.row_counts.values())} rows")
    if report.migrated_from:
        say(f"  database migrated from revision {report.migrated_from}")


def upgrade(
    package: Annotated[str, typer.Argument(help="A wheel file, or a requirement such as 'robohost==0.2.0'.")],
    index_url: Annotated[str | None, typer.Option("--index-url", help="The package index to install from.")] = None,
    no_deps: Annotated[bool, typer.Option("--no-deps", help="Install the package without its dependencies.")] = False,
    identity: Annotated[
        Path | None, typer.Option("--identity", help="Also decrypt and check the pre-upgrade backup.")
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="The systemd unit running 'robohost serve' (stop/start with it).")
    ] = None,
    home: HomeOption = None,
) -> None:
    """Upgrade robohost safely: back up, stop, install, migrate, start, check; roll back on any failure."""
    with opened(home) as app:
        settings = app.backup_settings()
        robots = list(app.home.config.robots)
        engine_url = app.home.database_url
        store = BackupStore(app.engine)
        request = UpgradeRequest(package, index_url, no_deps, identity, service)
        result = run_upgrade(request, settings, store, robots, engine_url, app.engine, progress=say)
    say(result.message, "green" if result.ok else "red")
    if not result.ok:
        raise typer.Exit(BackupError.exit_code)
