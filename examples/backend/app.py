"""The demo backend, as the source documents describe "your backend".

It keeps its own users (a session cookie), creates one telephony credential per user through the
**official** ``telnyx`` SDK pointed at voxgate, and hands the browser short-lived JWTs from
``GET /api/telnyx-token``. The voxgate API key never leaves this process.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import telnyx
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

__all__ = ["DemoConfig", "create_demo"]

log = logging.getLogger("voxgate.demo")
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SDK = REPO / "tests" / "conformance" / "node_modules" / "@telnyx" / "webrtc" / "lib" / "bundle.mjs"
HELPER = REPO / "clients" / "browser"  # voxgate-telnyx.mjs and the module it imports
COOKIE = "demo_session"


@dataclass
class DemoConfig:
    voxgate_api: str  # e.g. http://127.0.0.1:8000/v2
    voxgate_rtc: str  # e.g. ws://127.0.0.1:8001
    api_key: str
    users: dict[str, str] = field(
        default_factory=lambda: {"alice": "alice-demo", "bob": "bob-demo"}
    )


@dataclass
class _State:
    sessions: dict[str, str] = field(default_factory=dict)  # session id -> user
    credentials: dict[str, str] = field(default_factory=dict)  # user -> credential id
    connection_id: str | None = None


def create_demo(cfg: DemoConfig) -> FastAPI:
    app = FastAPI(title="voxgate demo backend", docs_url=None, redoc_url=None)
    state = _State()
    client = telnyx.AsyncTelnyx(api_key=cfg.api_key, base_url=cfg.voxgate_api, max_retries=1)

    def current_user(request: Request) -> str | None:
        sid = request.cookies.get(COOKIE)
        return state.sessions.get(sid) if sid else None

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(HERE / "index.html", media_type="text/html")

    @app.get("/sdk/bundle.mjs")
    async def sdk() -> FileResponse:
        return FileResponse(SDK, media_type="text/javascript")

    @app.get("/voxgate-telnyx.mjs")
    async def helper() -> FileResponse:
        return FileResponse(HELPER / "voxgate-telnyx.mjs", media_type="text/javascript")

    @app.get("/share-tabs.mjs")
    async def helper_tabs() -> FileResponse:
        return FileResponse(HELPER / "share-tabs.mjs", media_type="text/javascript")

    @app.get("/api/config")
    async def config() -> dict[str, str]:
        return {"host": cfg.voxgate_rtc}

    @app.post("/api/login")
    async def login(request: Request) -> Response:
        body = await request.json()
        user, password = str(body.get("user", "")), str(body.get("password", ""))
        expected = cfg.users.get(user)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            return JSONResponse({"error": "Invalid user or password"}, status_code=401)
        sid = secrets.token_urlsafe(32)
        state.sessions[sid] = user
        response = JSONResponse({"user": user, "has_credential": user in state.credentials})
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict")
        return response

    @app.get("/api/me")
    async def me(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "Not authenticated"}, status_code=401)
        return JSONResponse({"user": user, "has_credential": user in state.credentials})

    @app.post("/api/credential")
    async def provision(request: Request) -> Response:
        """One telephony credential per user, created with the official SDK."""
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "Not authenticated"}, status_code=401)
        if user not in state.credentials:
            try:
                if state.connection_id is None:
                    conn = await client.credential_connections.create(
                        connection_name="voxgate-demo",
                        user_name="demo" + secrets.token_hex(6),
                        password=secrets.token_urlsafe(18),
                    )
                    assert conn.data is not None and conn.data.id is not None
                    state.connection_id = conn.data.id
                cred = await client.telephony_credentials.create(
                    connection_id=state.connection_id, name=user
                )
                assert cred.data is not None and cred.data.id is not None
                state.credentials[user] = cred.data.id
            except telnyx.APIError as exc:
                log.warning("credential creation failed: %s", type(exc).__name__)
                return JSONResponse({"error": "Credential creation failed"}, status_code=500)
        return JSONResponse({"user": user, "has_credential": True})

    @app.get("/api/telnyx-token")
    async def token(request: Request) -> Response:
        user = current_user(request)
        if user is None:
            return JSONResponse({"error": "Not authenticated"}, status_code=401)
        cred = state.credentials.get(user)
        if cred is None:
            return JSONResponse({"error": "No credential found for user"}, status_code=404)
        try:
            jwt = await client.telephony_credentials.create_token(cred)
        except (telnyx.APIError, OSError) as exc:
            log.warning("JWT generation failed: %s", type(exc).__name__)
            return JSONResponse({"error": "Token generation failed"}, status_code=500)
        return PlainTextResponse(jwt, headers={"Cache-Control": "no-store"})

    @app.post("/api/revoke")
    async def revoke(request: Request) -> Response:
        """Admin-style action for the demo: deactivating the credential ends the live session."""
        user = current_user(request)
        cred = state.credentials.get(user or "")
        if user is None or cred is None:
            return JSONResponse({"error": "Nothing to revoke"}, status_code=404)
        await client.post(f"/telephony_credentials/{cred}/actions/deactivate", cast_to=object)
        return JSONResponse({"revoked": cred})

    return app
