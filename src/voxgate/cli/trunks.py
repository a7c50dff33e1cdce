"""``voxgate trunks | numbers``: the phone network by hand (SIP trunks, the numbers you hold).

Each prints the record as JSON (the REST API's shape); a trunk's password is never printed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from voxgate.api import render
from voxgate.cli.common import numbers_app, print_json, run, trunks_app
from voxgate.domain.errors import ValidationFailed
from voxgate.domain.records import Page, PhoneNumber
from voxgate.runtime import Runtime
from voxgate.services.schemas import parse
from voxgate.services.trunk_schemas import NumberCreate, NumberUpdate, TrunkCreate, TrunkUpdate

__all__ = ["numbers_create", "trunks_create"]

T = TypeVar("T")

NONE = "none"  # the value that clears an optional setting

Name = Annotated[str | None, typer.Option(help="A name for people.")]
Host = Annotated[str | None, typer.Option(help="The carrier's host name or IP address.")]
Port = Annotated[int | None, typer.Option(help="Default 5060 (5061 with tls).")]
Transport = Annotated[str | None, typer.Option(help="udp (default), tcp or tls.")]
Username = Annotated[str | None, typer.Option(help="For the carrier's digest challenges.")]
Password = Annotated[
    str | None, typer.Option(help="Goes with --username; stored sealed, never shown.")
]
CallerId = Annotated[str | None, typer.Option(help="+E.164 presented in From and PAI.")]
Sources = Annotated[
    list[str] | None,
    typer.Option(
        "--source-address",
        help="An IP or CIDR the carrier calls from (repeatable; default: the host's own).",
    ),
]
Limit = Annotated[int | None, typer.Option(help="Calls at once on this trunk.")]


def _given(**options: Any) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


def _trunk(
    name: str | None,
    host: str | None,
    port: int | None,
    transport: str | None,
    username: str | None,
    password: str | None,
    **more: Any,
) -> dict[str, Any]:
    """The body of a trunk's create or update: the options given, those both take first."""
    return _given(
        name=name,
        host=host,
        port=port,
        transport=transport,
        username=username,
        password=password,
        **more,
    )


def _show(action: Callable[[Runtime], Awaitable[T]], shown: Callable[[T], Any]) -> None:
    """Runs ``action`` against the store and prints what it gives, as ``shown`` renders it."""

    async def go(rt: Runtime) -> Any:
        return shown(await action(rt))

    print_json(run(go))


def _show_all(
    action: Callable[[Runtime], Awaitable[Page[T]]], shown: Callable[[T], dict[str, Any]]
) -> None:
    """Runs ``action`` against the store and prints each record of the page it gives."""
    _show(action, lambda page: [shown(item) for item in page.items])


@trunks_app.command("create")
def trunks_create(
    name: Annotated[str, typer.Option(help="A name for people.")],
    host: Annotated[str, typer.Option(help="The carrier's host name or IP address.")],
    port: Port = None,
    transport: Transport = None,
    username: Username = None,
    password: Password = None,
    caller_id: CallerId = None,
    register: Annotated[bool, typer.Option(help="Keep a registration at the carrier.")] = False,
    source_address: Sources = None,
    concurrent_call_limit: Limit = None,
) -> None:
    """Create a SIP trunk (the carrier's peer for calls to and from phone numbers)."""
    body = _trunk(
        name,
        host,
        port,
        transport,
        username,
        password,
        caller_id=caller_id,
        register=register,
        source_addresses=source_address or None,
        concurrent_call_limit=concurrent_call_limit,
    )
    _show(lambda rt: rt.control.trunks.create(parse(TrunkCreate, body)), render.trunk)


@trunks_app.command("list")
def trunks_list() -> None:
    """List SIP trunks."""
    _show_all(lambda rt: rt.control.trunks.list(1, 1000), render.trunk)


@trunks_app.command("update")
def trunks_update(
    trunk_id: str,
    name: Name = None,
    host: Host = None,
    port: Port = None,
    transport: Transport = None,
    username: Username = None,
    password: Password = None,
    clear_credentials: Annotated[
        bool, typer.Option(help="Remove the username and password.")
    ] = False,
    caller_id: Annotated[str | None, typer.Option(help="+E.164; 'none' clears it.")] = None,
    register: Annotated[
        bool | None, typer.Option("--register/--no-register", help="Register at the carrier.")
    ] = None,
    source_address: Annotated[
        list[str] | None,
        typer.Option("--source-address", help="Replaces the list (repeatable); 'none' clears."),
    ] = None,
    concurrent_call_limit: Annotated[int | None, typer.Option(help="0 clears the limit.")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Take calls on it, or not.")
    ] = None,
) -> None:
    """Change a SIP trunk: only the options given."""
    body = _trunk(
        name, host, port, transport, username, password, register=register, enabled=enabled
    )
    if clear_credentials:
        body |= {"username": None, "password": None}
    if caller_id is not None:
        body["caller_id"] = None if caller_id.lower() == NONE else caller_id
    if source_address:
        body["source_addresses"] = [a for a in source_address if a.lower() != NONE]
    if concurrent_call_limit is not None:
        body["concurrent_call_limit"] = concurrent_call_limit or None
    _show(lambda rt: rt.control.trunks.update(trunk_id, parse(TrunkUpdate, body)), render.trunk)


@trunks_app.command("delete")
def trunks_delete(trunk_id: str) -> None:
    """Delete a SIP trunk (prints it as it was)."""
    _show(lambda rt: rt.control.trunks.delete(trunk_id), render.trunk)


# -- numbers ------------------------------------------------------------------------------
CredentialId = Annotated[str | None, typer.Option(help="The credential the number rings.")]
ConnectionId = Annotated[
    str | None, typer.Option(help="The connection whose registrations it rings.")
]


@numbers_app.command("create")
def numbers_create(
    phone_number: Annotated[str, typer.Argument(help="+E.164, as held at your carrier.")],
    credential_id: CredentialId = None,
    connection_id: ConnectionId = None,
    trunk: Annotated[str | None, typer.Option(help="Only calls arriving on this trunk.")] = None,
) -> None:
    """Assign a number to a credential (--credential-id) or a connection (--connection-id)."""
    body = _given(
        phone_number=phone_number,
        credential_id=credential_id,
        connection_id=connection_id,
        trunk_id=trunk,
    )

    async def create(rt: Runtime) -> PhoneNumber:
        if (credential_id is None) == (connection_id is None):
            raise ValidationFailed("give exactly one of --credential-id and --connection-id")
        return await rt.control.numbers.create(parse(NumberCreate, body))

    _show(create, render.phone_number)


@numbers_app.command("list")
def numbers_list(
    credential_id: Annotated[str | None, typer.Option(help="Only this credential's.")] = None,
    connection_id: Annotated[str | None, typer.Option(help="Only this connection's.")] = None,
) -> None:
    """List the numbers voxgate holds."""
    _show_all(
        lambda rt: rt.control.numbers.list(1, 1000, connection_id, credential_id),
        render.phone_number,
    )


@numbers_app.command("update")
def numbers_update(
    number_id: str,
    credential_id: CredentialId = None,
    connection_id: ConnectionId = None,
    trunk: Annotated[str | None, typer.Option(help="A trunk id; 'none' clears it.")] = None,
) -> None:
    """Reassign a number: to a credential, a connection, or a trunk."""
    body = _given(credential_id=credential_id, connection_id=connection_id)
    if trunk is not None:
        body["trunk_id"] = None if trunk.lower() == NONE else trunk
    _show(
        lambda rt: rt.control.numbers.update(number_id, parse(NumberUpdate, body)),
        render.phone_number,
    )


@numbers_app.command("delete")
def numbers_delete(number_id: str) -> None:
    """Release a number (prints it as it was)."""
    _show(lambda rt: rt.control.numbers.delete(number_id), render.phone_number)
