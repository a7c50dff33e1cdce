"""One port for the signaling socket and the SDK's HTTP uploads.

``@telnyx/webrtc`` posts its call reports to ``/call_report`` on the host and port it signals
through (``http`` for ``ws``, ``https`` for ``wss``), as a cross-origin request with a
preflight. picows serves WebSockets only, so every connection starts here: the first bytes
say which it is. A WebSocket upgrade (``GET``) is handed to picows's own protocol, bytes and
all, and from then on picows reads the socket directly; ``POST`` and ``OPTIONS`` are one HTTP
exchange (h11), answered and closed. Nothing else is read here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast

import h11

__all__ = ["FrontDoor", "HttpReply", "HttpRequest"]

SNIFF = 8  # "OPTIONS " is the longest method we answer here
HEAD_LIMIT = 16 * 1024
TIMEOUT = 10.0


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    address: str
    body: bytes = b""


@dataclass(slots=True)
class HttpReply:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: list[tuple[str, str]] = field(default_factory=list)


Handler = Callable[[HttpRequest], Awaitable[HttpReply]]
BodyLimit = Callable[[HttpRequest], int]  # how large a body this request may send


class FrontDoor(asyncio.Protocol):
    # slots: uvloop keeps the first protocol of a connection alive for its whole life, so it
    # stays small (and lets go of its buffer and timer once picows has the socket)
    __slots__ = (
        "_address",
        "_body_limit",
        "_handle",
        "_head",
        "_http",
        "_timer",
        "_transport",
        "_websocket",
    )

    def __init__(
        self,
        websocket: Callable[[], asyncio.BaseProtocol],
        handle: Handler,
        body_limit: BodyLimit,
        address: Callable[[str, dict[str, str]], str],
    ) -> None:
        self._websocket = websocket
        self._handle = handle
        self._body_limit = body_limit
        self._address = address  # the client, from the peer and the headers (trusted proxies)
        self._head = bytearray()
        self._transport: asyncio.Transport | None = None
        self._http: _Exchange | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._timer = asyncio.get_running_loop().call_later(TIMEOUT, self._transport.abort)

    def data_received(self, data: bytes) -> None:
        if self._http is not None:
            self._http.feed(data)
            return
        self._head += data
        if len(self._head) < SNIFF and not self._head.endswith(b" "):
            return
        assert self._transport is not None
        if self._head.startswith((b"POST ", b"OPTIONS ")):
            peer = self._transport.get_extra_info("peername")
            self._http = _Exchange(self, str(peer[0]) if peer else "")
            self._http.feed(bytes(self._head))
            return
        self._hand_over()

    def _hand_over(self) -> None:
        """Everything else is picows's: it gets the transport and the bytes read so far."""
        assert self._transport is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ws = self._websocket()
        self._transport.set_protocol(ws)
        ws.connection_made(self._transport)
        data, self._head = bytes(self._head), bytearray()
        if isinstance(ws, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buf = memoryview(ws.get_buffer(len(view)))
                n = min(len(buf), len(view))
                buf[:n] = view[:n]
                ws.buffer_updated(n)
                view = view[n:]
        elif isinstance(ws, asyncio.Protocol):
            ws.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def reply(self, reply: HttpReply) -> None:
        """The answer, then the connection closes (one exchange per connection)."""
        assert self._transport is not None
        body = json.dumps(reply.body).encode() if reply.status != 204 else b""
        headers = [
            *reply.headers,
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
            ("connection", "close"),
            ("cache-control", "no-store"),
        ]
        head = f"HTTP/1.1 {reply.status} {HTTPStatus(reply.status).phrase}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        self._transport.write(head.encode("latin-1") + body)
        self._transport.close()


class _Exchange:
    """One HTTP request on a connection the front door kept: read (bounded), handled, closed."""

    def __init__(self, door: FrontDoor, peer: str) -> None:
        self.door, self.peer = door, peer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=HEAD_LIMIT)
        self.request: HttpRequest | None = None
        self.body = bytearray()
        self.limit = 0
        self.done = False

    def feed(self, data: bytes) -> None:
        if self.done:
            return
        self.conn.receive_data(data)
        while not self.done:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError:
                return self._finish(HttpReply(400, _error("malformed HTTP request")))
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Request):
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
                path = event.target.decode("latin-1").split("?", 1)[0]
                method = event.method.decode()
                self.request = HttpRequest(
                    method, path, headers, self.door._address(self.peer, headers)
                )
                self.limit = self.door._body_limit(self.request)
                declared = headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self.limit:
                    return self._finish(HttpReply(413, _error(f"over {self.limit} bytes")))
            elif isinstance(event, h11.Data):
                self.body += event.data
                if len(self.body) > self.limit:
                    return self._finish(HttpReply(413, _error(f"over {self.limit} bytes")))
            elif isinstance(event, h11.EndOfMessage) and self.request is not None:
                self.request.body = bytes(self.body)
                self.done = True
                asyncio.get_running_loop().create_task(self._answer(self.request))
                return None
            else:
                return self._finish(HttpReply(400, _error("malformed HTTP request")))
        return None

    async def _answer(self, request: HttpRequest) -> None:
        try:
            reply = await self.door._handle(request)
        except Exception:
            reply = HttpReply(500, _error("the report could not be taken"))
        self.door.reply(reply)

    def _finish(self, reply: HttpReply) -> None:
        self.done = True
        self.door.reply(reply)


def _error(detail: str) -> dict[str, Any]:
    return {"errors": [{"detail": detail}]}
