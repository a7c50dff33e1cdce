"""``/ai/assistants``: the minimal registry that ``anonymous_login`` targets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from voxgate.api import render
from voxgate.api.deps import control, json_body
from voxgate.api.paging import page_args, page_envelope
from voxgate.domain.errors import ValidationFailed

__all__ = ["router"]

router = APIRouter(prefix="/ai/assistants", tags=["AI Assistants"])


@router.post("", status_code=201)
async def create(request: Request) -> JSONResponse:
    body = await json_body(request)
    name, kind, instructions = body.get("name"), body.get("kind", "echo"), body.get("instructions")
    if not isinstance(name, str):
        raise ValidationFailed("name is required", pointer="/name")
    if not isinstance(kind, str):
        raise ValidationFailed("kind must be a string", pointer="/kind")
    if instructions is not None and not isinstance(instructions, str):
        raise ValidationFailed("instructions must be a string", pointer="/instructions")
    item = await control(request).assistants.create(name, kind, instructions)
    return JSONResponse({"data": render.assistant(item)}, status_code=201)


@router.get("")
async def list_(request: Request) -> dict[str, Any]:
    number, size = page_args(request.query_params, default=50, maximum=250)
    page = await control(request).assistants.list(number, size)
    return page_envelope(page, render.assistant)


@router.get("/{assistant_id}")
async def retrieve(assistant_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.assistant(await control(request).assistants.get(assistant_id))}


@router.delete("/{assistant_id}")
async def delete(assistant_id: str, request: Request) -> dict[str, Any]:
    return {"data": render.assistant(await control(request).assistants.delete(assistant_id))}
