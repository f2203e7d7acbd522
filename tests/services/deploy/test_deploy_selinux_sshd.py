"""The rendered SELinux module compiles (``checkmodule -M -m``) and packages with its file contexts
(``semodule_package``); the sshd drop-in passes ``sshd -t`` and makes sshd key-only without root."""

from __future__ import annotations

from pathlib import Path

from deploy_support import run, settings

from robohost.services.deploy.selinux import render_fc, render_te
from robohost.services.deploy.sshd import render_sshd
from system import need_program


def test_the_selinux_module_compiles_and_packages(tmp_path: Path) -> None:
    checkmodule = need_program("checkmodule", "checkpolicy")
    package = need_program("semodule_package", "semodule-utils")
    (tmp_path / "robohost.te").write_text(render_te(settings()))
    (tmp_path / "robohost.fc").write_text(render_fc(settings(home=Path("/srv/robo.host"))))
    compiled = run(checkmodule, "-M", "-m", "-o", str(tmp_path / "robohost.mod"), str(tmp_path / "robohost.te"))
    assert compiled.returncode == 0, compiled.stderr
    packaged = run(
        package, "-o", str(tmp_path / "robohost.pp"), "-m", str(tmp_path / "robohost.mod"),
        "-f", str(tmp_path / "robohost.fc"),
    )  # fmt: skip
    assert packaged.returncode == 0, packaged.stderr
    assert (tmp_path / "robohost.pp").stat().st_size > 0


def test_the_module_confines_writes_to_the_home_and_names_the_ports() -> None:
    te = render_te(settings(dashboard_port=9443))
    fc = render_fc(settings(home=Path("/srv/robo.host")))
    assert "type_transition init_t robohost_exec_t:process robohost_t;" in te
    assert "semanage port -a -t robohost_port_t -p tcp 9443" in te
    statements = " ".join(te.split("\n")).replace(";", ";\n").splitlines()  # one allow rule per line
    writes = [s.strip() for s in statements if s.strip().startswith("allow robohost_t") and " write " in s]
    on_files = [s for s in writes if ":file " in s or ":dir " in s]
    assert on_files == [s for s in on_files if "robohost_home_t:" in s or "tmp_t:dir" in s]
    assert any("robohost_home_t:file" in s for s in on_files)
    assert "/srv/robo\\.host(/.*)?\tsystem_u:object_r:robohost_home_t:s0" in fc.splitlines()


def test_a_module_with_an_undeclared_type_is_refused(tmp_path: Path) -> None:
    """The compile check is real: a reference to an undeclared type fails."""
    checkmodule = need_program("checkmodule", "checkpolicy")
    te = render_te(settings()).replace("type robohost_home_t;\n", "")
    (tmp_path / "bad.te").write_text(te)
    result = run(checkmodule, "-M", "-m", "-o", str(tmp_path / "bad.mod"), str(tmp_path / "bad.te"))
    assert result.returncode != 0 and "robohost_home_t" in result.stdout + result.stderr


def test_the_sshd_drop_in_is_valid_and_key_only(tmp_path: Path) -> None:
    sshd = need_program("sshd", "openssh-server")
    keygen = need_program("ssh-keygen", "openssh-client")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    assert run(keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "host_key")).returncode == 0
    drop_in = tmp_path / "50-robohost.conf"
    drop_in.write_text(render_sshd(settings(ssh_port=2222)))
    config = tmp_path / "sshd_config"
    config.write_text(f"Include {drop_in}\nHostKey {tmp_path / 'host_key'}\nPidFile {tmp_path / 'sshd.pid'}\n")
    checked = run(sshd, "-t", "-f", str(config))
    assert checked.returncode == 0, checked.stderr
    effective = run(sshd, "-T", "-f", str(config)).stdout.splitlines()
    for line in (
        "port 2222",
        "permitrootlogin no",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "pubkeyauthentication yes",
        "authenticationmethods publickey",
    ):
        assert line in effective, line
