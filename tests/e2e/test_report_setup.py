"""``robohost report setup``: the deployment's instructions, from its real config, with no secret in them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pyrage import x25519

ROBOHOST = str(Path(sys.executable).with_name("robohost"))
SECRETS = {
    "alpaca_key": "PKTESTKEYID0123456789",
    "alpaca_secret": "alpaca-secret-value-9f8e7d6c5b4a",
    "ccxt_key": "ccxt-api-key-1a2b3c4d",
    "ccxt_secret_env": "ccxt-secret-from-env-5e6f7a8b",
}
CONFIG = """
[robots.stocks]
strategy = "robohost.examples.sma_cross:SmaCross"

[robots.stocks.data]
source = "alpaca"
symbols = ["AAPL", "MSFT"]

[robots.stocks.risk]
max_position = 500

[robots.crypto]
strategy = "robohost.examples.sma_cross:SmaCross"
timezone = "UTC"

[robots.crypto.data]
source = "ccxt"
exchange = "binance"
symbols = ["BTC/USDT"]
"""


def test_setup_document_describes_the_deployment_and_holds_no_secret(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    public_key = str(x25519.Identity.generate().to_public())
    (home / "robohost.toml").write_text(CONFIG + f'\n[backup]\nrecipients = ["{public_key}"]\ntargets = ["backups"]\n')
    secrets = home / "secrets.toml"
    secrets.write_text(
        f'[feeds.alpaca]\nkey_id = "{SECRETS["alpaca_key"]}"\nsecret_key = "{SECRETS["alpaca_secret"]}"\n'
        f'[feeds.ccxt]\napi_key = "{SECRETS["ccxt_key"]}"\n'
    )
    secrets.chmod(0o600)
    env = {**os.environ, "ROBOHOST_CCXT_SECRET": SECRETS["ccxt_secret_env"]}
    done = subprocess.run(
        [ROBOHOST, "--home", str(home), "report", "setup", "--local-zone", "Europe/Berlin"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = home / "reports" / "setup.md"
    assert f"wrote {document}" in done.stdout
    text = document.read_text()
    for name, value in SECRETS.items():
        assert value not in text, f"the {name} leaked into the setup document"
    assert "### `stocks`" in text and "### `crypto`" in text
    assert "the live source **alpaca**" in text and "`[feeds.alpaca]`" in text and "currently set" in text
    assert "ROBOHOST_ALPACA_SECRET_KEY" in text, "it says where the secret may live"
    assert "| max_position | 500.0 |" in text and "| max_daily_loss | off |" in text
    assert "Calendar **XNYS** (America/New_York)" in text and "Calendar **24/7** (UTC)" in text
    session_rows = [line for line in text.splitlines() if line.startswith("| session |")]
    assert session_rows and all(("EST" in r or "EDT" in r) or "UTC" in r for r in session_rows)
    assert any("CET" in line or "CEST" in line for line in session_rows), "server times in the local zone"
    assert f"ExecStart={ROBOHOST} --home {home} serve" in text
    assert "systemctl stop robohost.service" in text
    assert "**https://127.0.0.1:8443/**" in text and "user add NAME" in text and "health` (exit 0 ok" in text
    assert "to 1 recipient key(s)" in text and "- `backups`" in text and "restore FILE.tar.zst.age" in text
