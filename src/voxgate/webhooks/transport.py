"""An httpx transport that connects only to the addresses it has checked (DNS rebinding).

Checking a webhook's host name and then letting the HTTP client resolve it again leaves a gap:
a name can answer a public address to the check and 127.0.0.1 to the connect (rebinding). So
the check sits where the connection is made, in httpcore's network backend: the name is
resolved once, every address is checked (``WebhookTargets``), and the socket is opened to
exactly those addresses. Everything above the socket still goes by the name: the Host header,
TLS SNI and certificate verification, and the connection pool's key (a kept-alive connection
was checked when it was opened).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from voxgate.domain.webhook_targets import WebhookTargets

__all__ = ["CheckedTransport"]

RESOLVE_TIMEOUT = 10.0  # when httpx gives no connect timeout
MAX_ADDRESSES = 4  # tried in the resolver's order until one connects


class CheckedTransport(httpx.AsyncHTTPTransport):
    """Direct connections only (no proxy from the environment: a proxy would reach whatever
    it is asked to, behind the check), HTTP/1.1, certificates verified."""

    def __init__(self, targets: WebhookTargets) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend; its pool (the one attribute it uses) does.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_CheckedBackend(targets),
        )


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, targets: WebhookTargets) -> None:
        self.targets = targets
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """``TargetRefused`` if any address of ``host`` is refused; httpcore's
        ``ConnectError`` (retried by the sender) if it does not resolve or connect."""
        try:
            addresses = await self.targets.resolve(host, port, timeout or RESOLVE_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            raise httpcore.ConnectError(f"cannot resolve the host ({type(exc).__name__})") from None
        refused = self.targets.refused(host, addresses)
        if refused is not None:
            raise refused
        failure = httpcore.ConnectError("no address")
        for address in addresses[:MAX_ADDRESSES]:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = httpcore.ConnectError(str(exc))
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are never sent to a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
