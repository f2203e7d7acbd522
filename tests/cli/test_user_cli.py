"""``robohost user`` and ``robohost web cert``, and what ``robohost init`` says about the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from robohost.adapters.db.engine import make_engine
from robohost.cli.app import app
from robohost.errors import RobohostError

PASSWORD = "a sufficiently long password"


def _run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    env = {"ROBOHOST_HOME": None, "ROBOHOST_DATABASE_URL": None, "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), input=stdin, env=env)
    if isinstance(result.exception, RobohostError):  # what main() turns into "error: ..." and the exit code
        return result.exception.exit_code, result.output + str(result.exception)
    return result.exit_code, result.output


def test_users_tokens_and_sign_out_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, out = _run("init", str(home))
    assert code == 0
    fingerprint = re.search(r"CA SHA-256 fingerprint: ([0-9A-F:]{95})", out)
    assert fingerprint is not None, out
    assert "user add NAME" in out
    code, cert = _run("--home", str(home), "web", "cert")
    assert code == 0 and fingerprint.group(1) in cert and "SPKI SHA-256" in cert

    code, out = _run("--home", str(home), "user", "add", "alice", "--password-stdin", stdin="short\n")
    assert code == 2 and "too short" in out
    code, out = _run("--home", str(home), "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0 and "user alice created" in out
    code, out = _run("--home", str(home), "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 5 and "exists already" in out
    code, out = _run("--home", str(home), "user", "add", "bob", "--password-stdin", "--totp", stdin=PASSWORD + "\n")
    assert code == 0 and "otpauth://totp/robohost:bob?secret=" in out
    assert len(re.findall(r"^  [a-z2-9]{5}-[a-z2-9]{5}$", out, re.M)) == 10

    code, out = _run("--home", str(home), "user", "token", "add", "alice", "--scope", "operate", "--label", "cron")
    token = out.strip().splitlines()[-1]
    assert code == 0 and token.startswith("rh_") and len(token) > 40
    code, out = _run("--home", str(home), "user", "token", "add", "alice", "--scope", "admin")
    assert code == 2 and "scope must be one of read, operate" in out
    code, out = _run("--home", str(home), "user", "token", "list", "--json")
    assert code == 0 and '"scope": "operate"' in out and token not in out
    code, out = _run("--home", str(home), "user", "list")
    assert code == 0 and "alice" in out and "bob" in out

    code, out = _run("--home", str(home), "user", "signout-all", "alice", "--tokens")
    assert code == 0 and "signed out everywhere" in out
    code, out = _run("--home", str(home), "user", "token", "list", "alice", "--json")
    assert out.strip() == "[]"
    code, out = _run("--home", str(home), "user", "unlock", "alice")
    assert code == 0
    code, out = _run("--home", str(home), "user", "remove", "bob")
    assert code == 0
    code, out = _run("--home", str(home), "user", "remove", "bob")
    assert code == 5 and "no user named 'bob'" in out

    engine = make_engine(f"sqlite:///{home / 'robohost.db'}")
    try:
        with engine.connect() as conn:
            audit = [tuple(row) for row in conn.exec_driver_sql("SELECT action, outcome FROM audit_log ORDER BY id")]
            actor = conn.exec_driver_sql("SELECT actor FROM audit_log LIMIT 1").scalar_one()
    finally:
        engine.dispose()
    assert ("user_add", "ok") in audit and ("token_add", "ok") in audit and ("user_remove", "ok") in audit
    assert actor.endswith("(cli)")
    log = (home / "logs").glob("*.log")
    assert all(PASSWORD not in path.read_text() and token not in path.read_text() for path in log)


def test_a_password_is_never_taken_from_a_pipe_without_asking_for_it(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run("init", str(home))[0] == 0
    code, out = _run("--home", str(home), "user", "add", "alice", stdin=PASSWORD + "\n")
    assert code == 2 and "--password-stdin" in out
