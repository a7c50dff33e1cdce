"""``voxgate keys``: API keys (made, listed, revoked) and token signing keys (rotated, retired)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

import typer

from voxgate.api import render
from voxgate.cli.common import keys_app, print_json, run, settings
from voxgate.domain.records import ApiKey
from voxgate.runtime import Runtime

__all__ = ["keys_create", "keys_list", "keys_list_api", "keys_retire", "keys_revoke", "keys_rotate"]


@keys_app.command("create")
def keys_create(
    label: Annotated[str, typer.Option("--label")],
    scope: Annotated[
        str, typer.Option(help="admin (everything) or tokens (read credentials, mint tokens)")
    ] = "admin",
) -> None:
    """Create an API key; it is printed once and only its SHA-256 digest is stored."""
    key, _ = run(lambda rt: rt.control.api_keys.create(label, scope))
    typer.echo(key)


@keys_app.command("list")
def keys_list_api() -> None:
    """List API keys: label, prefix, scope, created, last used, revoked."""
    print_json(run(lambda rt: _rendered(rt.control.api_keys.list())))


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an API key (every node refuses it within 5 s)."""
    run(lambda rt: rt.control.api_keys.revoke(key_id))
    typer.echo(f"revoked {key_id}")


async def _rendered(keys: Awaitable[list[ApiKey]]) -> list[dict[str, Any]]:
    return [render.api_key(k) for k in await keys]


@keys_app.command("rotate-signing")
def keys_rotate() -> None:
    """Add a new token signing key; older keys keep verifying until retired."""
    typer.echo(run(lambda rt: rt.control.rotate_signing_key()))


@keys_app.command("retire-signing")
def keys_retire(
    kid: str,
) -> None:
    """Retire a signing key: tokens it signed stop verifying."""
    run(lambda rt: rt.control.retire_signing_key(kid))
    typer.echo(f"retired {kid}")


@keys_app.command("webhook-public-key")
def keys_webhook_public_key() -> None:
    """Print the Ed25519 public key that verifies voxgate's webhooks (TELNYX_PUBLIC_KEY)."""
    from voxgate.auth.keyring import Sealer
    from voxgate.webhooks import WebhookSigner
    from voxgate.webhooks.signing import PURPOSE

    sealer = Sealer.from_file(settings().secret_file)
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

    print_json(run(go))
