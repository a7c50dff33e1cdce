"""The HTTP endpoint Kamailio asks for verdicts (``http_client``), on a loopback port.

Each request carries the hook secret that voxgate generated for this Kamailio (its config
holds it, mode 0600); a request without it is refused before anything is read. Bodies are
form-encoded fields; the answer's status is the verdict and its body the data (an HA1) or the
reason phrase for the SIP reply. Nothing here logs a field that could hold a secret.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from voxgate.sip.invites import InvitePolicy
from voxgate.sip.registrar import MAX_FIELD, TRANSPORTS, Registrar, SipContact, Verdict

__all__ = ["HEADER", "hook_app"]

HEADER = "x-voxgate-hook"
MAX_BODY = 16 * 1024

Form = dict[str, str]


def hook_app(secret: str, registrar: Registrar, invites: InvitePolicy) -> Starlette:
    async def auth(f: Form, now: float) -> Verdict:
        return await registrar.auth(f["user"], f["src_ip"], now)

    async def auth_failed(f: Form, now: float) -> Verdict:
        reason = f["reason"] or "invalid_password"
        return await registrar.auth_failed(f["user"], f["src_ip"], f["proto"], reason, now)

    async def register(f: Form, now: float) -> Verdict:
        seen = SipContact(
            f["user"],
            f["contact"],
            f["proto"],
            f["src_ip"],
            _int(f["src_port"]),
            f["user_agent"],
            f["instance"],
        )
        return await registrar.register(seen, _int(f["expires"]), now)

    async def expired(f: Form, now: float) -> Verdict:
        await registrar.expired(f["aor"], f["contact"])
        return Verdict(200)

    async def invite(f: Form, now: float) -> Verdict:
        authenticated = f["authenticated"] == "1"
        return await invites.decide(
            f["from_user"], f["to_user"], authenticated, now, f["src_ip"], f["to_header"]
        )

    handlers: dict[str, Callable[[Form, float], Awaitable[Verdict]]] = {
        "auth": auth,
        "auth_failed": auth_failed,
        "register": register,
        "expired": expired,
        "invite": invite,
    }
    expected = secret.encode()

    async def endpoint(request: Request) -> PlainTextResponse:
        given = request.headers.get(HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return PlainTextResponse("Forbidden", status_code=403)
        body = await request.body()
        if len(body) > MAX_BODY:
            return PlainTextResponse("Too large", status_code=413)
        form = _Form(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))
        if form["proto"] and form["proto"] not in TRANSPORTS:
            return PlainTextResponse("Bad transport", status_code=400)
        handler = handlers.get(request.path_params["what"])
        if handler is None:
            return PlainTextResponse("Not Found", status_code=404)
        verdict = await handler(form, time.time())
        return PlainTextResponse(_phrase(verdict.body), status_code=verdict.status)

    return Starlette(routes=[Route("/sip/{what}", endpoint, methods=["POST"])])


class _Form(dict[str, str]):
    """A missing field reads as empty; every value is cut to a sane length."""

    def __init__(self, raw: dict[str, list[str]]) -> None:
        super().__init__({k: v[0][:MAX_FIELD] for k, v in raw.items() if v})

    def __missing__(self, key: str) -> str:
        return ""


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _phrase(text: str) -> str:
    """A SIP reason phrase: one line, printable."""
    return "".join(ch for ch in text if ch.isprintable())[:200]
