"""``/telephony_credentials``, their tokens, legacy actions, and our extensions (audit trail,
ICE servers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from voxgate.api import render
from voxgate.api.connections import _schema
from voxgate.api.deps import control, json_body
from voxgate.api.paging import filters, page_args, page_envelope
from voxgate.domain.errors import BadRequest, NotFound
from voxgate.domain.records import CredentialStatus
from voxgate.services.ice import credential_ice_servers
from voxgate.services.schemas import CredentialCreate, CredentialUpdate, parse
from voxgate.services.sip_secrets import reset_password
from voxgate.store.base import CredentialFilter

__all__ = ["router"]

router = APIRouter(prefix="/telephony_credentials", tags=["Telephony Credentials"])


# Minting is the hot path; it is matched first.
@router.post(
    "/{cred_id}/token",
    status_code=201,
    response_class=PlainTextResponse,
    responses={201: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def create_token(cred_id: str, request: Request) -> PlainTextResponse:
    token, _ = await control(request).mint_token(cred_id)
    return PlainTextResponse(token, status_code=201, headers={"cache-control": "no-store"})


@router.post("", status_code=201, openapi_extra=_schema(CredentialCreate))
async def create(request: Request) -> JSONResponse:
    body = parse(CredentialCreate, await json_body(request))
    cred, password = await control(request).create_credential(body)
    return JSONResponse({"data": render.credential(cred, password)}, status_code=201)


@router.get("")
async def list_(request: Request) -> dict[str, Any]:
    number, size = page_args(request.query_params, default=50, maximum=250)
    flt = filters(request.query_params)
    status = flt.get("status")
    if status is not None and status not in CredentialStatus.ALL:
        raise BadRequest(
            f"filter[status] must be one of {', '.join(CredentialStatus.ALL)}",
            pointer="/filter/status",
        )
    resource = flt.get("resource_id")
    connection_id = None
    if resource is not None:
        connection_id = resource.removeprefix("connection:")
    spec = CredentialFilter(
        tag=flt.get("tag"),
        name=flt.get("name"),
        status=status,
        connection_id=connection_id,
        sip_username=flt.get("sip_username"),
    )
    page = await control(request).list_credentials(spec, number, size)
    return page_envelope(page, render.credential)


@router.get("/{cred_id}")
async def retrieve(cred_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.credential(await control(request).get_credential(cred_id))}


@router.patch("/{cred_id}", openapi_extra=_schema(CredentialUpdate))
async def update(cred_id: str, request: Request) -> dict[str, Any]:
    body = parse(CredentialUpdate, await json_body(request))
    return {"data": render.credential(await control(request).update_credential(cred_id, body))}


@router.delete("/{cred_id}")
async def delete(cred_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.credential(await control(request).delete_credential(cred_id))}


@router.post("/{cred_id}/actions/{action}")
async def action(cred_id: str, action: str, request: Request) -> dict[str, Any]:
    plane = control(request)
    password = None
    if action == "activate":
        cred = await plane.set_credential_active(cred_id, True)
    elif action == "deactivate":
        cred = await plane.set_credential_active(cred_id, False)
    elif action == "revoke_tokens":
        cred = await plane.revoke_tokens(cred_id)
    elif action == "reset_password":  # ours: a new SIP password (and digest), shown once
        cred, password = await reset_password(plane, cred_id)
    else:
        raise NotFound(
            "Unknown action; use activate, deactivate, revoke_tokens or reset_password",
            pointer="/action",
        )
    return {"data": render.credential(cred, password)}


@router.post(
    "/{cred_id}/ice_servers",
    summary="ICE servers (STUN, and TURN credentials named after the credential) for a client",
)
async def ice_servers(cred_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.ice_servers(await credential_ice_servers(control(request), cred_id))}


@router.get("/{cred_id}/audit")
async def audit(cred_id: str, request: Request) -> dict[str, Any]:
    number, size = page_args(request.query_params, default=50, maximum=250)
    page = await control(request).audit_log.page(cred_id, number, size)
    return page_envelope(page, render.audit_event)
