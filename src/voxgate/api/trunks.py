"""``/sip_trunks``: voxgate's own resource (Telnyx has no SIP trunk of yours to point at).

A trunk is the peer calls to phone numbers go out to and calls to your numbers come in from.
Its password is write-only: responses say ``password_set``, never the password.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxgate.api import render
from voxgate.api.connections import _schema
from voxgate.api.deps import control, json_body
from voxgate.api.paging import page_args, page_envelope
from voxgate.bus.base import BusUnavailable
from voxgate.services.schemas import parse
from voxgate.services.trunk_schemas import TrunkCreate, TrunkUpdate

__all__ = ["router"]

router = APIRouter(prefix="/sip_trunks", tags=["SIP Trunks"])


@router.post("", status_code=201, openapi_extra=_schema(TrunkCreate))
async def create(request: Request) -> JSONResponse:
    """Create a SIP trunk. The port defaults to 5060 (5061 for TLS); a username and password
    (both or neither) answer the carrier's digest challenges; ``register`` keeps a
    registration at the carrier; ``source_addresses`` (IPs or CIDRs) are where its calls may
    come from (none: the host's own addresses)."""
    body = parse(TrunkCreate, await json_body(request))
    trunk = await control(request).trunks.create(body)
    return JSONResponse({"data": render.trunk(trunk, [])}, status_code=201)


@router.get("")
async def list_(request: Request) -> dict[str, Any]:
    """List SIP trunks, newest first (``page[number]``, ``page[size]`` up to 250)."""
    number, size = page_args(request.query_params, default=50, maximum=250)
    page = await control(request).trunks.list(number, size)
    seen = await _registrations(request)
    return page_envelope(page, lambda t: render.trunk(t, seen.get(t.id)))


@router.get("/{trunk_id}")
async def retrieve(trunk_id: str, request: Request) -> dict[str, Any]:
    """Retrieve a SIP trunk, with ``registration_status`` (``registered``, ``failed``,
    ``unknown`` or ``not_registering``) as the SIP edge nodes report it."""
    trunk = await control(request).trunks.get(trunk_id)
    return {"data": render.trunk(trunk, (await _registrations(request)).get(trunk.id))}


@router.patch("/{trunk_id}", openapi_extra=_schema(TrunkUpdate))
async def update(trunk_id: str, request: Request) -> dict[str, Any]:
    """Change a SIP trunk: only the fields given. ``null`` clears ``caller_id``,
    ``concurrent_call_limit`` and ``source_addresses``; for ``username`` or ``password`` it
    clears both."""
    body = parse(TrunkUpdate, await json_body(request))
    return {"data": render.trunk(await control(request).trunks.update(trunk_id, body))}


@router.delete("/{trunk_id}")
async def delete(trunk_id: str, request: Request) -> dict[str, Any]:
    """Delete a SIP trunk. Numbers tied to it then arrive on any enabled trunk; connections
    whose calls went out on it have calls to numbers refused until given another."""
    return {"data": render.trunk(await control(request).trunks.delete(trunk_id))}


async def _registrations(request: Request) -> dict[str, list[bool]]:
    """Trunk id -> what each node's SIP edge says of its registration (node reports)."""
    seen: dict[str, list[bool]] = {}
    with contextlib.suppress(BusUnavailable):
        for report in await control(request).bus.node_reports():
            for trunk_id, up in dict(report.get("trunks") or {}).items():
                seen.setdefault(str(trunk_id), []).append(bool(up))
    return seen
