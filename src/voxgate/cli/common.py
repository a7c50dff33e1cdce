"""What every ``voxgate`` command shares: the command groups, the common options, and running
one action against the store with a one-line error on failure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError, VoxgateError
from voxgate.runtime import Runtime, open_runtime
from voxgate.serve_command import COMMON, DEFAULTS, DbUrl, SecretFile, serve

__all__ = [
    "app",
    "assistants_app",
    "connections_app",
    "credentials_app",
    "keys_app",
    "numbers_app",
    "print_json",
    "run",
    "run_plain",
    "settings",
    "tokens_app",
    "trunks_app",
]

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="voxgate: serve, and manage keys, connections, credentials, tokens, trunks, numbers.",
)
keys_app = typer.Typer(no_args_is_help=True, help="API keys and token signing keys.")
connections_app = typer.Typer(no_args_is_help=True, help="Credential connections.")
credentials_app = typer.Typer(no_args_is_help=True, help="Telephony credentials.")
tokens_app = typer.Typer(no_args_is_help=True, help="Login tokens (JWT).")
assistants_app = typer.Typer(no_args_is_help=True, help="AI assistants for anonymous_login.")
trunks_app = typer.Typer(no_args_is_help=True, help="SIP trunks towards the phone network.")
numbers_app = typer.Typer(no_args_is_help=True, help="Phone numbers, assigned to credentials.")
app.add_typer(keys_app, name="keys")
app.add_typer(connections_app, name="connections")
app.add_typer(credentials_app, name="credentials")
app.add_typer(tokens_app, name="tokens")
app.add_typer(assistants_app, name="assistants")
app.add_typer(trunks_app, name="trunks")
app.add_typer(numbers_app, name="numbers")
app.command()(serve)


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import version

        typer.echo(f"voxgate {version('voxgate')}")
        raise typer.Exit()


@app.callback()
def _common_options(
    database_url: DbUrl = DEFAULTS.database_url,
    secret_file: SecretFile = DEFAULTS.secret_file,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print it.")
    ] = False,
) -> None:
    """Options every command shares: ``voxgate --database-url URL COMMAND ...``."""
    COMMON[0] = Settings(database_url=database_url, secret_file=secret_file)


def settings() -> Settings:
    return COMMON[0]


def run(action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Opens the store, runs one action, prints a one-line error and exits 1 on failure."""
    chosen = settings()

    async def go() -> T:
        _database_exists(chosen.database_url)
        async with open_runtime(chosen) as rt:
            return await action(rt)

    return run_plain(go)


def _database_exists(url: str) -> None:
    """The CLI works on the server's database: it never quietly starts an empty one."""
    path = Path(url.split(":///", 1)[1]) if url.startswith("sqlite") and ":///" in url else None
    if path is not None and str(path) != ":memory:" and not path.exists():
        raise ConfigurationError(
            f"no voxgate database at {path}. The CLI opens the server's database: give it the "
            "server's --database-url (or VOXGATE_DATABASE_URL, or VOXGATE_HOME), or create "
            "one here with `voxgate migrate`"
        )


def run_plain(go: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs ``go``; a failure is one line on stderr and exit status 1."""
    try:
        return asyncio.run(go())
    except VoxgateError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
