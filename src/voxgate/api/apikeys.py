"""``/api_keys`` (ours): list, create and revoke API keys with an admin key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxgate.api import render
from voxgate.api.deps import control, json_body
from voxgate.domain.errors import ValidationFailed

__all__ = ["router"]

router = APIRouter(prefix="/api_keys", tags=["API Keys"])


@router.get("", summary="Every API key: label, prefix, scope, created, last used, revoked")
async def list_(request: Request) -> dict[str, Any]:
    keys = await control(request).api_keys.list()
    return {"data": [render.api_key(k) for k in keys]}


@router.post("", status_code=201, summary="A new key (shown in this response only)")
async def create(request: Request) -> JSONResponse:
    body = await json_body(request)
    label, scope = body.get("label"), body.get("scope", "admin")
    if not isinstance(label, str):
        raise ValidationFailed("label is required", pointer="/label")
    if not isinstance(scope, str):
        raise ValidationFailed("scope must be admin or tokens", pointer="/scope")
    key, record = await control(request).api_keys.create(label, scope)
    return JSONResponse({"data": render.api_key(record, key)}, status_code=201)


@router.delete("/{key_id}", summary="Revoke a key: refused everywhere within 5 s")
async def revoke(key_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.api_key(await control(request).api_keys.revoke(key_id))}
