"""``robohost user``: the people who may use the dashboard and the API, their API tokens and sessions.

There is no default account and no default password: the first user is made with ``robohost user add``.
Passwords are read from the terminal (twice) or, with ``--password-stdin``, from one line of standard input;
they are never an argument (which other users could see in ``ps``). Secrets shown here are shown once.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from robohost.cli.common import HomeOption, JsonOption, cli_actor, console, iso, opened, print_json
from robohost.errors import ConfigError
from robohost.services.auth import SecondFactor

user_app = typer.Typer(help="People who may sign in to the dashboard, and API tokens for scripts.")
token_app = typer.Typer(help="API tokens (Authorization: Bearer ...): scoped read-only or operate.")
user_app.add_typer(token_app, name="token")

NameArg = Annotated[str, typer.Argument(help="The user's name.")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from one line of standard input.")
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ConfigError("no terminal to ask for the password: pipe it in with --password-stdin")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _show_second_factor(name: str, factor: SecondFactor) -> None:
    console.print(f"TOTP for [bold]{name}[/bold]: add it to an authenticator app (shown once):")
    console.print(f"  secret: {factor.secret}")
    console.print(f"  URI:    {factor.uri}")
    console.print("recovery codes (each works once if the authenticator is lost; keep them offline):")
    for code in factor.recovery_codes:
        console.print(f"  {code}")


@user_app.command("add")
def add(
    name: NameArg,
    home: HomeOption = None,
    password_stdin: PasswordStdin = False,
    totp: Annotated[bool, typer.Option("--totp", help="Also require a TOTP code (authenticator app).")] = False,
) -> None:
    """Create a user who may sign in to the dashboard (password: at least 12 characters)."""
    with opened(home) as app:
        factor = app.auth().add_user(name, _password(password_stdin), time.time_ns(), totp=totp, actor=cli_actor())
    console.print(f"user [bold]{name}[/bold] created")
    if factor is not None:
        _show_second_factor(name, factor)


@user_app.command("passwd")
def passwd(name: NameArg, home: HomeOption = None, password_stdin: PasswordStdin = False) -> None:
    """Change a user's password (their sessions end)."""
    with opened(home) as app:
        ended = app.auth().set_password(name, _password(password_stdin), time.time_ns(), actor=cli_actor())
    console.print(f"password of [bold]{name}[/bold] changed; {ended} session(s) ended")


@user_app.command("totp")
def totp_cmd(
    name: NameArg,
    home: HomeOption = None,
    off: Annotated[bool, typer.Option("--off", help="Switch the second factor off.")] = False,
) -> None:
    """Enrol the user in TOTP afresh (new secret and recovery codes), or switch it off."""
    with opened(home) as app:
        factor = app.auth().set_totp(name, not off, time.time_ns(), actor=cli_actor())
    if factor is None:
        console.print(f"TOTP switched off for [bold]{name}[/bold]")
    else:
        _show_second_factor(name, factor)


@user_app.command("list")
def list_users(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """The users, whether they use TOTP, when they last signed in, their sessions and tokens."""
    with opened(home) as app:
        auth = app.auth()
        rows = [
            {
                "name": u.name,
                "totp": u.totp_secret is not None,
                "created_at": iso(u.created_at),
                "last_login_at": iso(u.last_login_at),
                "sessions": len(auth.store.sessions(u.id)),
                "tokens": len(auth.store.tokens(u.id)),
            }
            for u in auth.users()
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(title="dashboard users")
    for column in ("name", "TOTP", "created", "last sign-in", "sessions", "tokens"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["name"]), "yes" if r["totp"] else "no", str(r["created_at"]), str(r["last_login_at"]),
            str(r["sessions"]), str(r["tokens"]),
        )  # fmt: skip
    console.print(table)


@user_app.command("remove")
def remove(name: NameArg, home: HomeOption = None) -> None:
    """Delete a user, their sessions and their API tokens."""
    with opened(home) as app:
        app.auth().remove_user(name, time.time_ns(), actor=cli_actor())
    console.print(f"user [bold]{name}[/bold] removed")


@user_app.command("unlock")
def unlock(name: NameArg, home: HomeOption = None) -> None:
    """End a lock-out after failed sign-ins (forgets the account's failures)."""
    with opened(home) as app:
        cleared = app.auth().unlock(name, time.time_ns(), actor=cli_actor())
    console.print(f"[bold]{name}[/bold] unlocked ({cleared} failed sign-in(s) forgotten)")


@user_app.command("signout-all")
def signout_all(
    name: NameArg,
    home: HomeOption = None,
    tokens: Annotated[bool, typer.Option("--tokens", help="Also revoke the user's API tokens.")] = False,
) -> None:
    """Sign the user out everywhere: every browser session ends (and with --tokens, every API token)."""
    with opened(home) as app:
        auth = app.auth()
        ended = auth.signout_all(name, time.time_ns(), actor=cli_actor(), tokens=tokens)
    console.print(f"[bold]{name}[/bold] signed out everywhere ({ended} session(s) ended)")


@token_app.command("add")
def token_add(
    name: NameArg,
    scope: Annotated[str, typer.Option("--scope", help="read (look only) or operate (also run, stop, resume).")],
    home: HomeOption = None,
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "token",
) -> None:
    """Make an API token for the user and print it once (only its hash is stored)."""
    with opened(home) as app:
        token_id, token = app.auth().add_token(name, scope, label, time.time_ns(), actor=cli_actor())
    console.print(
        f"API token {token_id} ({scope}) for [bold]{name}[/bold]; shown once, keep it secret:", soft_wrap=True
    )
    typer.echo(token)


@token_app.command("list")
def token_list(
    name: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """The API tokens (never the tokens themselves): id, user, label, scope, created, last used."""
    with opened(home) as app:
        rows = app.auth().tokens(name)
    data = [
        {"id": t.id, "user": t.user_name, "label": t.label, "scope": t.scope, "created_at": iso(t.created_at),
         "last_used_at": iso(t.last_used_at)}
        for t in rows
    ]  # fmt: skip
    if as_json:
        print_json(data)
        return
    table = Table(title="API tokens")
    for column in ("id", "user", "label", "scope", "created", "last used"):
        table.add_column(column)
    for r in data:
        table.add_row(*(str(r[k]) for k in ("id", "user", "label", "scope", "created_at", "last_used_at")))
    console.print(table)


@token_app.command("remove")
def token_remove(
    token_id: Annotated[int, typer.Argument(help="The token's id (robohost user token list).")], home: HomeOption = None
) -> None:
    """Revoke an API token."""
    with opened(home) as app:
        app.auth().remove_token(token_id, time.time_ns(), actor=cli_actor())
    console.print(f"API token {token_id} revoked")
