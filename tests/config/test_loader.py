"""Tests of the configuration loader: every error names the file and the dotted key; secrets stay private."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from robohost.config.loader import DATABASE_ENV, load_home, resolve_database_url
from robohost.errors import ConfigError

ROBOT = """
[robots.bot]
strategy = "strategies/bot.py:Bot"

[robots.bot.data]
path = ["data/bars.csv"]
"""


@pytest.fixture(autouse=True)
def _no_database_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_ENV, raising=False)


def write_home(home: Path, config: str, secrets: str | None = None, mode: int = 0o600) -> Path:
    """Write robohost.toml (and secrets.toml with ``mode``) into ``home``; return the config file."""
    home.mkdir(parents=True, exist_ok=True)
    config_file = home / "robohost.toml"
    config_file.write_text(config)
    if secrets is not None:
        secrets_file = home / "secrets.toml"
        secrets_file.write_text(secrets)
        os.chmod(secrets_file, mode)
    return config_file


def load_error(home: Path) -> str:
    """The message of the ConfigError that loading ``home`` raises."""
    with pytest.raises(ConfigError) as caught:
        load_home(home)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_valid_home_loads_with_the_documented_defaults(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT)
    home = load_home(tmp_path)
    name, robot = home.robot(None)
    assert name == "bot"
    assert robot.strategy == "strategies/bot.py:Bot"
    assert robot.data.path == ["data/bars.csv"]
    assert (robot.fills.latency_ms, robot.fills.participation, robot.fills.allow_short) == (250.0, 0.1, False)
    assert robot.on_strategy_error == "halt"
    assert home.path == tmp_path.resolve()
    assert home.database_url == f"sqlite:///{tmp_path.resolve() / 'robohost.db'}"


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    config = write_home(tmp_path, ROBOT + "\n[robots.bot.fills\nlatency_ms = 5\n")
    message = load_error(tmp_path)
    assert message.startswith(f"{config}: not valid TOML: ")
    assert "line" in message


def test_a_missing_config_file_says_how_to_create_one(tmp_path: Path) -> None:
    assert load_error(tmp_path) == f"{tmp_path / 'robohost.toml'} not found: create a home with 'robohost init HOME'"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("[robots.bot.fills]\nlatency = 5\n", "robots.bot.fills.latency"),
        ("[robots.bot.risk]\nmax_loss = 5\n", "robots.bot.risk.max_loss"),
        ("[server]\nport = 1\n", "server"),
    ],
)
def test_an_unknown_key_names_the_file_and_the_dotted_key(tmp_path: Path, extra: str, key: str) -> None:
    config = write_home(tmp_path, ROBOT + extra)
    assert load_error(tmp_path).startswith(f"{config}: {key}: unknown key")


def test_an_unknown_top_level_robot_key_is_refused(tmp_path: Path) -> None:
    config = write_home(tmp_path, ROBOT.replace('strategy = "', 'stratgy = "x"\nstrategy = "'))
    assert load_error(tmp_path).startswith(f"{config}: robots.bot.stratgy: unknown key")


@pytest.mark.parametrize(
    ("extra", "key", "got"),
    [
        ('starting_cash = "lots"\n', "robots.bot.starting_cash", "'lots'"),
        ('[robots.bot.fills]\nparticipation = "high"\n', "robots.bot.fills.participation", "'high'"),
        ("[robots.bot.fills]\nparticipation = 2.0\n", "robots.bot.fills.participation", "2.0"),
        ('[robots.bot.risk]\nmax_orders_per_minute = "many"\n', "robots.bot.risk.max_orders_per_minute", "'many'"),
        ('on_strategy_error = "ignore"\n', "robots.bot.on_strategy_error", "'ignore'"),
    ],
)
def test_a_wrong_type_names_the_file_the_key_and_the_value(tmp_path: Path, extra: str, key: str, got: str) -> None:
    if extra.startswith("["):
        config = write_home(tmp_path, ROBOT + extra)
    else:
        config = write_home(tmp_path, ROBOT.replace("[robots.bot]\n", "[robots.bot]\n" + extra))
    message = load_error(tmp_path)
    assert message.startswith(f"{config}: {key}: ")
    assert f"(got {got})" in message


@pytest.mark.parametrize(
    ("config", "key", "why"),
    [
        (ROBOT.replace('strategy = "strategies/bot.py:Bot"\n', ""), "robots.bot.strategy", "required key is missing"),
        (
            ROBOT.replace('path = ["data/bars.csv"]\n', ""),
            "robots.bot.data.path",
            "a replay needs one or more CSV or Parquet files",
        ),
        ("[database]\n", "robots", "required key is missing"),
    ],
)
def test_a_missing_required_key_names_the_file_and_the_dotted_key(
    tmp_path: Path, config: str, key: str, why: str
) -> None:
    config_file = write_home(tmp_path, config)
    assert load_error(tmp_path) == f"{config_file}: {key}: {why}"


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ('source = "ccxt"\nexchange = "binance"\n', "robots.bot.data.symbols", "symbols to stream"),
        ('source = "ccxt"\nsymbols = ["BTC/USDT"]\n', "robots.bot.data.exchange", "ccxt exchange id"),
        ('source = "alpaca"\n', "robots.bot.data.symbols", "symbols to stream"),
        ('source = "kraken"\n', "robots.bot.data.source", "'kraken'"),
    ],
)
def test_a_live_source_names_what_it_misses(tmp_path: Path, data: str, key: str, fragment: str) -> None:
    config_file = write_home(tmp_path, ROBOT.replace('path = ["data/bars.csv"]\n', data))
    message = load_error(tmp_path)
    assert message.startswith(f"{config_file}: {key}: ")
    assert fragment in message


def test_several_problems_are_counted(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT.replace("[robots.bot]\n", '[robots.bot]\nseed = "x"\nhistory = "y"\n'))
    assert load_error(tmp_path).endswith("(and 1 more problem)")


def test_an_unknown_time_zone_is_refused(tmp_path: Path) -> None:
    config = write_home(tmp_path, ROBOT.replace("[robots.bot]\n", '[robots.bot]\ntimezone = "Mars/Base"\n'))
    message = load_error(tmp_path)
    assert message.startswith(f"{config}: robots.bot.timezone: ")
    assert "Mars/Base" in message


def test_a_bad_robot_name_is_refused(tmp_path: Path) -> None:
    config = write_home(tmp_path, ROBOT.replace("robots.bot", "robots.'my bot'"))
    message = load_error(tmp_path)
    assert message.startswith(f"{config}: robots: ")
    assert "'my bot'" in message


def test_secrets_readable_by_others_are_refused_with_a_chmod_hint(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT, secrets="", mode=0o644)
    secrets = tmp_path.resolve() / "secrets.toml"
    assert load_error(tmp_path) == f"{secrets} is readable by others (mode 0644): run 'chmod 600 {secrets}'"


def test_secrets_readable_by_the_group_are_refused(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT, secrets="", mode=0o640)
    assert "chmod 600" in load_error(tmp_path)


def test_the_database_url_of_private_secrets_is_used(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT, secrets='[database]\nurl = "postgresql://rh:s3cret@db.example/rh"\n')
    assert load_home(tmp_path).database_url == "postgresql://rh:s3cret@db.example/rh"


def test_an_unknown_key_in_secrets_names_the_secrets_file(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT, secrets='[database]\nuri = "x"\n')
    secrets = tmp_path.resolve() / "secrets.toml"
    assert load_error(tmp_path).startswith(f"{secrets}: database.uri: unknown key")


def test_a_password_in_the_config_file_is_refused(tmp_path: Path) -> None:
    config = write_home(tmp_path, '[database]\nurl = "postgresql://rh:s3cret@db.example/rh"\n' + ROBOT)
    message = load_error(tmp_path)
    assert message.startswith(f"{config.resolve()}: database.url: holds a password")
    assert "secrets.toml" in message
    assert DATABASE_ENV in message
    assert "s3cret" not in message


def test_a_user_without_password_in_the_config_file_is_fine(tmp_path: Path) -> None:
    write_home(tmp_path, '[database]\nurl = "postgresql://rh@db.example/rh"\n' + ROBOT)
    assert load_home(tmp_path).database_url == "postgresql://rh@db.example/rh"


def test_the_environment_overrides_config_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_home(tmp_path, ROBOT, secrets='[database]\nurl = "postgresql://rh:pw@secret.example/rh"\n')
    monkeypatch.setenv(DATABASE_ENV, "postgresql://env:pw@env.example/rh")
    assert load_home(tmp_path).database_url == "postgresql://env:pw@env.example/rh"


def test_an_unparseable_environment_url_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_home(tmp_path, ROBOT)
    monkeypatch.setenv(DATABASE_ENV, "not a url")
    assert DATABASE_ENV in load_error(tmp_path)


def test_a_relative_sqlite_path_is_resolved_against_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    write_home(home, '[database]\nurl = "sqlite:///db/trading.db"\n' + ROBOT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_home(Path("../home")).database_url == f"sqlite:///{home.resolve() / 'db' / 'trading.db'}"


def test_a_relative_sqlite_path_from_the_environment_is_resolved_against_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_home(tmp_path, ROBOT)
    monkeypatch.setenv(DATABASE_ENV, "sqlite:///other.db")
    assert load_home(tmp_path).database_url == f"sqlite:///{tmp_path.resolve() / 'other.db'}"


@pytest.mark.parametrize("url", ["sqlite:////var/lib/rh.db", "sqlite:///:memory:", "postgresql://h/db"])
def test_absolute_and_other_urls_are_left_alone(url: str, tmp_path: Path) -> None:
    assert resolve_database_url(url, tmp_path) == url


def test_a_home_with_several_robots_needs_a_name(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT + ROBOT.replace("robots.bot", "robots.other"))
    home = load_home(tmp_path)
    with pytest.raises(ConfigError, match=r"several robots \(bot, other\): choose one with --robot NAME"):
        home.robot(None)
    assert home.robot("other")[0] == "other"
    with pytest.raises(ConfigError, match=r"no robot named 'nope' in .*robohost\.toml \(robots: bot, other\)"):
        home.robot("nope")


def test_the_loaded_config_is_frozen(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT)
    robot = load_home(tmp_path).robot("bot")[1]
    with pytest.raises(ValueError, match="frozen"):
        robot.seed = 1  # type: ignore[misc]


def test_feed_credentials_come_from_secrets_and_never_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for env in (
        "ROBOHOST_ALPACA_KEY_ID",
        "ROBOHOST_ALPACA_SECRET_KEY",
        "ROBOHOST_CCXT_API_KEY",
        "ROBOHOST_CCXT_SECRET",
    ):
        monkeypatch.delenv(env, raising=False)
    write_home(tmp_path, ROBOT, '[feeds.alpaca]\nkey_id = "AKID-1"\nsecret_key = "s3cr3t-alpaca"\n')
    alpaca = load_home(tmp_path).secrets.feeds.alpaca
    assert alpaca is not None
    assert (alpaca.key_id.get_secret_value(), alpaca.secret_key.get_secret_value()) == ("AKID-1", "s3cr3t-alpaca")
    assert "s3cr3t" not in repr(alpaca) and "s3cr3t" not in str(load_home(tmp_path))


def test_feed_credentials_from_the_environment_override_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_home(tmp_path, ROBOT, '[feeds.alpaca]\nkey_id = "AKID-1"\nsecret_key = "from-file"\n')
    monkeypatch.setenv("ROBOHOST_ALPACA_SECRET_KEY", "from-env")
    monkeypatch.setenv("ROBOHOST_CCXT_API_KEY", "ccxt-key")
    feeds = load_home(tmp_path).secrets.feeds
    assert feeds.alpaca is not None and feeds.alpaca.secret_key.get_secret_value() == "from-env"
    assert feeds.alpaca.key_id.get_secret_value() == "AKID-1"
    assert feeds.ccxt is not None and feeds.ccxt.api_key is not None
    assert feeds.ccxt.api_key.get_secret_value() == "ccxt-key"


def test_feed_credentials_are_refused_in_the_main_config(tmp_path: Path) -> None:
    write_home(tmp_path, ROBOT + '\n[feeds.alpaca]\nkey_id = "AKID"\nsecret_key = "x"\n')
    assert "feeds" in load_error(tmp_path)
