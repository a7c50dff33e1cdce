"""The ``voxgate`` command: serve, and thin people-facing wrappers over the control plane."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from voxgate.api import render
from voxgate.config import Settings
from voxgate.domain.errors import VoxgateError
from voxgate.logging import configure_logging
from voxgate.runtime import Runtime, open_runtime
from voxgate.services.schemas import ConnectionCreate, CredentialCreate, parse
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

DEFAULTS = Settings()  # every default lives in Settings; the options below only name them
DbUrl = Annotated[
    str, typer.Option("--database-url", envvar="VOXGATE_DATABASE_URL", help="SQLAlchemy URL.")
]
SecretFile = Annotated[
    Path,
    typer.Option("--secret-file", envvar="VOXGATE_SECRET_FILE", help="Key-encryption key file."),
]


_common: list[Settings] = [DEFAULTS]  # what the top-level options said, for this one run


@app.callback()
def _common_options(
    database_url: DbUrl = DEFAULTS.database_url,
    secret_file: SecretFile = DEFAULTS.secret_file,
) -> None:
    """Options every command shares: ``voxgate --database-url URL COMMAND ...``."""
    _common[0] = Settings(database_url=database_url, secret_file=secret_file)


def _settings() -> Settings:
    return _common[0]


def _run(action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Opens the store, runs one action, prints a one-line error and exits 1 on failure."""
    settings = _settings()

    async def go() -> T:
        async with open_runtime(settings) as rt:
            return await action(rt)

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


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="VOXGATE_HOST")] = DEFAULTS.host,
    api_port: Annotated[int, typer.Option(envvar="VOXGATE_API_PORT")] = DEFAULTS.api_port,
    rtc_port: Annotated[int, typer.Option(envvar="VOXGATE_RTC_PORT")] = DEFAULTS.rtc_port,
    role: Annotated[
        str, typer.Option(envvar="VOXGATE_ROLE", help="all | api | rtc")
    ] = DEFAULTS.role,
    database_url: Annotated[
        str | None, typer.Option(help="As the top-level --database-url.", show_default=False)
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option(help="As the top-level --secret-file.", show_default=False)
    ] = None,
    expiry_notice: Annotated[
        float,
        typer.Option(
            envvar="VOXGATE_EXPIRY_NOTICE", help="Seconds before token expiry to warn the client."
        ),
    ] = DEFAULTS.expiry_notice,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="VOXGATE_REDIS_URL", help="redis://... for several nodes; in-process when unset."
        ),
    ] = DEFAULTS.redis_url,
    redis_prefix: Annotated[
        str, typer.Option(envvar="VOXGATE_REDIS_PREFIX")
    ] = DEFAULTS.redis_prefix,
    node_id: Annotated[
        str, typer.Option(envvar="VOXGATE_NODE_ID", help="Name of this node (random by default).")
    ] = DEFAULTS.node_id,
    expiry_grace: Annotated[
        float,
        typer.Option(
            envvar="VOXGATE_EXPIRY_GRACE",
            help="Seconds a call in progress may outlive an expired token.",
        ),
    ] = DEFAULTS.expiry_grace,
    handshake_timeout: Annotated[
        float,
        typer.Option(
            envvar="VOXGATE_HANDSHAKE_TIMEOUT", help="Seconds a socket may stay without logging in."
        ),
    ] = DEFAULTS.handshake_timeout,
    reattach_window: Annotated[
        float,
        typer.Option(
            envvar="VOXGATE_REATTACH_WINDOW",
            help="Seconds a dropped session keeps its calls for the client to reconnect (0: off).",
        ),
    ] = DEFAULTS.reattach_window,
    ping_interval: Annotated[
        float,
        typer.Option(
            envvar="VOXGATE_PING_INTERVAL", help="Seconds between server pings (0: none)."
        ),
    ] = DEFAULTS.ping_interval,
    idle_timeout: Annotated[
        float,
        typer.Option(
            envvar="VOXGATE_IDLE_TIMEOUT",
            help="Seconds of silence after which a session counts as dropped (0: never).",
        ),
    ] = DEFAULTS.idle_timeout,
    max_frames_per_second: Annotated[
        int, typer.Option(envvar="VOXGATE_MAX_FRAMES_PER_SECOND")
    ] = DEFAULTS.max_frames_per_second,
    max_sockets_per_address: Annotated[
        int, typer.Option(envvar="VOXGATE_MAX_SOCKETS_PER_ADDRESS")
    ] = DEFAULTS.max_sockets_per_address,
    max_frame_bytes: Annotated[
        int, typer.Option(envvar="VOXGATE_MAX_FRAME_BYTES")
    ] = DEFAULTS.max_frame_bytes,
    tls_cert: Annotated[
        Path | None,
        typer.Option(envvar="VOXGATE_TLS_CERT", help="PEM certificate: serve https:// and wss://."),
    ] = DEFAULTS.tls_cert,
    tls_key: Annotated[Path | None, typer.Option(envvar="VOXGATE_TLS_KEY")] = DEFAULTS.tls_key,
    log_level: Annotated[str, typer.Option(envvar="VOXGATE_LOG_LEVEL")] = DEFAULTS.log_level,
) -> None:
    """Run the REST API and the signaling gateway."""
    if (tls_cert is None) != (tls_key is None):
        typer.echo("error: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    if role not in ("all", "api", "rtc"):
        typer.echo("error: --role must be all, api or rtc", err=True)
        raise typer.Exit(2)
    import os

    from voxgate.server import serve as run_server

    configure_logging(log_level)
    common = _settings()
    settings = replace(
        common,
        host=host,
        api_port=api_port,
        rtc_port=rtc_port,
        role=role,
        database_url=database_url or common.database_url,
        secret_file=secret_file or common.secret_file,
        bootstrap_api_key=os.environ.get("VOXGATE_BOOTSTRAP_API_KEY") or None,
        expiry_notice=expiry_notice,
        expiry_grace=expiry_grace,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        node_id=node_id,
        handshake_timeout=handshake_timeout,
        reattach_window=reattach_window,
        ping_interval=ping_interval,
        idle_timeout=idle_timeout,
        max_frames_per_second=max_frames_per_second,
        max_sockets_per_address=max_sockets_per_address,
        max_frame_bytes=max_frame_bytes,
        tls_cert=tls_cert,
        tls_key=tls_key,
        log_level=log_level,
    )
    try:
        _run_loop(run_server(settings))
    except OSError as exc:
        typer.echo(f"error: cannot start: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None


# -- keys ---------------------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    label: Annotated[str, typer.Option()],
) -> None:
    """Create an API key. It is printed once; only its SHA-256 digest is stored."""
    key, _ = _run(lambda rt: rt.control.create_api_key(label))
    typer.echo(key)


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


# -- credentials --------------------------------------------------------------------------
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
        page = await rt.control.list_audit(credential_id, 1, 250)
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


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (it ships with uvicorn[standard]): faster sockets, same semantics."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def main() -> None:
    app(prog_name="voxgate")


if __name__ == "__main__":
    main()
