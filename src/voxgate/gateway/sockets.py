"""One WebSocket connection, on picows.

picows parses frames in C and calls us back synchronously, with no task and no queue per
connection; on this 2-core machine it does a bare connect + login + reply in about a third of the
CPU time of ``websockets`` (``make bench``, docs/architecture.md §9), which is what moves the
login rate. The price is that picows hands us frames, not messages, so this class reassembles
fragmented messages, enforces the message size limit, validates UTF-8 and completes the close
handshake: the parts of RFC 6455 a message-level library used to do for us.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, cast

from multidict import CIMultiDict, CIMultiDictProxy
from picows import WSAutoPingStrategy, WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport
from picows.api import _resolve_logger
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not in its stubs

from voxgate.domain.forwarded import TrustedProxies
from voxgate.rtc.outputs import CloseCode

__all__ = [
    "CLOSE_TIMEOUT",
    "MAX_WRITE_BUFFER",
    "Socket",
    "SocketEvents",
    "picows_protocol",
    "tls_context",
]

# shared and read-only: a write to a handshake's headers after it (none is expected) raises
_NO_HEADERS = cast("CIMultiDict[str]", CIMultiDictProxy(CIMultiDict[str]()))
CLOSE_TIMEOUT = 5.0  # how long a client may take to answer our close frame
MAX_WRITE_BUFFER = 4 * 1024 * 1024  # a client this far behind is closed, not buffered for


class SocketEvents(Protocol):
    """What the gateway does with a socket's life: the adapter's whole interface to it."""

    def opened(self, sock: Socket) -> None: ...
    def received(self, sock: Socket, message: str | bytes) -> None: ...
    def lost(self, sock: Socket) -> None: ...


class Socket(WSListener):
    # slots: one per connection, for the whole life of an idle session (no __dict__ to carry)
    __slots__ = (
        "_binary",
        "_closer",
        "_parts",
        "_size",
        "address",
        "counted",
        "events",
        "max_message",
        "peer",
        "port",
        "proxies",
        "transport",
    )

    def __init__(
        self, events: SocketEvents, max_message: int, proxies: TrustedProxies | None = None
    ) -> None:
        self.events = events
        self.max_message = max_message
        self.proxies = proxies
        self.transport: WSTransport | None = None
        self.address = "unknown"
        self.port = 0
        self.peer: object = None  # the gateway's per-session state
        self.counted = False  # counted against its address's socket limit
        self._parts: list[bytes] = []
        self._size = 0
        self._binary = False
        self._closer: asyncio.TimerHandle | None = None

    # -- picows callbacks ------------------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        peer = transport.underlying_transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.address, self.port = str(peer[0]), int(peer[1])
        if self.proxies:  # behind a trusted reverse proxy: the client it names
            headers = transport.request.headers
            self.address, _ = self.proxies.client(self.address, headers.get)
        # the handshake's headers are read: picows keeps both messages for the socket's life
        # (~3 KB with a browser's headers, more than the whole idle session), so empty them
        transport.request.headers = transport.response.headers = _NO_HEADERS
        self.events.opened(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if self._parts:
                self.close(CloseCode.PROTOCOL_ERROR, "expected a continuation frame")
                return
            if frame.fin:
                self._deliver(kind is WSMsgType.BINARY, frame.get_payload_as_bytes())
                return
            self._binary = kind is WSMsgType.BINARY
            self._append(frame)
        elif kind is WSMsgType.CONTINUATION:
            if not self._parts:
                self.close(CloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
                return
            self._append(frame)
            if frame.fin and self._parts:
                data, self._parts, self._size = b"".join(self._parts), [], 0
                self._deliver(self._binary, data)
        elif kind is WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._closer is not None:
            self._closer.cancel()
            self._closer = None
        self.events.lost(self)

    # -- what the gateway calls ------------------------------------------------------------
    def send(self, text: str) -> None:
        transport = self.transport
        if transport is None or transport.is_close_frame_sent:
            return
        transport.send(WSMsgType.TEXT, text.encode())
        if transport.underlying_transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            self.close(CloseCode.POLICY, "client is not reading")

    def close(self, code: int, reason: str = "") -> None:
        """Send a close frame once; drop the socket when the client answers or after a while."""
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason.encode()[:123])
        if self._closer is None:
            self._closer = asyncio.get_running_loop().call_later(
                CLOSE_TIMEOUT, transport.disconnect
            )

    @property
    def sent_close_code(self) -> int | None:
        shake = self.transport.close_handshake if self.transport is not None else None
        return None if shake is None or shake.sent is None else int(shake.sent.code.value)

    @property
    def closed_by_client(self) -> bool:
        """The client ended the connection on purpose (close code 1000), rather than the
        network dropping it or the page going away (1001), after which the SDK comes back."""
        shake = self.transport.close_handshake if self.transport is not None else None
        received = None if shake is None else shake.recv
        return received is not None and int(received.code.value) == 1000

    # -- reassembly ------------------------------------------------------------------------
    def _append(self, frame: WSFrame) -> None:
        self._size += frame.payload_size
        if self._size > self.max_message:
            self._parts, self._size = [], 0
            self.close(CloseCode.TOO_BIG, "message too big")
            return
        self._parts.append(frame.get_payload_as_bytes())

    def _deliver(self, binary: bool, data: bytes) -> None:
        if binary:
            self.events.received(self, data)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.close(CloseCode.INVALID_DATA, "invalid UTF-8")
            return
        self.events.received(self, text)


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """wss:// when a certificate is configured (TLS 1.2 or newer)."""
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def picows_protocol(
    listener: Callable[[Any], Socket],
    *,
    handshake_timeout: float,
    max_frame_size: int,
    read_buffer_init_size: int,
) -> Callable[[], asyncio.BaseProtocol]:
    """picows's own server protocol, made as ``ws_create_server`` makes it (picows 2.3.1,
    pinned), so the front door can hand it a connection it has already read from."""

    def make() -> asyncio.BaseProtocol:
        protocol: asyncio.BaseProtocol = WSProtocol(
            None,  # host+port: server side
            None,  # path
            False,  # is_client_side
            listener,
            # an adapter, not a Logger: picows gives a Logger a child Logger per connection
            logging.LoggerAdapter(_resolve_logger("gateway.sockets", "server")),
            True,  # disconnect_on_exception
            handshake_timeout,
            False,  # enable_auto_ping: our own pings are protocol frames (rtc/liveness.py)
            20.0,
            20.0,
            WSAutoPingStrategy.PING_WHEN_IDLE,
            True,  # enable_auto_pong
            max_frame_size,
            None,  # extra_headers
            read_buffer_init_size,
        )
        return protocol

    return make
