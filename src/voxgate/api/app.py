"""The FastAPI application: routers under ``/v2`` and bare, health, metrics, error envelopes."""

from __future__ import annotations

import time
from importlib.metadata import version
from typing import Any

import structlog
from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxgate import metrics
from voxgate.api import (
    apikeys,
    assistants,
    call_reports,
    connections,
    credentials,
    live,
    phone_numbers,
    trunks,
)
from voxgate.api.deps import ApiKeyAuth
from voxgate.api.docs import install_docs
from voxgate.api.errors import STORE_ERRORS, install_error_handlers, store_unavailable
from voxgate.api.token_route import TokenRoute
from voxgate.domain import ids
from voxgate.domain.forwarded import TrustedProxies
from voxgate.services.control import ControlPlane

__all__ = ["create_api"]

log = structlog.get_logger("voxgate.api")


def create_api(control: ControlPlane, proxies: TrustedProxies | None = None) -> FastAPI:
    app = FastAPI(
        # FastAPI's built-in OpenTelemetry hooks run per request even with no exporter; our
        # metrics are Prometheus (/metrics) and our logs structlog, so they are off.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        title="voxgate",
        version=version("voxgate"),
        description="Self-hosted WebRTC auth and signaling, wire-compatible with Telnyx.",
        docs_url=None,  # served below, from the package: no CDN
        redoc_url=None,
    )
    install_docs(app)
    app.state.control = control
    auth = ApiKeyAuth()
    # Flat includes: nested routers cost a recursive match per request on the hot path.
    for prefix, documented in (("/v2", True), ("", False)):
        for module in (
            credentials,
            connections,
            assistants,
            apikeys,
            live,
            call_reports,
            trunks,
            phone_numbers,
        ):  # the token route first
            app.include_router(
                module.router,
                prefix=prefix,
                dependencies=[Depends(auth)],
                include_in_schema=documented,
            )
    install_error_handlers(app)

    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        return store_unavailable(exc)

    for store_error in STORE_ERRORS:
        app.add_exception_handler(store_error, _store_down)

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

    app.add_middleware(TokenRoute, control=control, auth=auth)
    app.add_middleware(RequestObserver, proxies=proxies or TrustedProxies())  # outermost
    return app


class RequestObserver:
    """Request id, metrics and one log line per request, as plain ASGI (Starlette's
    ``BaseHTTPMiddleware`` costs a task and a stream copy per request on the hot path)."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.proxies and scope.get("client"):  # behind a trusted proxy: the client it names
            read = lambda name: headers.get(name.encode(), b"").decode("latin-1") or None  # noqa: E731
            address, scheme = self.proxies.client(scope["client"][0], read)
            scope["client"] = (address, scope["client"][1])
            if scheme:
                scope["scheme"] = scheme
        given = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = given or ids.new_request_id()
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        # bind/reset rather than ``bound_contextvars``: the same, without a generator-based
        # context manager per request (REST mint profile)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            key = (scope["method"], path, status)
            children = self._children.get(key)
            if children is None:  # labels() takes a lock and a lookup; keep the children
                children = (
                    metrics.HTTP_REQUESTS.labels(key[0], path, str(status)),
                    metrics.HTTP_LATENCY.labels(key[0], path),
                )
                if len(self._children) < 10_000:
                    self._children[key] = children
            children[0].inc()
            children[1].observe(elapsed)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                client=(scope.get("client") or ("",))[0],  # behind a proxy: the one it names
                status=status,
                ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.reset_contextvars(**bound)
