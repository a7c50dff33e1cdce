"""``voxgate connections | credentials | tokens | audit | assistants``: the records, by hand."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer

from voxgate.api import render
from voxgate.cli.common import (
    app,
    assistants_app,
    connections_app,
    credentials_app,
    print_json,
    run,
    tokens_app,
)
from voxgate.domain.errors import NotFound
from voxgate.runtime import Runtime
from voxgate.services.schemas import (
    ConnectionCreate,
    ConnectionUpdate,
    CredentialCreate,
    CredentialUpdate,
    parse,
)
from voxgate.services.sip_secrets import reset_password
from voxgate.store.base import ConnectionFilter, CredentialFilter

__all__ = ["audit"]


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

    print_json(run(go))


@connections_app.command("list")
def connections_list() -> None:
    """List credential connections."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.list_connections(ConnectionFilter(), 1, 1000)
        return [render.connection(c) for c in page.items]

    print_json(run(go))


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
    outbound_trunk: Annotated[
        str | None, typer.Option(help="The SIP trunk calls to numbers go out on; 'none' clears.")
    ] = None,
    whitelisted_destinations: Annotated[
        str | None, typer.Option(help="Countries calls may go to, like US,CA; 'none': nowhere.")
    ] = None,
    calls_per_minute: Annotated[
        int | None, typer.Option(help="Calls to numbers a minute; 0 clears the limit.")
    ] = None,
) -> None:
    """Change a connection's defaults for its credentials, its answer to token reuse, and
    its calls to phone numbers (the trunk, the countries, the rate)."""
    body = _registration_fields(registration_policy, max_registrations)
    if on_token_reuse is not None:
        body["on_token_reuse"] = on_token_reuse
    outbound: dict[str, Any] = {}
    if outbound_trunk is not None:
        outbound["trunk_id"] = None if outbound_trunk.lower() == "none" else outbound_trunk
    if whitelisted_destinations is not None:
        codes = whitelisted_destinations.split(",")
        outbound["whitelisted_destinations"] = [
            c.strip() for c in codes if c.strip() and c.strip().lower() != "none"
        ]
    if calls_per_minute is not None:
        outbound["calls_per_minute"] = calls_per_minute or None
    if outbound:
        body["outbound"] = outbound

    async def go(rt: Runtime) -> dict[str, Any]:
        conn, _ = await rt.control.update_connection(connection_id, parse(ConnectionUpdate, body))
        return render.connection(conn)

    print_json(run(go))


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

    print_json(run(go))


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

    print_json(run(go))


@credentials_app.command("list")
def credentials_list(
    tag: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
) -> None:
    """List telephony credentials."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.list_credentials(CredentialFilter(tag=tag, status=status), 1, 1000)
        return [render.credential(c) for c in page.items]

    print_json(run(go))


def _credential_action(verb: str, action: Callable[[Runtime, str], Awaitable[Any]]) -> None:
    @credentials_app.command(verb)
    def command(
        credential_id: str,
    ) -> None:
        run(lambda rt: action(rt, credential_id))
        typer.echo(f"{verb.removesuffix('e')}ed {credential_id}")

    command.__doc__ = (
        f"{verb.capitalize()} a credential (live sessions are ended where that applies)."
    )


_credential_action("activate", lambda rt, cid: rt.control.set_credential_active(cid, True))
_credential_action("deactivate", lambda rt, cid: rt.control.set_credential_active(cid, False))
_credential_action("delete", lambda rt, cid: rt.control.delete_credential(cid))


@credentials_app.command("reset-password")
def credentials_reset_password(credential_id: str) -> None:
    """A new SIP password (for SIP phones and password logins), shown only now; the
    credential's live sessions and SIP registrations end, its tokens stay valid."""

    async def go(rt: Runtime) -> dict[str, Any]:
        cred, clear = await reset_password(rt.control, credential_id)
        return render.credential(cred, clear)

    print_json(run(go))


# -- tokens, audit, assistants ------------------------------------------------------------
@tokens_app.command("create")
def tokens_create(
    credential_id: str,
) -> None:
    """Mint a login JWT for a credential and print it."""

    async def go(rt: Runtime) -> str:
        token, _ = await rt.control.mint_token(credential_id)
        return token

    typer.echo(run(go))


@app.command()
def audit(
    credential_id: str,
) -> None:
    """Show a credential's audit trail, newest first."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.audit_log.page(credential_id, 1, 250)
        return [render.audit_event(e) for e in page.items]

    print_json(run(go))


@assistants_app.command("create")
def assistants_create(
    name: Annotated[str, typer.Option()],
    kind: Annotated[str, typer.Option(help="echo | tone | greeting | custom")] = "echo",
) -> None:
    """Register an AI assistant that anonymous_login can target."""

    async def go(rt: Runtime) -> dict[str, Any]:
        return render.assistant(await rt.control.assistants.create(name, kind))

    print_json(run(go))


@assistants_app.command("list")
def assistants_list() -> None:
    """List AI assistants."""

    async def go(rt: Runtime) -> list[dict[str, Any]]:
        page = await rt.control.assistants.list(1, 1000)
        return [render.assistant(a) for a in page.items]

    print_json(run(go))


calls_app = typer.Typer(no_args_is_help=True, help="Calls: what their reports say.")
app.add_typer(calls_app, name="calls")


@calls_app.command("report")
def calls_report(call_id: str) -> None:
    """One call leg's quality from its SDK reports (the SDK's call.id): duration, RTT, jitter,
    packet loss, packets and bytes, MOS."""

    async def go(rt: Runtime) -> dict[str, Any]:
        from voxgate.domain.callquality import summarize

        reports = [r for r in await rt.control.store.call_reports_of(call_id) if r.kind == "report"]
        if not reports:
            raise NotFound("No call reports for that call", pointer="/call_id")
        summary = summarize([r.body for r in reports])
        return {"call_id": call_id, "reports": len(reports), **summary}

    print_json(run(go))
