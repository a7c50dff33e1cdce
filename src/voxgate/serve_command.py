"""``voxgate serve``: its options, each named after a ``Settings`` field and defaulting to it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from voxgate.config import Settings
from voxgate.logging import configure_logging

__all__ = ["COMMON", "DEFAULTS", "DbUrl", "SecretFile", "serve"]

DEFAULTS = Settings()  # every default lives in Settings; the options below only name them
DbUrl = Annotated[
    str, typer.Option("--database-url", envvar="VOXGATE_DATABASE_URL", help="SQLAlchemy URL.")
]
SecretFile = Annotated[
    Path,
    typer.Option("--secret-file", envvar="VOXGATE_SECRET_FILE", help="Key-encryption key file."),
]


COMMON: list[Settings] = [DEFAULTS]  # what the top-level options said, for this one run


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
    common = COMMON[0]
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


def _run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (it ships with uvicorn[standard]): faster sockets, same semantics."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)
