"""A TCP relay the test controls, between a client and the gateway, on loopback.

``cut()`` drops every connection at once with a reset (what a Wi-Fi drop looks like to the
server: no close frame); ``refuse()`` keeps new ones out until ``heal()``; ``freeze()`` keeps
the connections open but forwards nothing either way (a frozen NAT). Runs its own event loop
in a thread, so sync (Playwright) and async tests use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from typing import Any

__all__ = ["Relay"]


class Relay:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.port = 0
        self.accepted = 0  # WebSocket connections relayed
        self.requests = 0  # other HTTP connections relayed (the SDK's call reports)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._open = threading.Event()  # new connections may pass
        self._flowing = threading.Event()  # bytes may pass
        self._open.set()
        self._flowing.set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> Relay:
        self._thread.start()
        self.port = self._call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Reset every live connection (no FIN, no close frame)."""
        self._call(self._reset_all())

    def refuse(self) -> None:
        self._open.clear()

    def freeze(self) -> None:
        self._flowing.clear()

    def retarget(self, port: int) -> None:
        """New connections go to ``port`` (a load balancer moving the client to another node)."""
        self.target = (self.target[0], port)

    def heal(self) -> None:
        self._open.set()
        self._flowing.set()

    # -- inside the relay's loop -----------------------------------------------------------
    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        await self._reset_all()
        if self._server is not None:
            self._server.close()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open.is_set():
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        first = await reader.read(65536)
        if first.startswith(b"GET "):
            self.accepted += 1
        else:
            self.requests += 1
        up_writer.write(first)
        pair = (writer, up_writer)
        self._pairs.append(pair)
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )
        with contextlib.suppress(ValueError):
            self._pairs.remove(pair)
        for w in pair:
            w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                writer.close()
                return
            while not self._flowing.is_set():  # frozen: hold the bytes, keep the socket
                await asyncio.sleep(0.05)
                if writer.is_closing():
                    return
            writer.write(data)
            await writer.drain()

    async def _reset_all(self) -> None:
        for pair in list(self._pairs):
            for w in pair:
                _reset(w)
        self._pairs.clear()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: the peer sees a dead connection, not an orderly end."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
