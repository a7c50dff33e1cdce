"""The API documentation works offline: Swagger UI and ReDoc load only from the server itself,
and "Authorize" + "Try it out" call the API with a key."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import urlparse

import httpx
from playwright.sync_api import Page, Route

from tests.harness import Voxgate


def _offline(page: Page, vg: Voxgate) -> list[str]:
    """Refuse every request that does not go to this voxgate; return the refused ones."""
    refused: list[str] = []
    own = urlparse(vg.api_url).netloc

    def gate(route: Route) -> None:
        url = route.request.url
        if urlparse(url).netloc == own or url.startswith("data:"):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", gate)
    return refused


def test_swagger_ui_authorizes_with_a_key_and_tries_a_call(
    server: Voxgate, open_page: Callable[..., Page]
) -> None:
    page = open_page(server, "/harness.html")
    refused = _offline(page, server)
    page.goto(server.api_url + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "voxgate" in page.inner_text(".swagger-ui .info .title")
    page.click("button.authorize")
    page.fill(".modal-ux input[type=text], .modal-ux input[type=password]", server.api_key)
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")
    operation = "#operations-Telephony_Credentials-list__v2_telephony_credentials_get"
    page.click(f"{operation} .opblock-summary")
    page.click(f"{operation} button.try-out__btn")
    page.click(f"{operation} button.execute")
    status = page.wait_for_selector(f"{operation} .live-responses-table tbody .response-col_status")
    assert status is not None and status.inner_text().strip().startswith("200")
    assert refused == [], refused


def test_redoc_renders_offline(server: Voxgate, open_page: Callable[..., Page]) -> None:
    page = open_page(server, "/harness.html")
    refused = _offline(page, server)
    page.goto(server.api_url + "/redoc")
    page.wait_for_selector("h1", timeout=20_000)
    page.wait_for_function("() => document.body.innerText.includes('Telephony Credentials')")
    assert refused == [], refused


def test_the_openapi_document_declares_the_bearer_key(server: Voxgate) -> None:
    doc = httpx.get(server.api_url + "/openapi.json").json()
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["apiKey"]["description"],
    }
    assert doc["security"] == [{"apiKey": []}]
    # every reference resolves from the document's root (ReDoc refuses the document otherwise)
    refs = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc)))
    assert refs and all(r.startswith("#/components/schemas/") for r in refs)
    assert {r.rsplit("/", 1)[1] for r in refs} <= set(doc["components"]["schemas"])
    assert "$defs" not in json.dumps(doc)
    html = httpx.get(server.api_url + "/docs").text + httpx.get(server.api_url + "/redoc").text
    assert "cdn" not in html.lower() and "googleapis" not in html
