"""Kamailio's control socket: JSON-RPC 2.0 over a UNIX datagram socket (``jsonrpcs``).

voxgate removes contacts (a displacement, a revocation) and reads the location table (after a
restart) through it. A datagram socket, not HTTP: nothing on the network can reach it, and
the socket file's mode limits it to this user.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
import socket
import tempfile
from pathlib import Path
from typing import Any

from voxgate.domain.errors import ServiceUnavailable

__all__ = ["KamailioRpc", "RpcError"]

MAX_REPLY = 4 * 1024 * 1024  # ul.dump of a large location table; jsonrpcs caps its own buffer


class RpcError(ServiceUnavailable):
    """Kamailio did not answer, or answered with an error."""


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future[Any]] = {}

    def datagram_received(self, data: bytes, addr: Any) -> None:
        with contextlib.suppress(ValueError):
            reply = json.loads(data)
            fut = self.waiting.pop(int(reply.get("id", -1)), None)
            if fut is not None and not fut.done():
                fut.set_result(reply)


class KamailioRpc:
    def __init__(self, path: Path, timeout: float = 2.0) -> None:
        self.path = path
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Replies | None = None
        self._own = (
            Path(tempfile.gettempdir()) / f"voxgate-rpc-{os.getpid()}-{secrets.token_hex(4)}"
        )

    async def _open(self) -> _Replies:
        """A socket of our own, bound (so replies find us) and connected to Kamailio's."""
        if self._protocol is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                with contextlib.suppress(FileNotFoundError):
                    self._own.unlink()
                sock.bind(str(self._own))
                sock.connect(str(self.path))
            except OSError:
                sock.close()
                raise
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.create_datagram_endpoint(_Replies, sock=sock)
            self._transport, self._protocol = transport, protocol
        return self._protocol

    async def call(self, method: str, *params: str | int) -> Any:
        """The result of ``method``; ``RpcError`` when Kamailio answers an error or nothing."""
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        body = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": rid}
        protocol: _Replies | None = None
        try:
            protocol = await self._open()
            assert self._transport is not None
            protocol.waiting[rid] = fut
            self._transport.sendto(json.dumps(body).encode())
            reply = await asyncio.wait_for(fut, self.timeout)
        except (OSError, TimeoutError) as exc:
            self.close()  # Kamailio restarted: its socket is a new one
            raise RpcError(
                f"Kamailio control socket: {method} failed ({type(exc).__name__})"
            ) from None
        finally:
            if protocol is not None:
                protocol.waiting.pop(rid, None)
        if "error" in reply:
            error = reply["error"]
            raise RpcError(f"Kamailio {method}: {error.get('message', error)}")
        return reply.get("result")

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = self._protocol = None
        with contextlib.suppress(FileNotFoundError):
            self._own.unlink()
