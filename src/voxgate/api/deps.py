"""Request plumbing: API-key auth (cheap: SHA-256 plus a short cache), scopes, JSON bodies."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import Request

from voxgate import metrics
from voxgate.auth.apikeys import digest_api_key
from voxgate.domain.errors import AuthenticationFailed, BadRequest, Forbidden, PayloadTooLarge
from voxgate.domain.timeutil import utcnow
from voxgate.services.apikeys import Scope
from voxgate.services.control import ControlPlane

__all__ = ["MAX_BODY", "ApiKeyAuth", "body_too_large", "control", "json_body"]

MAX_BODY = 64 * 1024


def control(request: Request) -> ControlPlane:
    plane: ControlPlane = request.app.state.control
    return plane


# What a ``tokens`` key may do: read credentials, mint their tokens and ICE servers.
TOKENS_SCOPE = {
    ("GET", "/telephony_credentials"),
    ("GET", "/telephony_credentials/{cred_id}"),
    ("POST", "/telephony_credentials/{cred_id}/token"),
    ("POST", "/telephony_credentials/{cred_id}/ice_servers"),
}


class ApiKeyAuth:
    """Bearer API keys, with their scope. A valid key is cached for ``ttl`` seconds to spare
    the store, which is also how long a key revoked on another node may still be taken."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._valid: dict[str, tuple[float, str]] = {}  # digest -> (valid until, scope)

    async def __call__(self, request: Request) -> None:
        scope = await self.check(request.headers.get("authorization", ""), control(request))
        if scope != Scope.ADMIN:
            route = getattr(request.scope.get("route"), "path", "")
            if (request.method, route.removeprefix("/v2")) not in TOKENS_SCOPE:
                raise Forbidden(
                    "This API key may only read credentials and create their tokens "
                    "(scope tokens); use an admin key."
                )

    async def check(self, header: str, plane: ControlPlane) -> str:
        """The key's scope; ``AuthenticationFailed`` for a missing, unknown or revoked key."""
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key or len(key) > 512:
            raise AuthenticationFailed("Could not understand the provided credentials.")
        digest = digest_api_key(key)
        now = time.monotonic()
        until, scope = self._valid.get(digest, (0.0, ""))
        if until > now:
            return scope
        record = await plane.store.api_key_by_digest(digest)
        if record is None:
            raise AuthenticationFailed("Could not understand the provided credentials.")
        await plane.store.touch_api_key(record.id, utcnow())  # at most once per ttl
        if len(self._valid) > 10_000:
            self._valid.clear()
        self._valid[digest] = (now + self.ttl, record.scope)
        return record.scope


def body_too_large() -> PayloadTooLarge:
    """Counted where it is raised, so REST body limits show in /metrics from every route."""
    metrics.LIMIT_HITS.labels("rest_body").inc()
    return PayloadTooLarge(f"The request body is larger than {MAX_BODY} bytes.")


async def json_body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    raw = b""
    if not (declared.isdigit() and int(declared) > MAX_BODY):
        async for chunk in request.stream():  # never buffer more than the limit
            raw += chunk
            if len(raw) > MAX_BODY:
                break
    if len(raw) > MAX_BODY or (declared.isdigit() and int(declared) > MAX_BODY):
        raise body_too_large()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise BadRequest(
            "The request failed because it was not well-formed.", pointer="/"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", pointer="/")
    return body
