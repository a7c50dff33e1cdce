"""The ``voxgate`` command: serve, and thin people-facing wrappers over the control plane."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from voxgate.api import render
from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError, VoxgateError
from voxgate.domain.records import ApiKey
from voxgate.runtime import Runtime, open_runtime
from voxgate.serve_command import COMMON, DEFAULTS, DbUrl, SecretFile, serve
from voxgate.services.schemas import (
    ConnectionCreate,
    ConnectionUpdate,
    CredentialCreate,
    CredentialUpdate,
    parse,
)
from voxgate.store.base import ConnectionFilter, CredentialFilter

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
keys_app = typer.Typer(no_args_is_help=True, help="API keys and token signing keys.")
connections_app = typer.Typer(no_args_is_help=True, help="Credential connections.")
credentials_app = typer.Typer(no_args_is_help=True, help="Telephony credentials.")
tokens_app = typer.Typer(no_args_is_help=True, help="Login tokens (JWT).")
assistants_app = typer.Typer(no_args_is_help=True, help="AI assistants for anonymous_login.")
app.add_typer(keys_app, name="keys")
app.add_typer(connections_app, name="connections")
app.add_typer(credentials_app, name="credentials")
app.add_typer(tokens_app, name="tokens")
app.add_typer(assistants_app, name="assistants")


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


def _settings() -> Settings:
    return COMMON[0]


def _run(action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Opens the store, runs one action, prints a one-line error and exits 1 on failure."""
    settings = _settings()

    async def go() -> T:
        _database_exists(settings.database_url)
        async with open_runtime(settings) as rt:
            return await action(rt)

    return _guarded(go)


def _database_exists(url: str) -> None:
    """The CLI works on the server's database: it never quietly starts an empty one."""
    path = Path(url.split(":///", 1)[1]) if url.startswith("sqlite") and ":///" in url else None
    if path is not None and str(path) != ":memory:" and not path.exists():
        raise ConfigurationError(
            f"no voxgate database at {path}. The CLI opens the server's database: give it the "
            "server's --database-url (or VOXGATE_DATABASE_URL, or VOXGATE_HOME), or create "
            "one here with `voxgate migrate`"
        )


def _guarded(go: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs ``go``; a failure is one line on stderr and exit status 1."""
    try:
        return asyncio.run(go())
    except VoxgateError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    except (OSError, ValueError) as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


def _print(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


app.command()(serve)


@app.command()
def migrate() -> None:
    """Upgrade the database schema to this version's (what `serve` does at start). With
    several nodes: run this once, then start the nodes with --no-migrate."""
    from voxgate.store.sql import open_store

    async def go() -> str:
        store = await open_store(_settings().database_url, migrate=True)
        try:
            return await store.revision()
        finally:
            await store.close()

    typer.echo(f"database schema at revision {_guarded(go)} (current)")


@app.command()
def backup(path: Path) -> None:
    """Copy the SQLite database, consistently, while the server runs (Postgres: pg_dump)."""
    from voxgate.store.backup import backup_sqlite

    settings = _settings()
    size = _guarded(lambda: asyncio.to_thread(backup_sqlite, settings.database_url, path))
    typer.echo(f"backed up {size} bytes to {path}")
    typer.echo(
        f"keep a copy of {settings.secret_file} with it: it unseals the token signing keys "
        "and is not in the database"
    )


# -- keys ---------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    label: Annotated[str, typer.Option("--label")],
    scope: Annotated[
        str, typer.Option(help="admin (everything) or tokens (read credentials, mint tokens)")
    ] = "admin",
) -> None:
    """Create an API key; it is printed once and only its SHA-256 digest is stored."""
    key, _ = _run(lambda rt: rt.control.api_keys.create(label, scope))
    typer.echo(key)


@keys_app.command("list")
def keys_list_api() -> None:
    """List API keys: label, prefix, scope, created, last used, revoked."""
    _print(_run(lambda rt: _rendered(rt.control.api_keys.list())))


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key (every node refuses it within 5 s)."""
    _run(lambda rt: rt.control.api_keys.revoke(key_id))
    typer.echo(f"revoked {key_id}")


async def _rendered(keys: Awaitable[list[ApiKey]]) -> list[dict[str, Any]]:
    return [render.api_key(k) for k in await keys]


@keys_app.command("rotate-signing")
def keys_rotate() -> None:
    """Add a new token signing key; older keys keep verifying until retired."""
    typer.echo(_run(lambda rt: rt.control.rotate_signing_key()))


@keys_app.command("retire-signing")
def keys_retire(
    kid: str,
) -> None:
    """Retire a signing key: tokens it signed stop verifying."""
    _run(lambda rt: rt.control.retire_signing_key(kid))
    typer.echo(f"retired {kid}")


@keys_app.command("webhook-public-key")
def keys_webhook_public_key() -> None:
    """Print the Ed25519 public key that verifies voxgate's webhooks (TELNYX_PUBLIC_KEY)."""
    from voxgate.auth.keyring import Sealer
    from voxgate.webhooks import WebhookSigner
    from voxgate.webhooks.signing import PURPOSE

    sealer = Sealer.from_file(_settings().secret_file)
    typer.echo(WebhookSigner(sealer.derive(PURPOSE)).public_key)


@keys_app.command("list-signing")
def keys_list() -> None:
    """List signing keys (kid, created, retired); never their secrets."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        return [
            {
                "kid": k.kid,
                "created_at": str(k.created_at),
                "retired_at": str(k.retired_at) if k.retired_at else None,
                "signing": k.kid == rt.control.ring.signing_kid,
            }
            for k in await rt.control.store.list_signing_keys()
        ]

    _print(_run(go))


# -- connections --------------------------------------------------------------------------
@connections_app.command("create")
def connections_create(
    name: Annotated[str, typer.Option("--name")],
    user_name: Annotated[str | None, typer.Option()] = None,
    password: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a credential connection (user name and password generated when omitted)."""
    body: dict[str, Any] = {"connection_name": name}
    if user_name:
        body["user_name"] = user_name
    if password:
        body["password"] = password

    async def go(rt: Runtime) -> dict[str, Any]:
        conn, clear = await rt.control.create_connection(parse(ConnectionCreate, body))
        return render.connection(conn, clear)

    _print(_run(go))


@connections_app.command("list")
def connections_list() -> None:
    """List credential connections."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.list_connections(ConnectionFilter(), 1, 1000)
        return [render.connection(c) for c in page.items]

    _print(_run(go))


# Who may register at once, and who rings (README: "Many devices, one identity").
Policy = Annotated[
    str | None,
    typer.Option(help="latest_wins, first_wins or ring_all; 'default' clears it"),
]
Cap = Annotated[
    int | None,
    typer.Option(help="registrations at once (1-100); 0 clears it (the policy's default)"),
]


def _registration_fields(policy: str | None, cap: int | None) -> dict[str, Any]:
    """The PATCH body a CLI call stands for: only what was given; 'default'/0 clear."""
    body: dict[str, Any] = {}
    if policy is not None:
        body["registration_policy"] = None if policy == "default" else policy
    if cap is not None:
        body["max_registrations"] = cap or None
    return body


@connections_app.command("update")
def connections_update(
    connection_id: str,
    registration_policy: Policy = None,
    max_registrations: Cap = None,
    on_token_reuse: Annotated[
        str | None, typer.Option(help="audit, revoke_token or deactivate_credential")
    ] = None,
) -> None:
    """Change a connection's defaults for its credentials, and its answer to token reuse."""
    body = _registration_fields(registration_policy, max_registrations)
    if on_token_reuse is not None:
        body["on_token_reuse"] = on_token_reuse

    async def go(rt: Runtime) -> dict[str, Any]:
        conn, _ = await rt.control.update_connection(connection_id, parse(ConnectionUpdate, body))
        return render.connection(conn)

    _print(_run(go))


# -- credentials --------------------------------------------------------------------------
@credentials_app.command("update")
def credentials_update(
    credential_id: str,
    registration_policy: Policy = None,
    max_registrations: Cap = None,
    name: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change a credential: its registration policy and cap, name or tag."""
    body = _registration_fields(registration_policy, max_registrations)
    body |= {k: v for k, v in (("name", name), ("tag", tag)) if v is not None}

    async def go(rt: Runtime) -> dict[str, Any]:
        cred = await rt.control.update_credential(credential_id, parse(CredentialUpdate, body))
        return render.credential(cred)

    _print(_run(go))


@credentials_app.command("create")
def credentials_create(
    connection_id: Annotated[str, typer.Option()],
    name: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[str | None, typer.Option()] = None,
    expires_at: Annotated[str | None, typer.Option(help="ISO-8601")] = None,
) -> None:
    """Create a telephony credential; its SIP password is shown only now."""
    body = {"connection_id": connection_id, "name": name, "tag": tag, "expires_at": expires_at}

    async def go(rt: Runtime) -> dict[str, Any]:
        cred, clear = await rt.control.create_credential(
            parse(CredentialCreate, {k: v for k, v in body.items() if v is not None})
        )
        return render.credential(cred, clear)

    _print(_run(go))


@credentials_app.command("list")
def credentials_list(
    tag: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
) -> None:
    """List telephony credentials."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.list_credentials(CredentialFilter(tag=tag, status=status), 1, 1000)
        return [render.credential(c) for c in page.items]

    _print(_run(go))


def _credential_action(verb: str, action: Callable[[Runtime, str], Awaitable[Any]]) -> None:
    @credentials_app.command(verb)
    def command(
        credential_id: str,
    ) -> None:
        _run(lambda rt: action(rt, credential_id))
        typer.echo(f"{verb.removesuffix('e')}ed {credential_id}")

    command.__doc__ = (
        f"{verb.capitalize()} a credential (live sessions are ended where that applies)."
    )


_credential_action("activate", lambda rt, cid: rt.control.set_credential_active(cid, True))
_credential_action("deactivate", lambda rt, cid: rt.control.set_credential_active(cid, False))
_credential_action("delete", lambda rt, cid: rt.control.delete_credential(cid))


# -- tokens, audit, assistants ------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    credential_id: str,
) -> None:
    """Mint a login JWT for a credential and print it."""

    async def go(rt: Runtime) -> str:
        token, _ = await rt.control.mint_token(credential_id)
        return token

    typer.echo(_run(go))


@app.command()
def audit(
    credential_id: str,
) -> None:
    """Show a credential's audit trail, newest first."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.audit_log.page(credential_id, 1, 250)
        return [render.audit_event(e) for e in page.items]

    _print(_run(go))


@assistants_app.command("create")
def assistants_create(
    name: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="echo | tone | greeting | custom")] = "echo",
) -> None:
    """Register an AI assistant that anonymous_login can target."""

    async def go(rt: Runtime) -> dict[str, Any]:
        return render.assistant(await rt.control.assistants.create(name, kind))

    _print(_run(go))


@assistants_app.command("list")
def assistants_list() -> None:
    """List AI assistants."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.assistants.list(1, 1000)
        return [render.assistant(a) for a in page.items]

    _print(_run(go))


def main() -> None:
    app(prog_name="voxgate")


if __name__ == "__main__":
    main()
