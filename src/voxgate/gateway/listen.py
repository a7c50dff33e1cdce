"""The signaling port: picows for the WebSocket, behind the front door when the SDK's call
reports are taken on the same port (``--call-reports``, on by default)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from voxgate.config import Settings
from voxgate.gateway.call_reports import CallReportDesk
from voxgate.gateway.front_door import FrontDoor
from voxgate.gateway.sockets import Socket, picows_protocol, tls_context

__all__ = ["LISTEN_BACKLOG", "listen"]

LISTEN_BACKLOG = 4096  # asyncio's default (100) drops SYNs in a reconnect storm: 1 s+ retries


async def listen(
    host: str,
    port: int,
    settings: Settings,
    socket: Callable[[Any], Socket],
    desk: CallReportDesk | None,
) -> asyncio.Server:
    websocket = picows_protocol(
        socket,
        handshake_timeout=settings.handshake_timeout,
        max_frame_size=settings.max_frame_bytes,
        read_buffer_init_size=2048,  # grows on demand; idle sessions stay small
    )
    factory: Callable[[], asyncio.BaseProtocol] = websocket
    if desk is not None:
        proxies = settings.proxies()

        def address(peer: str, headers: dict[str, str]) -> str:
            return proxies.client(peer, headers.get)[0]

        def factory() -> asyncio.BaseProtocol:
            return FrontDoor(websocket, desk.handle, desk.body_limit, address)

    return await asyncio.get_running_loop().create_server(
        factory,
        host,
        port,
        ssl=tls_context(settings.tls_cert, settings.tls_key),
        backlog=LISTEN_BACKLOG,
        reuse_port=settings.worker > 0,  # the workers of one node share the port (workers.py)
    )
