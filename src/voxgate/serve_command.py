"""``voxgate serve``: one option per ``Settings`` field, made from the field itself.

Each field becomes ``--field-name`` with the environment variable ``VOXGATE_FIELD_NAME`` and
the field's own default, so a new setting is an option the moment it is added, and no
default is ever stated twice. ``--database-url`` and ``--secret-file`` may also come before
the command (``voxgate --database-url URL serve``), as for every other command.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import inspect
import os
import sys
import typing
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError
from voxgate.logging import configure_logging

__all__ = ["COMMON", "DEFAULTS", "DbUrl", "SecretFile", "run_loop", "serve"]

DEFAULTS = Settings()
COMMON: list[Settings] = [DEFAULTS]  # what the top-level options said, for this one run
DbUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="VOXGATE_DATABASE_URL",
        help="SQLAlchemy URL (a Postgres primary with standbys: see docs/deployment.md).",
    ),
]
SecretFile = Annotated[
    Path,
    typer.Option("--secret-file", envvar="VOXGATE_SECRET_FILE", help="Key-encryption key file."),
]

HELP = {
    "role": "all | api | rtc",
    "database_url": "SQLAlchemy URL (as the top-level --database-url).",
    "secret_file": "Key-encryption key file (as the top-level --secret-file).",
    "redis_url": "redis://... for several nodes; in-process when unset.",
    "redis_sentinel": "HOST:PORT of a Redis Sentinel (repeatable; instead of --redis-url): "
    "voxgate follows the master they name through failovers.",
    "redis_master_name": "The name the Sentinels monitor the master under.",
    "redis_password": "Password of the Redis master and replicas (a password in "
    "--redis-url wins; visible in ps: prefer VOXGATE_REDIS_PASSWORD).",
    "redis_sentinel_password": "The Sentinels' own password, if they have one (visible in "
    "ps: prefer VOXGATE_REDIS_SENTINEL_PASSWORD).",
    "node_id": "Name of this node (random by default).",
    "expiry_notice": "Seconds before token expiry to warn the client.",
    "expiry_grace": "Seconds a call in progress may outlive an expired token.",
    "handshake_timeout": "Seconds a socket may stay without logging in.",
    "reattach_window": "Seconds a dropped session keeps its calls for the client (0: off).",
    "max_detached_per_credential": "Dropped sessions with a call one credential may keep "
    "on a node for a reconnect; past it the oldest is let go (its calls end).",
    "ping_interval": "Seconds between server pings (0: none).",
    "idle_timeout": "Seconds of silence after which a session counts as dropped (0: never).",
    "tls_cert": "PEM certificate: serve https:// and wss://.",
    "turn_url": "A TURN server for clients (repeatable): turn:host:3478?transport=udp, ...",
    "stun_url": "A STUN server for clients (repeatable).",
    "turn_secret": "coturn's static-auth-secret (visible in ps: prefer --turn-secret-file).",
    "turn_secret_file": "File holding coturn's static-auth-secret.",
    "turn_ttl": "Seconds a TURN credential lives (default: the token's rest, at most 24 h).",
    "trusted_proxies": "Reverse proxies (CIDR,...; repeatable) whose forwarding header "
    "names the client: limits, lockouts and audit use it.",
    "forwarded_header": "The header the trusted proxies write: x-forwarded-for or forwarded.",
    "webhook_allow": "A range (CIDR,...; repeatable) webhooks may reach besides public "
    "addresses: loopback, link-local, private and reserved ones are refused (SECURITY.md).",
    "region": "Region name told to clients in REGED (Telnyx's `region`).",
    "call_reports": "Accept the SDK's call reports (POST /call_report on the signaling port).",
    "call_report_retention_days": "Days call reports are kept.",
    "call_report_max_bytes": "Largest call report accepted.",
    "call_recordings": "Accept the SDK's raw audio uploads (privacy: see SECURITY.md).",
    "sip": "Run the SIP edge (Kamailio): SIP phones and SIP.js register with the credentials.",
    "sip_edge": "managed (voxgate starts Kamailio) | external (a Kamailio service configured "
    "by `voxgate sip config DIR`).",
    "sip_domain": "SIP domain and digest realm (default: this machine's name); the same on "
    "every node, API nodes included.",
    "sip_address": "Address Kamailio listens on (default: --host).",
    "sip_port": "SIP over UDP and TCP.",
    "sip_tls_port": "SIP over TLS (with --tls-cert).",
    "sip_ws_port": "SIP over WebSocket (RFC 7118); WSS with --tls-cert.",
    "sip_hook_port": "Loopback port where Kamailio asks voxgate for verdicts.",
    "sip_leg_port": "Loopback UDP port of voxgate's SIP user agent, which carries calls "
    "between WebRTC sessions and SIP phones through Kamailio.",
    "sip_dir": "Kamailio's generated configuration and runtime files.",
    "sip_kamailio": "The Kamailio binary.",
    "sip_rtpengine": "The rtpengine binary (the media relay, started with --sip).",
    "sip_flood_limit": "SIP requests per source address per 2 s before Kamailio drops the "
    "address for 5 minutes (0: no limit).",
    "media_address": "Address rtpengine relays SIP media on and writes into SDP (default: "
    "--host); LOCAL!PUBLIC behind NAT: bound to LOCAL, PUBLIC in the SDP.",
    "media_ports": "MIN-MAX: the UDP ports rtpengine relays media on (2 per stream).",
    "rtpengine_ng": "HOST:PORT of rtpengine's ng control socket: an external rtpengine's "
    "(--sip-edge external), or where voxgate's own listens (default: a free port on "
    "127.0.0.1).",
    "anchor_media": "Relay the media of calls between WebRTC sessions through rtpengine too "
    "(with --sip): the SDK's own hold() then stops the audio both ways, and the console's "
    "call view shows the relay's packet counters.",
    "workers": "Gateway processes sharing the signaling port (SO_REUSEPORT): a number, or "
    "auto (one per usable core). More than one needs --redis-url or --redis-sentinel, which "
    "they share as the nodes of a cluster do.",
    "migrate": "Upgrade the database schema at start; with --no-migrate, refuse to start on "
    "an older schema (several nodes: run `voxgate migrate` once, then the nodes).",
}
# bootstrap_api_key: a secret, from the environment only, never argv; worker: set by the parent
NOT_OPTIONS = {"bootstrap_api_key", "worker"}


def serve(**options: Any) -> None:
    """Run the REST API and the signaling gateway."""
    if (options["tls_cert"] is None) != (options["tls_key"] is None):
        typer.echo("error: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    if options["role"] not in ("all", "api", "rtc"):
        typer.echo("error: --role must be all, api or rtc", err=True)
        raise typer.Exit(2)
    if options["sip"] and options["role"] == "api":
        typer.echo("error: --sip runs on a gateway node (--role rtc or all)", err=True)
        raise typer.Exit(2)
    if options["anchor_media"] and not options["sip"]:
        typer.echo("error: --anchor-media relays through rtpengine: it needs --sip", err=True)
        raise typer.Exit(2)
    if options["max_detached_per_credential"] < 1:
        typer.echo("error: --max-detached-per-credential must be 1 or more", err=True)
        raise typer.Exit(2)
    if options["sip_edge"] not in ("managed", "external"):
        typer.echo("error: --sip-edge must be managed or external", err=True)
        raise typer.Exit(2)
    refused = _redis_refused(options) or _workers_refused(options)
    if refused:
        typer.echo(f"error: {refused}", err=True)
        raise typer.Exit(2)
    from voxgate.server import serve as run_server

    configure_logging(options["log_level"])
    common = COMMON[0]
    for shared in ("database_url", "secret_file"):  # given before the command, or here
        if options[shared] == getattr(DEFAULTS, shared):
            options[shared] = getattr(common, shared)
    bootstrap = os.environ.get("VOXGATE_BOOTSTRAP_API_KEY") or None
    lists = {k: tuple(v) for k, v in options.items() if isinstance(v, list)}
    settings = Settings(**{**options, **lists}, bootstrap_api_key=bootstrap)
    try:
        settings.proxies()
        settings.webhook_targets()
    except ConfigurationError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None
    try:
        run_loop(run_server(settings))
    except OSError as exc:
        typer.echo(f"error: cannot start: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    except ConfigurationError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def _redis_refused(options: dict[str, Any]) -> str | None:
    """Why the Redis options do not name one Redis, or None."""
    given = {k: options[k] for k in ("redis_url", "redis_sentinel", "redis_master_name")}
    try:
        Settings(**{**given, "redis_sentinel": tuple(given["redis_sentinel"])}).redis_target()
    except ConfigurationError as exc:
        return exc.detail
    return None


def _workers_refused(options: dict[str, Any]) -> str | None:
    """Why ``--workers`` cannot be had with the other options, or None."""
    try:
        count = Settings(workers=options["workers"]).worker_count()
    except ConfigurationError as exc:
        return exc.detail
    if count == 1:
        return None
    if not options["redis_url"] and not options["redis_sentinel"]:
        return (
            f"--workers {options['workers']} needs --redis-url (or --redis-sentinel): the "
            "workers share presence, calls and revocations through Redis, as the nodes of a "
            "cluster do (without it, one process serves: --workers 1)"
        )
    if options["role"] == "api":
        return "--workers starts gateway processes: not with --role api"
    if options["sip"]:
        return (
            "--workers with --sip: the SIP edge runs beside one gateway process; run it on a "
            "node with --workers 1 and the other nodes with workers"
        )
    return None


def _parameters() -> list[inspect.Parameter]:
    hints = typing.get_type_hints(Settings)
    params = []
    for field in dataclasses.fields(Settings):
        if field.name in NOT_OPTIONS:
            continue
        kind, default = hints[field.name], getattr(DEFAULTS, field.name)
        if typing.get_origin(kind) is tuple:  # repeatable: --turn-url A --turn-url B
            kind, default = list[str], list(default)
        help_text = HELP.get(field.name, "")
        option = typer.Option(envvar="VOXGATE_" + field.name.upper(), help=help_text)
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[kind, option],
            )
        )
    return params


serve.__signature__ = inspect.Signature(_parameters())  # type: ignore[attr-defined]


M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def fewer_malloc_arenas() -> None:
    """glibc gives threads that allocate arenas of their own (up to 8 per core), whose touched
    pages stay resident: the store's thread and the executor's spread small allocations over
    arenas that never shrink. Two are enough for a process whose work is one event loop
    (``make bench``, idle session memory in a new process: 11.4 -> 10.0 KB per session). An
    operator's own ``MALLOC_ARENA_MAX`` wins; on a libc without arenas this does nothing."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):  # not glibc (musl has one heap and no mallopt)
        return


def run_loop(coro: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed (it ships with uvicorn[standard]): faster sockets, same semantics."""
    fewer_malloc_arenas()
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)
