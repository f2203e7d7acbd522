"""Create a robot home: the config, an example robot, sample data and a private secrets file.

Used by ``robohost init``. Only files here; the database is created by migrating it afterwards.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from robohost.errors import ConfigError, StateError
from robohost.services.reports.track_record import KEY_FILE, PUBLIC_KEY_FILE, signing_key

EXAMPLES = {"sma-cross": "sma_cross.py"}

CONFIG_TEMPLATE = """\
# robohost configuration. Every key is described in the README's "Configuration reference".
# Secrets (database passwords, API keys) never go here: they go in secrets.toml (mode 0600).

[database]
url = "sqlite:///robohost.db"          # relative to this folder; or postgresql://user@host/db

[robots.{robot}]
strategy = "strategies/{file}:{cls}"
starting_cash = 100000
timezone = "America/New_York"          # the market's time zone: trading days and DAY orders
seed = 42                               # seeds every random choice of the fill model
history = 1000                          # bars kept per symbol for ctx.history
on_strategy_error = "halt"              # or "skip": drop the event and carry on
commit_every = 5000                     # events per durable commit in a replay

[robots.{robot}.params]
fast = 10
slow = 30
qty = 50

[robots.{robot}.data]
source = "replay"
path = ["data/stocks_daily.csv.gz"]     # CSV or Parquet, one row per bar
symbols = ["AAPL", "MSFT", "IBM", "GOOG"]
speed = "max"                           # or "1x", "60x": pace the replay

[robots.{robot}.fills]
latency_ms = 250
slippage_bps = 1.0
slippage_range_fraction = 0.0
touch_fill_probability = 0.0
participation = 0.1                     # at most 10 % of a bar's volume per fill
allow_short = false
tick_size = 0.01
lot_size = 1

[robots.{robot}.fees]
per_share = 0.005
percent = 0.0
minimum = 1.0

[robots.{robot}.risk]
max_position = 1000
max_order_notional = 50000
max_gross_exposure = 250000
max_orders_per_minute = 60
max_daily_loss = 20000
"""

SECRETS_TEMPLATE = """\
# robohost secrets: keep this file mode 0600. robohost refuses to start if others can read it.
# [database]
# url = "postgresql://robohost:PASSWORD@127.0.0.1:5432/robohost"
"""


@dataclass(frozen=True)
class CreatedHome:
    """What ``create_home`` made."""

    path: Path
    robot: str
    files: list[Path]


def create_home(path: Path, example: str = "sma-cross", *, force: bool = False) -> CreatedHome:
    """Create a home at ``path`` with the ``example`` robot; refuse a non-empty folder unless ``force``."""
    if example not in EXAMPLES:
        raise ConfigError(f"unknown example {example!r} (examples: {', '.join(EXAMPLES)})")
    home = path.expanduser().resolve()
    if home.exists() and any(home.iterdir()) and not force:
        raise StateError(f"{home} exists and is not empty: choose a new folder (or --force to add missing files)")
    for sub in ("strategies", "data", "logs", "reports"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    file = EXAMPLES[example]
    strategy = home / "strategies" / file
    if not strategy.exists():
        shutil.copyfile(str(resources.files("robohost.examples") / file), strategy)
        made.append(strategy)
    data = home / "data" / "stocks_daily.csv.gz"
    if not data.exists():
        shutil.copyfile(str(resources.files("robohost.sample_data") / "stocks_daily.csv.gz"), data)
        made.append(data)
    config = home / "robohost.toml"
    if not config.exists():
        config.write_text(CONFIG_TEMPLATE.format(robot=example, file=file, cls="SmaCross"), encoding="utf-8")
        made.append(config)
    secrets = home / "secrets.toml"
    if not secrets.exists():
        fd = os.open(secrets, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(SECRETS_TEMPLATE)
        os.chmod(secrets, 0o600)
        made.append(secrets)
    if not (home / KEY_FILE).exists():
        signing_key(home)  # signs the P&L reports (the track record)
        made += [home / KEY_FILE, home / PUBLIC_KEY_FILE]
    return CreatedHome(home, example, made)
