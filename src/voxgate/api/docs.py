"""The pages the API node serves from this package (``static/``), offline: the operator
console at ``/console``, Swagger UI at ``/docs`` and ReDoc at ``/redoc`` (vendored), and an
OpenAPI document that declares the bearer API key, so "Authorize" and "Try it out" send it,
and whose references all resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["install_docs"]

STATIC = Path(__file__).with_name("static")
NO_ICON = "data:,"  # the default favicons are fetched from a CDN
BEARER = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`voxgate keys create --label me`), sent as "
        "`Authorization: Bearer <key>`.",
    }
}


def install_docs(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/console", include_in_schema=False)
    async def console() -> FileResponse:
        return FileResponse(STATIC / "console" / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="voxgate API",
            swagger_js_url="/static/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui.css",
            swagger_favicon_url=NO_ICON,
            # no badge from validator.swagger.io: nothing leaves the server
            swagger_ui_parameters={"persistAuthorization": False, "validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title="voxgate API",
            redoc_js_url="/static/redoc.standalone.js",
            redoc_favicon_url=NO_ICON,
            with_google_fonts=False,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {})
            components["securitySchemes"] = BEARER
            _hoist_nested_models(schema["paths"], components.setdefault("schemas", {}))
            schema["security"] = [{"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _hoist_nested_models(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Request bodies written as pydantic schemas carry their nested models in ``$defs``;
    OpenAPI resolves references from the document's root, so they move to components."""
    for operations in paths.values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json", {}).get("schema")
            if isinstance(body, dict) and "$defs" in body:
                schemas.update(body.pop("$defs"))
