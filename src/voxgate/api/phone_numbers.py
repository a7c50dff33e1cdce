"""``/phone_numbers``: the numbers voxgate holds, shaped as Telnyx shows its numbers, so the
SDKs' ``phone_numbers.list/retrieve/update/delete`` work. Creating one is voxgate's own
(on Telnyx a number is bought): the number you hold at your carrier, assigned here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxgate.api import render
from voxgate.api.connections import _schema
from voxgate.api.deps import control, json_body
from voxgate.api.paging import filters, page_args
from voxgate.domain.records import PhoneNumber
from voxgate.services.control import ControlPlane
from voxgate.services.schemas import parse
from voxgate.services.trunk_schemas import NumberCreate, NumberUpdate

__all__ = ["router"]

router = APIRouter(prefix="/phone_numbers", tags=["Phone Numbers"])


async def _rendered(plane: ControlPlane, numbers: list[PhoneNumber]) -> list[dict[str, Any]]:
    """Each number with its connection's name, each connection read once."""
    names: dict[str, str | None] = {}
    for conn_id in {n.connection_id for n in numbers}:
        conn = await plane.store.get_connection(conn_id)
        names[conn_id] = conn.connection_name if conn else None
    return [render.phone_number(n, names[n.connection_id]) for n in numbers]


async def _one(plane: ControlPlane, number: PhoneNumber) -> dict[str, Any]:
    return {"data": (await _rendered(plane, [number]))[0]}


@router.post("", status_code=201, openapi_extra=_schema(NumberCreate))
async def create(request: Request) -> JSONResponse:
    """Assign a number (+E.164) you hold at your carrier: to a credential
    (``credential_id``: calls to it ring that credential) or to a connection
    (``connection_id``: they ring the connection's registrations); ``trunk_id`` limits it to
    calls arriving on that trunk. A voxgate extension: Telnyx sells its numbers instead."""
    plane = control(request)
    number = await plane.numbers.create(parse(NumberCreate, await json_body(request)))
    return JSONResponse(await _one(plane, number), status_code=201)


@router.get("")
async def list_(request: Request) -> dict[str, Any]:
    """List numbers, newest first; ``filter[connection_id]``, ``filter[credential_id]``,
    ``page[number]``, ``page[size]`` (default 20, up to 250)."""
    number, size = page_args(request.query_params, default=20, maximum=250)
    flt = filters(request.query_params)
    plane = control(request)
    page = await plane.numbers.list(
        number, size, flt.get("connection_id"), flt.get("credential_id")
    )
    return {
        "data": await _rendered(plane, page.items),
        "meta": {
            "page_number": page.number,
            "page_size": page.size,
            "total_pages": page.total_pages,
            "total_results": page.total,
        },
    }


@router.get("/{number_id}")
async def retrieve(number_id: str, request: Request) -> dict[str, Any]:
    """Retrieve a number."""
    plane = control(request)
    return await _one(plane, await plane.numbers.get(number_id))


@router.patch("/{number_id}", openapi_extra=_schema(NumberUpdate))
async def update(number_id: str, request: Request) -> dict[str, Any]:
    """Reassign a number: ``connection_id`` (Telnyx's field), and voxgate's ``credential_id``
    and ``trunk_id`` (``null`` clears them). Other Telnyx fields are accepted and ignored."""
    plane = control(request)
    body = parse(NumberUpdate, await json_body(request))
    return await _one(plane, await plane.numbers.update(number_id, body))


@router.delete("/{number_id}")
async def delete(number_id: str, request: Request) -> dict[str, Any]:
    """Release a number: calls to it are refused from now on."""
    plane = control(request)
    return await _one(plane, await plane.numbers.delete(number_id))
