"""``robohost report verify`` on the demo: a fresh report verifies; after a fill is edited it does not."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from robohost.adapters.db.engine import make_engine

ROBOHOST = str(Path(sys.executable).with_name("robohost"))


def _robohost(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ROBOHOST, *args], capture_output=True, text=True, timeout=300, env=dict(os.environ))


def test_verify_passes_then_catches_an_edited_fill(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _robohost("init", str(home)).returncode == 0
    key = home / "keys" / "report-signing.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600, "init makes the signing key, readable by its owner only"
    assert _robohost("--home", str(home), "run", "--no-progress").returncode == 0
    made = _robohost("--home", str(home), "report", "pnl", "--format", "html")
    assert made.returncode == 0, made.stderr
    signature = next((home / "reports").glob("pnl-*.sig.json"))
    ok = _robohost("--home", str(home), "report", "verify", str(signature))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "signature by key SHA256:" in ok.stdout and "chain of run" in ok.stdout

    engine = make_engine(f"sqlite:///{home / 'robohost.db'}")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE fills SET qty = qty * 2 WHERE id = (SELECT min(id) FROM fills)")
    finally:
        engine.dispose()
    html = next((home / "reports").glob("pnl-*.html"))
    tampered = _robohost("--home", str(home), "report", "verify", str(html))
    assert tampered.returncode == 5
    assert "FAIL" in tampered.stdout and "differs from its journal line" in tampered.stdout
    assert tampered.stderr.startswith("error: report ") and "does not match the database" in tampered.stderr
