"""The whole round trip through the ``robohost`` command: a robot trades, ``robohost backup`` sends an encrypted
archive to a real SFTP server (and a local folder), the owner pulls it from another folder without a home,
opens it with Debian's ``age``, ``zstd`` and ``tar``, and ``robohost restore`` brings back identical data;
``robohost backup verify`` passes, then catches a corrupted copy.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from backup_support import SshServer, age_key, env_without_home, sshd, table_rows
from system import need_program

__all__ = ["sshd"]
ROBOHOST = str(Path(sys.executable).with_name("robohost"))


def _cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [ROBOHOST, *args], cwd=cwd, env=env_without_home(), capture_output=True, text=True, timeout=300, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"robohost {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def test_backup_sftp_pull_open_with_standard_tools_restore_identical(sshd: SshServer, tmp_path: Path) -> None:
    age, zstd = need_program("age", "age"), need_program("zstd", "zstd")
    owner = tmp_path / "owner"  # the owner's computer: the private key lives here, never on the server
    owner.mkdir()
    key = age_key(owner)
    home = tmp_path / "server" / "home"
    _cli("init", str(home), cwd=tmp_path)
    _cli("--home", str(home), "run", "--no-progress", cwd=tmp_path)
    remote = tmp_path / "offsite" / "robohost"
    url = sshd.url(remote)
    with (home / "robohost.toml").open("a") as fh:
        fh.write(
            f'\n[backup]\nrecipients = ["{key.recipient}"]\ntargets = ["backups", "{url}"]\n'
            f'host_keys = {{ "{sshd.host_port}" = "{sshd.host_key}" }}\n'
        )
    with (home / "secrets.toml").open("a") as fh:
        fh.write(f'\n[backup]\nssh_key = "{sshd.client_key}"\n')
    original = table_rows(f"sqlite:///{home / 'robohost.db'}", skip=("backups",))
    assert len(original["fills"]) > 10 and len(original["equity_points"]) > 1000

    made = json.loads(_cli("--home", str(home), "backup", "--json", cwd=tmp_path).stdout)
    name = made["name"]
    assert name.endswith(".tar.zst.age") and made["outcome"] == "ok"
    assert [t["outcome"] for t in made["targets"]] == ["ok", "ok"]
    assert (remote / name).stat().st_size == made["size"]
    assert not any(p.name.endswith(".partial") for p in remote.iterdir())

    # the owner pulls from the SFTP server, with no home at hand
    pulled = owner / "backups"
    _cli(
        "backup", "pull", url, "--to", str(pulled), "--host-key", sshd.host_key, "--ssh-key", str(sshd.client_key),
        cwd=owner,
    )  # fmt: skip
    archive = pulled / name
    assert archive.read_bytes() == (home / "backups" / name).read_bytes()

    # ... and opens it with the standard tools, exactly as the README says
    opened = owner / "opened"
    opened.mkdir()
    pipeline = f"'{age}' -d -i '{key.identity_file}' '{archive}' | '{zstd}' -d | tar -x -C '{opened}'"
    subprocess.run(["bash", "-o", "pipefail", "-c", pipeline], check=True, timeout=120)
    root = opened / "robohost-backup"
    manifest = json.loads((root / "manifest.json").read_text())
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True, timeout=60)
    assert sums.returncode == 0 and sums.stdout.count(": OK") == len(manifest["files"])
    assert not (root / "home" / "secrets.toml").exists()
    with sqlite3.connect(root / "database" / "robohost.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM fills").fetchone()[0] == len(original["fills"])

    # restore on a new machine: identical data
    new_home = tmp_path / "new-server" / "home"
    _cli("restore", str(archive), "--identity", str(key.identity_file), "--home", str(new_home), cwd=tmp_path)
    assert table_rows(f"sqlite:///{new_home / 'robohost.db'}", skip=("backups",)) == original
    assert _cli("--home", str(new_home), "status", cwd=tmp_path).returncode == 0

    # a home in use is only replaced with --force, after its state is moved aside
    refused = _cli("restore", str(archive), "--identity", str(key.identity_file), "--home", str(home), cwd=tmp_path,
                   check=False)  # fmt: skip
    assert refused.returncode == 5 and "--force" in refused.stderr
    _cli("restore", str(archive), "--identity", str(key.identity_file), "--home", str(home), "--force", cwd=tmp_path)
    assert table_rows(f"sqlite:///{home / 'robohost.db'}", skip=("backups",)) == original
    assert len(list(home.glob(".before-restore-*"))) == 1

    # verification: the newest backup on the SFTP target passes; a corrupted copy does not
    verify = _cli("--home", str(home), "backup", "verify", "--identity", str(key.identity_file), "--target", url,
                  cwd=tmp_path)  # fmt: skip
    assert "OK - decrypted" in verify.stdout
    listed = json.loads(_cli("--home", str(home), "backup", "list", "--json", cwd=tmp_path).stdout)
    entry = next(b for b in listed["backups"] if b["name"] == name)
    assert (entry["outcome"], entry["verify_outcome"], len(entry["locations"])) == ("ok", "ok", 2)
    data = bytearray((remote / name).read_bytes())
    data[len(data) // 3] ^= 0x04
    (remote / name).write_bytes(bytes(data))
    bad = _cli("--home", str(home), "backup", "verify", name, "--identity", str(key.identity_file), "--target", url,
               cwd=tmp_path, check=False)  # fmt: skip
    assert bad.returncode == 9
    assert "FAILED - the target's copy differs" in bad.stdout


def test_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _cli("init", str(home), cwd=tmp_path)
    none = _cli("--home", str(home), "backup", cwd=tmp_path, check=False)
    assert none.returncode == 9
    assert none.stderr.startswith("error: no backup recipients") and none.stderr.count("\n") == 1
    private = _cli("--home", str(home), "backup", "--recipient", "AGE-SECRET-KEY-1ABC", cwd=tmp_path, check=False)
    assert private.returncode == 2 and "--recipient: this is a private key" in private.stderr
    assert "ABC" not in private.stderr
    misplaced = _cli("backup", "--home", str(home), "--target", "x", "list", cwd=tmp_path, check=False)
    assert misplaced.returncode == 2 and "apply only to making a backup" in misplaced.stderr
