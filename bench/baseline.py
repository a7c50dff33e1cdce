"""Bare baselines on the same stack as voxgate: a websockets server (and the same on picows, the
gateway's socket layer) that parses JSON, verifies an HMAC-SHA512 JWT and replies; and a
Starlette endpoint returning a constant string (uvicorn)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import sys

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


def http_server(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def const(_request: object) -> PlainTextResponse:
        return PlainTextResponse("eyJhbGciOiJIUzUxMiJ9.constant.token", status_code=201)

    app = Starlette(routes=[Route("/token", const, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="none"
    )
    server = uvicorn.Server(config)
    print("ready", flush=True)
    import uvloop

    uvloop.run(server.serve())


if __name__ == "__main__":
    kind, port = sys.argv[1], int(sys.argv[2])
    if kind in ("ws", "picows"):
        import uvloop  # the same event loop voxgate serve runs on

        uvloop.run(ws_server(port) if kind == "ws" else picows_server(port))
    else:
        http_server(port)
