"""The FastAPI application: routers under ``/v2`` and bare, health, metrics, error envelopes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from voxgate import metrics
from voxgate.api import assistants, connections, credentials
from voxgate.api.deps import ApiKeyAuth
from voxgate.api.errors import error_response, install_error_handlers
from voxgate.domain.errors import ServiceUnavailable
from voxgate.services.control import ControlPlane

__all__ = ["create_api"]

log = structlog.get_logger("voxgate.api")


def create_api(control: ControlPlane) -> FastAPI:
    app = FastAPI(
        title="voxgate",
        version="0.1.0",
        description="Self-hosted WebRTC auth and signaling, wire-compatible with Telnyx.",
    )
    app.state.control = control
    auth = ApiKeyAuth()
    resources = APIRouter(dependencies=[Depends(auth)])
    for module in (connections, credentials, assistants):
        resources.include_router(module.router)
    app.include_router(resources, prefix="/v2")
    app.include_router(resources, include_in_schema=False)
    install_error_handlers(app)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OSError)
    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("store unavailable", error=type(exc).__name__)
        err = ServiceUnavailable("The data store is unavailable; retry shortly.")
        return error_response(err)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        try:
            await control.store.ping()
        except Exception as exc:
            log.warning("readiness check failed", error=type(exc).__name__)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return PlainTextResponse(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        request_id = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = await call_next(request)
            elapsed = time.perf_counter() - started
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
            metrics.HTTP_LATENCY.labels(request.method, path).observe(elapsed)
            log.info(
                "request",
                method=request.method,
                path=request.url.path,
                status=response.status_code,
                ms=round(elapsed * 1000, 2),
            )
        response.headers["x-request-id"] = request_id
        return response

    return app
