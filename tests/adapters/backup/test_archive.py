"""The archive format: tar + zstd + age, a manifest with every file's SHA-256; readable by the standard tools."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pyrage
import pytest
import zstandard

from backup_support import age_key, keygen
from robohost.adapters.backup.archive import (
    Manifest,
    load_identities,
    parse_recipients,
    read_age_header,
    read_archive,
    ssh_key_tag,
    write_archive,
)
from robohost.errors import BackupError
from system import need_program


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "strategies").mkdir(parents=True)
    (home / "logs").mkdir()
    (home / "empty").mkdir()
    (home / "robohost.toml").write_text("[robots.x]\n")
    (home / "strategies" / "bot.py").write_text("print('robot')\n")
    (home / "logs" / "robohost.log").write_bytes(b"x" * 100_000)
    (home / "secrets.toml").write_text('[database]\nurl = "postgresql://u:TOPSECRET@h/db"\n')
    (home / "robohost.db").write_bytes(b"the live database")
    return home


def _manifest() -> Manifest:
    return Manifest("9.9.9", "0004", "2024-01-02T03:04:05Z", "home", {"kind": "sqlite", "row_counts": {"runs": 1}})


def _write(tmp_path: Path, recipients: list[str]) -> tuple[Path, Path]:
    home = _home(tmp_path)
    snapshot = tmp_path / "snap" / "robohost.db"
    snapshot.parent.mkdir()
    snapshot.write_bytes(b"snapshot bytes" * 1000)
    work = tmp_path / "work"
    work.mkdir()
    dest = tmp_path / "out.tar.zst.age"
    excluded = {"secrets.toml", "robohost.db"}
    facts = write_archive(
        dest, _manifest(), snapshot, home, lambda rel: rel in excluded, parse_recipients(recipients), work
    )
    assert facts.size == dest.stat().st_size
    assert facts.sha256 == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert list(work.iterdir()) == []  # the unencrypted tar is gone
    return dest, home


def test_round_trip_checks_every_file_and_leaves_secrets_out(tmp_path: Path) -> None:
    key = age_key(tmp_path)
    archive, _ = _write(tmp_path, [key.recipient])
    out = tmp_path / "read"
    contents = read_archive(archive, load_identities(key.identity_file), tmp_path / "w", home_dest=out)
    assert contents.problems == []
    manifest = contents.manifest
    assert manifest is not None
    paths = sorted(f.path for f in manifest.files)
    assert paths == ["database/robohost.db", "home/logs/robohost.log", "home/robohost.toml", "home/strategies/bot.py"]
    assert contents.files_checked == 4
    assert manifest.robohost_version == "9.9.9" and manifest.schema_revision == "0004"
    assert manifest.database["file"] == "database/robohost.db"
    assert (out / "strategies" / "bot.py").read_text() == "print('robot')\n"
    assert (out / "empty").is_dir()
    assert not (out / "secrets.toml").exists()
    assert contents.database_file is not None and contents.database_file.read_bytes() == b"snapshot bytes" * 1000
    assert b"TOPSECRET" not in zstandard.ZstdDecompressor().decompressobj().decompress(
        pyrage.decrypt(archive.read_bytes(), load_identities(key.identity_file))
    )


def test_standard_age_zstd_and_tar_open_it(tmp_path: Path) -> None:
    age, zstd = need_program("age", "age"), need_program("zstd", "zstd")
    key = age_key(tmp_path)
    archive, _ = _write(tmp_path, [key.recipient])
    out = tmp_path / "opened"
    out.mkdir()
    pipeline = f"'{age}' -d -i '{key.identity_file}' '{archive}' | '{zstd}' -d | tar -x -C '{out}'"
    subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], check=True, timeout=60)
    root = out / "robohost-backup"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format"] == "robohost-backup/1"
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK") == 4
    assert not (root / "home" / "secrets.toml").exists()


def test_several_recipients_each_can_open_it(tmp_path: Path) -> None:
    first, second = age_key(tmp_path, "a.txt"), age_key(tmp_path, "b.txt")
    ssh = keygen(tmp_path / "ssh_id")
    ssh_public = (tmp_path / "ssh_id.pub").read_text().strip()
    archive, _ = _write(tmp_path, [first.recipient, second.recipient, ssh_public])
    for identity in (first.identity_file, second.identity_file, ssh):
        assert read_archive(archive, load_identities(identity), tmp_path / f"w-{identity.name}").problems == []
    header = read_age_header(archive.read_bytes()[:16384])
    assert header.count("X25519") == 2
    assert [args[0] for kind, args in header.stanzas if kind == "ssh-ed25519"] == [ssh_key_tag(ssh_public)]


def test_a_wrong_key_or_a_damaged_archive_is_refused(tmp_path: Path) -> None:
    key, stranger = age_key(tmp_path, "a.txt"), age_key(tmp_path, "b.txt")
    archive, _ = _write(tmp_path, [key.recipient])
    with pytest.raises(BackupError, match="cannot decrypt"):
        read_archive(archive, load_identities(stranger.identity_file), tmp_path / "w1")
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="damaged"):
        read_archive(archive, load_identities(key.identity_file), tmp_path / "w2")


def _custom_archive(tmp_path: Path, recipient: str, members: dict[str, bytes]) -> Path:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / "custom.tar.zst.age"
    compressed = zstandard.ZstdCompressor().compress(raw.getvalue())
    path.write_bytes(pyrage.encrypt(compressed, parse_recipients([recipient])))
    return path


def test_hash_mismatch_missing_and_unlisted_files_are_reported(tmp_path: Path) -> None:
    key = age_key(tmp_path)
    good = hashlib.sha256(b"db").hexdigest()
    manifest = Manifest("1", "0004", "t", "home", {"kind": "sqlite"})
    listed = {
        **json.loads(manifest.to_json()),
        "files": [
            {"path": "database/robohost.db", "size": 2, "sha256": good},
            {"path": "home/a.txt", "size": 1, "sha256": "0" * 64},
            {"path": "home/gone.txt", "size": 1, "sha256": "0" * 64},
        ],
    }
    archive = _custom_archive(
        tmp_path,
        key.recipient,
        {
            "robohost-backup/database/robohost.db": b"db",
            "robohost-backup/home/a.txt": b"a",
            "robohost-backup/home/extra.txt": b"e",
            "robohost-backup/manifest.json": json.dumps(listed).encode(),
        },
    )
    problems = read_archive(archive, load_identities(key.identity_file), tmp_path / "w").problems
    assert problems == [
        "home/a.txt: SHA-256 differs from the manifest's",
        "home/gone.txt: listed in the manifest but missing from the archive",
        "home/extra.txt: in the archive but not in the manifest",
    ]


def test_members_outside_the_backup_folder_are_refused(tmp_path: Path) -> None:
    key = age_key(tmp_path)
    archive = _custom_archive(
        tmp_path,
        key.recipient,
        {
            "robohost-backup/../escape.txt": b"x",
            "/etc/evil": b"x",
            "robohost-backup/manifest.json": _manifest().to_json(),
        },
    )
    out = tmp_path / "out"
    problems = read_archive(archive, load_identities(key.identity_file), tmp_path / "w", home_dest=out).problems
    assert [p.split(" (")[0] for p in problems] == [
        "refused member 'robohost-backup/../escape.txt'",
        "refused member '/etc/evil'",
    ]
    assert not (tmp_path / "escape.txt").exists()


def test_keys_are_checked(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no recipients"):
        parse_recipients([])
    with pytest.raises(BackupError, match="not a valid public key"):
        parse_recipients(["age1notakey"])
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n")
    with pytest.raises(BackupError, match="holds no age identity"):
        load_identities(empty)
    with pytest.raises(BackupError, match="cannot read the identity file"):
        load_identities(tmp_path / "missing.txt")


def test_age_header_without_the_key(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="not an age file"):
        read_age_header(b"PK\x03\x04 a zip file")
    with pytest.raises(BackupError, match="incomplete"):
        read_age_header(b"age-encryption.org/v1\n-> X25519 abc\n")
