"""``robohost.services.redaction``: secrets masked in text meant for people's eyes."""

from __future__ import annotations

from pydantic import SecretStr

from robohost.config.models import AlpacaSecrets, DatabaseConfig, FeedSecrets, SecretsConfig
from robohost.services.redaction import MASK, Redactor, secret_values


def test_literal_secrets_and_secret_looking_patterns_are_masked() -> None:
    redact = Redactor(["AKIA1234SECRET", "pw", ""])  # too short to mask alone: "pw"
    cases = {
        "key AKIA1234SECRET sent": "key *** sent",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc": "Authorization: Bearer ***",
        "authorization=Basic dXNlcjpwYXNz": "authorization=Basic ***",
        "header bearer abcdefgh12345678": "header bearer ***",
        "token rh_abcdefghijklmnopqrstuvwxyz012345 used": "token rh_*** used",
        "url postgresql://robohost:s3cr3t@db:5432/x": "url postgresql://robohost:***@db:5432/x",
        "sftp://me:hunter2@backup.example.com/path": "sftp://me:***@backup.example.com/path",
        'password="two words" next': "password=*** next",
        "api_key=abc123&x=1": "api_key=***&x=1",
        "secret_key: 'xyz'": "secret_key: ***",
        "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ": "AGE-SECRET-KEY-***",
        "pw stays: a plain line": "pw stays: a plain line",
    }
    for text, expected in cases.items():
        assert redact(text) == expected, text
    block = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----"
    assert redact(f"key: {block} done") == f"key: {MASK} done"


def test_a_private_key_spread_over_log_lines_is_masked_whole() -> None:
    lines = [
        "loading -----BEGIN OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ",
        "AAAAMwAAAAtzc2gtZWQyNTUxOQAAACDx",
        "-----END OPENSSH PRIVATE KEY----- and on",
        "after",
    ]
    assert list(Redactor().lines(lines)) == ["loading ***", "***", "***", "*** and on", "after"]


def test_the_secret_values_of_a_secrets_file_are_found() -> None:
    secrets = SecretsConfig(
        database=DatabaseConfig(url="postgresql://robohost:dbpass123@127.0.0.1/robohost"),
        feeds=FeedSecrets(alpaca=AlpacaSecrets(key_id=SecretStr("KEYID123"), secret_key=SecretStr("SECRET456"))),
    )
    assert sorted(secret_values(secrets)) == ["KEYID123", "SECRET456", "dbpass123"]
    assert secret_values(SecretsConfig()) == []
