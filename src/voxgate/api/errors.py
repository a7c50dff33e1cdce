"""Telnyx error envelopes for every failure, including the framework's own 404/405/400."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from voxgate.domain.errors import (
    AuthenticationFailed,
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    VoxgateError,
)

__all__ = ["STORE_ERRORS", "error_response", "install_error_handlers", "store_unavailable"]

log = structlog.get_logger("voxgate.api")

STORE_ERRORS = (DBAPIError, PoolTimeout, OSError)  # the store is down, not the request wrong

_DOCS = "https://developers.telnyx.com/docs/overview/errors/"


def error_response(err: VoxgateError) -> JSONResponse:
    item: dict[str, object] = {
        "code": err.code,
        "title": err.title,
        "detail": err.detail,
        "meta": {"url": _DOCS + err.code},
    }
    if err.pointer is not None:
        item["source"] = {"pointer": err.pointer}
    headers: dict[str, str] = {}
    if isinstance(err, Conflict):
        headers["x-should-retry"] = "false"
    if isinstance(err, TooManyRequests | ServiceUnavailable):
        headers["retry-after"] = str(max(1, int(getattr(err, "retry_after", 1))))
    return JSONResponse({"errors": [item]}, status_code=err.status, headers=headers)


def store_unavailable(exc: Exception) -> JSONResponse:
    log.warning("store unavailable", error=type(exc).__name__)
    return error_response(ServiceUnavailable("The data store is unavailable; retry shortly."))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VoxgateError)
    async def _voxgate(_: Request, exc: VoxgateError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(
                NotFound("The requested resource or URL could not be found.", pointer="/")
            )
        if exc.status_code == 401:
            return error_response(
                AuthenticationFailed("Could not understand the provided credentials.")
            )
        err = BadRequest(str(exc.detail) if exc.detail else None)
        response = error_response(err)
        response.status_code = exc.status_code
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = "/".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return error_response(
            BadRequest("The request failed because it was not well-formed.", pointer="/" + loc)
        )
