"""``/credential_connections``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxgate.api import render
from voxgate.api.deps import control, json_body
from voxgate.api.paging import filters, page_args, page_envelope
from voxgate.domain.errors import BadRequest
from voxgate.domain.principals import Principal
from voxgate.services.schemas import ConnectionCreate, ConnectionUpdate, parse
from voxgate.store.base import ConnectionFilter

__all__ = ["router"]

router = APIRouter(prefix="/credential_connections", tags=["Credential Connections"])
_SORTS = {"created_at", "connection_name", "active"}


def _schema(model: type[Any]) -> dict[str, Any]:
    """A body's schema for the OpenAPI document; its nested models go to the document's
    components (``api/docs.py`` hoists this ``$defs``), where the references point."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


@router.post("", status_code=201, openapi_extra=_schema(ConnectionCreate))
async def create(request: Request) -> JSONResponse:
    body = parse(ConnectionCreate, await json_body(request))
    conn, password = await control(request).create_connection(body)
    return JSONResponse({"data": render.connection(conn, password)}, status_code=201)


@router.get("")
async def list_(request: Request) -> dict[str, Any]:
    query = request.query_params
    number, size = page_args(query, default=250, maximum=250)
    flt = filters(query)
    sort = query.get("sort", "-created_at")
    if sort.lstrip("-") not in _SORTS:
        raise BadRequest(
            f"sort must be one of {', '.join(sorted(_SORTS))}, optionally prefixed with '-'",
            pointer="/sort",
        )
    contains = flt.get("connection_name.contains")
    if contains is not None and len(contains) < 3:
        raise BadRequest(
            "filter[connection_name][contains] requires at least three characters",
            pointer="/filter/connection_name/contains",
        )
    spec = ConnectionFilter(
        name_contains=contains,
        outbound_voice_profile_id=flt.get("outbound_voice_profile_id")
        or flt.get("outbound.outbound_voice_profile_id"),
        sort=sort,
    )
    page = await control(request).list_connections(spec, number, size)
    return page_envelope(page, render.connection)


@router.get("/{conn_id}")
async def retrieve(conn_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.connection(await control(request).get_connection(conn_id))}


@router.patch("/{conn_id}", openapi_extra=_schema(ConnectionUpdate))
async def update(conn_id: str, request: Request) -> dict[str, Any]:
    body = parse(ConnectionUpdate, await json_body(request))
    conn, password = await control(request).update_connection(conn_id, body)
    return {"data": render.connection(conn, password)}


@router.delete("/{conn_id}")
async def delete(conn_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.connection(await control(request).delete_connection(conn_id))}


@router.post("/{conn_id}/actions/check_registration_status")
async def check_registration_status(conn_id: str, request: Request) -> dict[str, Any]:
    plane = control(request)
    conn = await plane.get_connection(conn_id)
    regs = await plane.bus.registrations_of_connection(conn_id)
    regs += [
        r for r in await plane.bus.registrations(Principal.connection(conn_id)) if r not in regs
    ]
    latest = max(regs, key=lambda r: r.registered_at, default=None)
    return {"data": render.registration_status(conn, latest)}
