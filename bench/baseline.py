"""Bare baselines on the same stack as voxgate: a websockets server (and the same on picows, the
gateway's socket layer) that parses JSON, verifies an HMAC-SHA512 JWT and replies; a Starlette
endpoint returning a constant string (uvicorn); and a Starlette endpoint doing a token mint's
work by hand (API-key digest lookup, HMAC-SHA512 JWT, one batched audit insert in SQLite)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid

SECRET = b"s" * 64


def make_token(sub: str) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(b'{"alg":"HS512","typ":"JWT"}')
    body = b64(json.dumps({"sub": sub, "exp": 4102444800}).encode())
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha512).digest()
    return f"{head}.{body}.{b64(sig)}"


def verify(token: str) -> bool:
    head, body, sig = token.split(".")
    want = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha512).digest()
    return hmac.compare_digest(base64.urlsafe_b64decode(sig + "=="), want)


async def ws_server(port: int) -> None:
    from websockets.asyncio.server import ServerConnection, serve

    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            frame = json.loads(message)
            ok = verify(frame.get("params", {}).get("login_token", "a.b.c"))
            reply = {"jsonrpc": "2.0", "id": frame.get("id"), "result": {"ok": ok}}
            await ws.send(json.dumps(reply))

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None):
        print("ready", flush=True)
        await asyncio.Future()


async def picows_server(port: int) -> None:
    """The same bare login server on picows: what the gateway's socket layer costs by itself."""
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_create_server

    class Listener(WSListener):
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
                return
            message = json.loads(frame.get_payload_as_bytes())
            ok = verify(message.get("params", {}).get("login_token", "a.b.c"))
            reply = {"jsonrpc": "2.0", "id": message.get("id"), "result": {"ok": ok}}
            transport.send(WSMsgType.TEXT, json.dumps(reply).encode())

    server = await ws_create_server(
        lambda _request: Listener(), "127.0.0.1", port, use_aiofastnet=False, backlog=4096
    )
    print("ready", flush=True)
    await server.serve_forever()


def _constant_app() -> object:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def const(_request: object) -> PlainTextResponse:
        return PlainTextResponse("eyJhbGciOiJIUzUxMiJ9.constant.token", status_code=201)

    return Starlette(routes=[Route("/token", const, methods=["POST"])])


def _mint_app() -> object:
    """The work of ``POST /v2/telephony_credentials/{id}/token`` without voxgate around it: the
    key's SHA-256 digest looked up, the credential looked up, the same claims signed HS512, and
    an audit row queued for an ``executemany`` every 50 ms (as voxgate's audit log does)."""
    import contextlib

    import aiosqlite
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    keys = {hashlib.sha256(os.environ["BENCH_KEY"].encode()).hexdigest(): "admin"}
    credentials = {os.environ["BENCH_CREDENTIAL"]: ("active", 4102444800)}
    pending: list[tuple[str, str, str, float, str]] = []

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    async def mint(request: Request) -> PlainTextResponse:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or hashlib.sha256(key.encode()).hexdigest() not in keys:
            return PlainTextResponse("unauthorized", status_code=401)
        cred_id = request.path_params["cred_id"]
        status, expires = credentials.get(cred_id, ("", 0))
        if status != "active":
            return PlainTextResponse("not found", status_code=404)
        now = int(time.time())
        jti = str(uuid.uuid4())
        claims = {
            "aud": "voxgate",
            "exp": min(now + 86_400, expires),
            "iat": now,
            "iss": "voxgate",
            "jti": jti,
            "nbf": now - 1,
            "sub": cred_id,
            "tel_token": b64(os.urandom(72)),
            "typ": "access",
        }
        head = b64(b'{"alg":"HS512","kid":"k1","typ":"JWT"}')
        body = b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha512).digest()
        details = json.dumps({"jti": jti, "exp": claims["exp"], "kid": "k1"})
        pending.append((str(uuid.uuid4()), cred_id, "token_minted", time.time(), details))
        return PlainTextResponse(
            f"{head}.{body}.{b64(sig)}", status_code=201, headers={"cache-control": "no-store"}
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app: object):  # type: ignore[no-untyped-def]
        db = await aiosqlite.connect(os.environ["BENCH_DB"])
        await db.execute(
            "CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, credential_id TEXT,"
            " kind TEXT, at REAL, details TEXT)"
        )

        async def flush_forever() -> None:
            while True:
                await asyncio.sleep(0.05)
                if pending:
                    batch = pending[:]
                    del pending[:]
                    await db.executemany("INSERT INTO audit VALUES (?, ?, ?, ?, ?)", batch)
                    await db.commit()

        flusher = asyncio.create_task(flush_forever())
        yield
        flusher.cancel()
        await db.close()

    route = Route("/v2/telephony_credentials/{cred_id}/token", mint, methods=["POST"])
    return Starlette(routes=[route], lifespan=lifespan)


def http_server(port: int, app: object) -> None:
    import uvicorn
    import uvloop

    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="none",
        http="httptools",
    )
    server = uvicorn.Server(config)
    print("ready", flush=True)
    uvloop.run(server.serve())


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind in ("ws", "picows"):
        import uvloop  # the same event loop voxgate serve runs on

        uvloop.run(ws_server(port) if kind == "ws" else picows_server(port))
    else:
        http_server(port, _mint_app() if kind == "mint" else _constant_app())
