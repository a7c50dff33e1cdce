"""``POST /v2/telephony_credentials/{id}/token`` as plain ASGI, ahead of FastAPI.

Minting is the control plane's hot path (every client login starts with one). Through FastAPI
it cost several times the mint itself: route matching over every path and dependency solving
per request (``make bench`` profile). This serves the same contract: same auth, same envelopes,
same headers; the FastAPI route stays registered for the OpenAPI document and is what this
falls back to for any other method or path.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

from starlette.types import ASGIApp, Receive, Scope, Send

from voxgate.api.deps import MAX_BODY, ApiKeyAuth, body_too_large
from voxgate.api.errors import STORE_ERRORS, error_response, store_unavailable
from voxgate.domain.errors import VoxgateError
from voxgate.services.control import ControlPlane

__all__ = ["TokenRoute"]

_PATH = re.compile(r"(/v2)?/telephony_credentials/([^/]{1,128})/token")
_ROUTES = {
    True: SimpleNamespace(path="/v2/telephony_credentials/{cred_id}/token"),
    False: SimpleNamespace(path="/telephony_credentials/{cred_id}/token"),
}
_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"cache-control", b"no-store"),
]


class TokenRoute:
    def __init__(self, app: ASGIApp, control: ControlPlane, auth: ApiKeyAuth) -> None:
        self.app = app
        self.control = control
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = (
            _PATH.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if match is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTES[match[1] is not None]
        try:
            await self._drain_body(receive)
            auth = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            await self.auth.check(auth.decode("latin-1"), self.control)
            token, _ = await self.control.mint_token(match[2])
        except VoxgateError as exc:
            await error_response(exc)(scope, receive, send)
            return
        except STORE_ERRORS as exc:
            await store_unavailable(exc)(scope, receive, send)
            return
        body = token.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [*_HEADERS, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _drain_body(receive: Receive) -> None:
        """The token takes no parameters; a body is read (bounded) and ignored."""
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if size > MAX_BODY:
                raise body_too_large()
            if not message.get("more_body", False):
                return
