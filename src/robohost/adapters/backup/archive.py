"""The backup archive: a standard tar, compressed with zstd, encrypted with age; openable without robohost.

``age -d -i key.txt NAME.tar.zst.age | zstd -d | tar -x`` gives a folder ``robohost-backup/`` holding:

- ``database/robohost.db`` (a SQLite file) or ``database/robohost.pgdump`` (``pg_dump --format=custom``);
- ``home/…``: the robot home without ``secrets.toml``, the live database and the local backup folders;
- ``manifest.json``: the format (``robohost-backup/1``), robohost's version, the database schema revision,
  the database kind and its row count per table, and every file's path, size and SHA-256;
- ``SHA256SUMS``: the same hashes for ``sha256sum -c SHA256SUMS`` (run inside ``robohost-backup/``).

The manifest and the sums come last in the tar: they are written once every file has been hashed as it was
stored. The archive is encrypted to one or more age recipients (``age1…`` or SSH public keys); without one of
their private keys (identities) nobody can read it, the server that made it included.

Must not import ``robohost.config``, ``robohost.cli`` or ``robohost.services``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pyrage
import zstandard

from robohost.errors import BackupError

FORMAT = "robohost-backup/1"
ROOT = "robohost-backup"
ARCHIVE_SUFFIX = ".tar.zst.age"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
DATABASE_DIR = "database"
HOME_DIR = "home"
CHUNK = 1 << 20
ZSTD_LEVEL = 3
AGE_MAGIC = b"age-encryption.org/v1"


@dataclass(frozen=True)
class FileEntry:
    """One stored file: its path inside ``robohost-backup/``, size and SHA-256 (hex)."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What an archive holds; stored as ``manifest.json``."""

    robohost_version: str
    schema_revision: str | None
    created_at: str
    label: str
    database: dict[str, Any]
    """``kind`` (sqlite, postgresql), ``file`` (path inside the archive), ``row_counts``, ``schema`` (PostgreSQL)."""
    files: list[FileEntry] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    format: str = FORMAT

    def to_json(self) -> bytes:
        """The manifest as indented JSON."""
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse ``manifest.json``; a ``BackupError`` when it is not a robohost manifest."""
        try:
            raw = json.loads(data)
            files = [FileEntry(**entry) for entry in raw.pop("files")]
            manifest = cls(files=files, **raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"the archive's {MANIFEST} is not a robohost manifest: {exc}") from None
        if manifest.format != FORMAT:
            raise BackupError(f"unknown archive format {manifest.format!r} (this robohost reads {FORMAT})")
        return manifest


@dataclass(frozen=True)
class ArchiveFacts:
    """A written archive: where, how big, its SHA-256 and its manifest."""

    path: Path
    size: int
    sha256: str
    manifest: Manifest


# -- keys -----------------------------------------------------------------------------------------------------
def parse_recipients(keys: Iterable[str]) -> list[Any]:
    """age recipients from public keys (``age1…``, ``ssh-ed25519 …``, ``ssh-rsa …``)."""
    recipients: list[Any] = []
    for key in keys:
        try:
            if key.startswith("age1"):
                recipients.append(pyrage.x25519.Recipient.from_str(key))
            else:
                recipients.append(pyrage.ssh.Recipient.from_str(key))
        except pyrage.RecipientError as exc:
            raise BackupError(f"recipient {key[:24]}...: not a valid public key ({exc})") from None
    if not recipients:
        raise BackupError(
            "no recipients: give at least one age public key ([backup] recipients in robohost.toml or --recipient); "
            "make one with 'age-keygen -o key.txt' on your own computer"
        )
    return recipients


def load_identities(path: Path) -> list[Any]:
    """The private keys in an age identity file (``AGE-SECRET-KEY-1…`` lines) or an OpenSSH private key file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read the identity file {path}: {exc.strerror}") from None
    identities: list[Any] = []
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            identities.append(pyrage.ssh.Identity.from_buffer(data))
        else:
            for line in data.decode("utf-8", "replace").splitlines():
                line = line.strip()
                if line.upper().startswith("AGE-SECRET-KEY-"):
                    identities.append(pyrage.x25519.Identity.from_str(line))
    except pyrage.IdentityError:
        raise BackupError(f"{path}: not a valid age identity or unencrypted SSH private key") from None
    if not identities:
        raise BackupError(f"{path} holds no age identity (AGE-SECRET-KEY-1...) or SSH private key")
    return identities


# -- hashing file wrappers ------------------------------------------------------------------------------------
class HashingReader(io.RawIOBase):
    """Reads from ``source``, hashing (and counting) what passes."""

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self.source = source
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        """Always readable."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer``, hashing the bytes."""
        data = self.source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.digest.update(data)
        self.size += n
        return n


class HashingWriter:
    """Writes to ``target``, hashing (and counting) what passes."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        """Write ``data``, hashing it."""
        self.digest.update(data)
        self.size += len(data)
        return self.target.write(data)

    def flush(self) -> None:
        """Flush the target."""
        self.target.flush()


def file_sha256(path: Path) -> tuple[int, str]:
    """Size and SHA-256 (hex) of a file."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# -- writing --------------------------------------------------------------------------------------------------
def home_entries(home: Path, excluded: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """Folders and regular files of ``home`` (posix paths relative to it), minus those ``excluded`` says.

    Symbolic links are not followed and not stored.
    """
    dirs, files = [], []
    for root, subdirs, names in os.walk(home):
        rel_root = Path(root).relative_to(home)
        kept = []
        for sub in sorted(subdirs):
            rel = (rel_root / sub).as_posix()
            if not (Path(root) / sub).is_symlink() and not excluded(rel):
                kept.append(sub)
                dirs.append(rel)
        subdirs[:] = kept
        for name in sorted(names):
            rel = (rel_root / name).as_posix()
            path = Path(root) / name
            if not path.is_symlink() and path.is_file() and not excluded(rel):
                files.append(rel)
    return dirs, files


def _dir_info(name: str, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    info.mtime = int(mtime)
    return info


def _add_file(tar: tarfile.TarFile, name: str, path: Path) -> FileEntry:
    with path.open("rb") as fh:
        stat = os.fstat(fh.fileno())
        info = tarfile.TarInfo(name)
        info.size = stat.st_size
        info.mode = stat.st_mode & 0o755
        info.mtime = int(stat.st_mtime)
        reader = HashingReader(fh)
        tar.addfile(info, reader)  # copies exactly info.size bytes through the hashing reader
    return FileEntry(name.removeprefix(ROOT + "/"), reader.size, reader.digest.hexdigest())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def sums_text(files: Iterable[FileEntry]) -> bytes:
    """``SHA256SUMS`` in the format of ``sha256sum`` (paths relative to ``robohost-backup/``)."""
    return "".join(f"{entry.sha256}  {entry.path}\n" for entry in files).encode()


def write_archive(
    dest: Path,
    manifest: Manifest,
    database_file: Path,
    home: Path,
    excluded: Callable[[str], bool],
    recipients: list[Any],
    work_dir: Path,
) -> ArchiveFacts:
    """Write the encrypted archive ``dest``: the database snapshot, the home's files, the manifest, the sums.

    ``manifest`` gives everything but ``files``, which are filled in here. The compressed tar is written to
    ``work_dir`` first (it holds no secrets), then encrypted into ``dest`` and removed.
    """
    plain = work_dir / "archive.tar.zst"
    dirs, files = home_entries(home, excluded)
    entries: list[FileEntry] = []
    now = time.time()
    database_name = f"{DATABASE_DIR}/{database_file.name}"
    try:
        with plain.open("wb") as raw:
            compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
            with (
                compressor.stream_writer(raw, closefd=False) as zstd_out,
                tarfile.open(fileobj=zstd_out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
            ):
                for name in (ROOT, f"{ROOT}/{DATABASE_DIR}", f"{ROOT}/{HOME_DIR}"):
                    tar.addfile(_dir_info(name, now))
                entries.append(_add_file(tar, f"{ROOT}/{database_name}", database_file))
                for rel in dirs:
                    tar.addfile(_dir_info(f"{ROOT}/{HOME_DIR}/{rel}", (home / rel).stat().st_mtime))
                for rel in files:
                    entries.append(_add_file(tar, f"{ROOT}/{HOME_DIR}/{rel}", home / rel))
                full = Manifest(
                    **{**asdict(manifest), "files": entries, "database": {**manifest.database, "file": database_name}}
                )
                _add_bytes(tar, f"{ROOT}/{MANIFEST}", full.to_json())
                _add_bytes(tar, f"{ROOT}/{SUMS}", sums_text(entries))
        with plain.open("rb") as source, dest.open("wb") as out:
            writer = HashingWriter(out)
            pyrage.encrypt_io(source, writer, recipients)
            out.flush()
            os.fsync(out.fileno())
    except (OSError, tarfile.TarError, zstandard.ZstdError, pyrage.EncryptError) as exc:
        dest.unlink(missing_ok=True)
        raise BackupError(f"writing the archive failed: {exc}") from None
    finally:
        plain.unlink(missing_ok=True)
    return ArchiveFacts(dest, writer.size, writer.digest.hexdigest(), full)


# -- reading --------------------------------------------------------------------------------------------------
@dataclass
class ArchiveContents:
    """What reading an archive found: the manifest, where the database snapshot went, and any problems."""

    manifest: Manifest | None = None
    database_file: Path | None = None
    problems: list[str] = field(default_factory=list)
    files_checked: int = 0


def _safe_name(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != ROOT:
        return None
    return path


def decrypt_archive(archive: Path, identities: list[Any], dest: Path) -> None:
    """Decrypt ``archive`` into ``dest`` (the compressed tar); a ``BackupError`` says why it could not."""
    try:
        with archive.open("rb") as source, dest.open("wb") as out:
            pyrage.decrypt_io(source, out, identities)
    except pyrage.DecryptError as exc:
        dest.unlink(missing_ok=True)
        raise BackupError(f"cannot decrypt {archive.name}: {exc} (is it encrypted to this identity?)") from None
    except OSError as exc:
        dest.unlink(missing_ok=True)
        if isinstance(exc, FileNotFoundError) and exc.filename == str(archive):
            raise BackupError(f"{archive} not found") from None
        raise BackupError(f"cannot decrypt {archive.name}: the archive is damaged ({exc})") from None


def read_archive(
    archive: Path, identities: list[Any], work_dir: Path, home_dest: Path | None = None
) -> ArchiveContents:
    """Decrypt, decompress and read ``archive``, checking every file against the manifest.

    The database snapshot is written to ``work_dir/database/``; the home's files to ``home_dest`` when
    given (else only hashed). Problems (a hash that differs, a missing or unlisted file, a damaged stream)
    are returned, not raised; a ``BackupError`` means the archive could not be decrypted at all.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    plain = work_dir / "archive.tar.zst"
    decrypt_archive(archive, identities, plain)
    found = ArchiveContents()
    seen: dict[str, FileEntry] = {}
    manifest_bytes: bytes | None = None
    try:
        with (
            plain.open("rb") as raw,
            zstandard.ZstdDecompressor().stream_reader(raw) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            for member in tar:
                path = _safe_name(member.name)
                if path is None or not (member.isfile() or member.isdir()):
                    found.problems.append(f"refused member {member.name!r} (only files and folders under {ROOT}/)")
                    continue
                if member.isdir():
                    if home_dest is not None and path.parts[1:2] == (HOME_DIR,):
                        (home_dest / Path(*path.parts[2:])).mkdir(parents=True, exist_ok=True)
                    continue
                rel = PurePosixPath(*path.parts[1:]).as_posix()
                source = tar.extractfile(member)
                assert source is not None
                if rel in (MANIFEST, SUMS):
                    data = source.read()
                    if rel == MANIFEST:
                        manifest_bytes = data
                    continue
                target = _member_target(path, work_dir, home_dest)
                seen[rel] = _copy_hashed(source, target, rel)
                if path.parts[1] == DATABASE_DIR:
                    found.database_file = target
    except (tarfile.TarError, zstandard.ZstdError, OSError, EOFError) as exc:
        found.problems.append(f"the archive's contents are damaged: {exc}")
    finally:
        plain.unlink(missing_ok=True)
    if manifest_bytes is None:
        found.problems.append(f"the archive holds no {MANIFEST}")
        return found
    found.manifest = Manifest.from_json(manifest_bytes)
    _compare(found, seen)
    return found


def _member_target(path: PurePosixPath, work_dir: Path, home_dest: Path | None) -> Path | None:
    if path.parts[1] == DATABASE_DIR:
        target = work_dir / DATABASE_DIR / Path(*path.parts[2:])
    elif path.parts[1] == HOME_DIR and home_dest is not None:
        target = home_dest / Path(*path.parts[2:])
    else:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _copy_hashed(source: IO[bytes], target: Path | None, rel: str) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    out = target.open("wb") if target is not None else None
    try:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if out is not None:
                out.write(chunk)
    finally:
        if out is not None:
            out.close()
    return FileEntry(rel, size, digest.hexdigest())


def _compare(found: ArchiveContents, seen: dict[str, FileEntry]) -> None:
    assert found.manifest is not None
    listed = {entry.path: entry for entry in found.manifest.files}
    for rel, entry in listed.items():
        got = seen.get(rel)
        if got is None:
            found.problems.append(f"{rel}: listed in the manifest but missing from the archive")
        elif got.size != entry.size:
            found.problems.append(f"{rel}: {got.size} bytes, the manifest says {entry.size}")
        elif got.sha256 != entry.sha256:
            found.problems.append(f"{rel}: SHA-256 differs from the manifest's")
        else:
            found.files_checked += 1
    for rel in sorted(set(seen) - set(listed)):
        found.problems.append(f"{rel}: in the archive but not in the manifest")


# -- the age header, readable without a key -------------------------------------------------------------------
@dataclass(frozen=True)
class AgeHeader:
    """The recipient stanzas of an age file: their types and, for SSH recipients, the key tags."""

    stanzas: list[tuple[str, list[str]]]

    def count(self, kind: str) -> int:
        """How many stanzas of ``kind`` (``X25519``, ``ssh-ed25519``, ``ssh-rsa``)."""
        return sum(1 for stanza_type, _ in self.stanzas if stanza_type == kind)


_STANZA = re.compile(rb"^-> (\S+)((?: \S+)*)$")


def read_age_header(head: bytes) -> AgeHeader:
    """Parse the header at the start of an age file (its first few kilobytes); ``BackupError`` if malformed."""
    lines = head.split(b"\n")
    if not lines or lines[0] != AGE_MAGIC:
        raise BackupError("not an age file: the header does not start with 'age-encryption.org/v1'")
    stanzas: list[tuple[str, list[str]]] = []
    for line in lines[1:]:
        if line.startswith(b"--- "):
            if not stanzas:
                raise BackupError("the age header has no recipient")
            return AgeHeader(stanzas)
        match = _STANZA.match(line)
        if match:
            stanzas.append((match.group(1).decode(), match.group(2).decode().split()))
    raise BackupError("the age header is incomplete (no '---' line)")


def ssh_key_tag(public_key: str) -> str:
    """The tag an SSH recipient's stanza carries: the first 4 bytes of SHA-256 of the key, in base64."""
    blob = base64.b64decode(public_key.split()[1])
    return base64.b64encode(hashlib.sha256(blob).digest()[:4]).decode().rstrip("=")
