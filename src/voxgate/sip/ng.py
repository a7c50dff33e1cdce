"""rtpengine's "ng" control protocol: bencoded dictionaries over UDP, each datagram
``<cookie> <bencoded dict>``, the reply echoing the cookie.

voxgate drives its media relay with it: offers and answers rewritten between WebRTC
(ICE, DTLS-SRTP) and plain RTP, media blocked for hold, DTMF played into a call. The codec
(``bencode.py``) and the framing are plain functions, tested without a socket; ``NgClient``
is the asyncio adapter.

Retries: UDP loses datagrams, so a request is sent again, with the same cookie, after
``timeout`` seconds, at most ``attempts`` times in all. rtpengine keeps its recent replies by
cookie and answers a repeated cookie from that cache, so an offer is never carried out twice.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from voxgate.domain.errors import ConfigurationError, ServiceUnavailable
from voxgate.sip.bencode import BencodeError, Encodable, Value, decode, encode

__all__ = [
    "NgClient",
    "NgError",
    "NgNoAnswer",
    "frame",
    "join_address",
    "options",
    "parse_address",
    "unframe",
]

log = structlog.get_logger("voxgate.sip")

# --- ng messages ---------------------------------------------------------------------------


def frame(cookie: str, message: Mapping[str, Encodable]) -> bytes:
    """One request datagram."""
    return cookie.encode("ascii") + b" " + encode(message)


def unframe(datagram: bytes) -> tuple[str, dict[str, Value]]:
    """The cookie and the dictionary of one datagram (strings as ``str``)."""
    cookie, space, body = datagram.partition(b" ")
    if not space or not cookie:
        raise BencodeError("an ng message starts with a cookie and a space")
    value = decode(body, text=True)
    if not isinstance(value, dict):
        raise BencodeError("an ng message is a dictionary")
    return cookie.decode("ascii", "replace"), value


def options(flags: Mapping[str, Encodable | bool | None]) -> dict[str, Encodable]:
    """Keyword arguments as ng keys: ``transport_protocol="RTP/AVP"`` is
    ``transport-protocol``; ``True`` adds the name to the ``flags`` list
    (``inject_DTMF=True``: ``flags: [inject-DTMF]``); ``False`` and ``None`` leave it out.
    rtpengine 10.5 reads ``-`` and spaces alike in names, but not ``_``."""
    found: dict[str, Encodable] = {}
    named: list[Encodable] = []
    for key, value in flags.items():
        name = key.replace("_", "-")
        if value is True:
            named.append(name)
        elif value is not False and value is not None:
            found[name] = value
    if named:
        given = found.get("flags", [])
        if isinstance(given, str | bytes) or not isinstance(given, Sequence):
            raise BencodeError("flags is a list of names")
        found["flags"] = [*given, *named]
    return found


# --- the client ----------------------------------------------------------------------------


class NgError(ServiceUnavailable):
    """rtpengine refused a request (``reason``: its ``error-reason``), or did not answer
    (``NgNoAnswer``)."""

    def __init__(self, detail: str, *, command: str, reason: str | None = None) -> None:
        super().__init__(detail)
        self.command = command
        self.reason = reason


class NgNoAnswer(NgError):
    """No reply after every attempt: rtpengine is down, restarting or unreachable."""


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[dict[str, Value]]] = {}
        self.error: OSError | None = None  # the last one (ICMP port unreachable: refused)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        cookie, _, _ = data.partition(b" ")
        fut = self.waiting.get(cookie.decode("ascii", "replace"))
        if fut is None or fut.done():
            return  # a late answer to a request that gave up, or a repeated one
        try:
            fut.set_result(unframe(data)[1])
        except BencodeError as exc:
            fut.set_exception(exc)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.error = exc

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in self.waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionAbortedError("the ng client was closed"))


class NgClient:
    """Requests to one rtpengine's ng socket. Safe for concurrent requests (each waits for
    its own cookie); ``close`` when done."""

    def __init__(self, host: str, port: int, *, timeout: float = 1.0, attempts: int = 3) -> None:
        if attempts < 1 or timeout <= 0:
            raise ConfigurationError("an ng client needs a timeout and at least one attempt")
        self.host, self.port = host, port
        self.timeout, self.attempts = timeout, attempts
        # cookies unique across clients and restarts: rtpengine answers a cookie it has seen
        # recently from its cache, whoever sends it
        self._prefix = secrets.token_hex(6)
        self._numbers = itertools.count(1)
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Replies | None = None

    @classmethod
    def at(cls, address: str, **kw: Any) -> NgClient:
        """A client for ``HOST:PORT`` or ``[IPV6]:PORT`` (``--rtpengine-ng``)."""
        host, port = parse_address(address)
        return cls(host, port, **kw)

    @property
    def address(self) -> str:
        return join_address(self.host, self.port)

    async def _open(self) -> tuple[asyncio.DatagramTransport, _Replies]:
        if self._transport is None or self._protocol is None:
            loop = asyncio.get_running_loop()
            # connected: the kernel drops datagrams from anyone but rtpengine
            self._transport, self._protocol = await loop.create_datagram_endpoint(
                _Replies, remote_addr=(self.host, self.port)
            )
        return self._transport, self._protocol

    async def request(
        self, command: str, params: Mapping[str, Encodable] | None = None
    ) -> dict[str, Value]:
        """rtpengine's reply to ``command``; ``NgError`` unless it is ``ok`` (or ``pong``)."""
        cookie = f"{self._prefix}_{next(self._numbers)}"
        datagram = frame(cookie, {**(params or {}), "command": command})
        try:
            transport, protocol = await self._open()
        except OSError as exc:
            raise NgNoAnswer(
                f"rtpengine at {self.address}: {exc.strerror or exc}", command=command
            ) from None
        fut: asyncio.Future[dict[str, Value]] = asyncio.get_running_loop().create_future()
        protocol.waiting[cookie] = fut
        protocol.error = None
        try:
            for _ in range(self.attempts):
                transport.sendto(datagram)
                if (await asyncio.wait({fut}, timeout=self.timeout))[0]:
                    break
        finally:
            protocol.waiting.pop(cookie, None)
        if not fut.done():
            error = protocol.error
            why = f"; {error.strerror or error}" if error is not None else ""
            raise NgNoAnswer(
                f"rtpengine at {self.address} did not answer {command!r} "
                f"({self.attempts} attempts, {self.timeout:g} s each{why})",
                command=command,
            )
        try:
            reply = fut.result()
        except BencodeError as exc:
            raise NgError(
                f"rtpengine {command}: unreadable reply ({exc})", command=command
            ) from None
        except ConnectionAbortedError as exc:
            raise NgNoAnswer(f"rtpengine {command}: {exc}", command=command) from None
        result = reply.get("result")
        if result in ("ok", "pong"):
            if "warning" in reply:
                log.info("rtpengine warning", command=command, warning=reply["warning"])
            return reply
        reason = str(reply.get("error-reason") or reply.get("message") or result)
        raise NgError(f"rtpengine {command}: {reason}", command=command, reason=reason)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        self._transport = self._protocol = None

    # --- the commands ----------------------------------------------------------------------

    async def ping(self) -> None:
        """``NgError`` unless rtpengine answers ``pong``."""
        if (await self.request("ping")).get("result") != "pong":
            raise NgError("rtpengine ping: no pong", command="ping")

    async def offer(
        self, call_id: str, from_tag: str, sdp: str, **flags: Encodable | bool | None
    ) -> str:
        """The SDP to send on in place of the caller's ``sdp`` (rtpengine's ports, and what
        ``flags`` ask: ``transport_protocol="RTP/AVP"``, ``ICE="remove"``, ...)."""
        params = {**options(flags), "call-id": call_id, "from-tag": from_tag, "sdp": sdp}
        return _sdp(await self.request("offer", params), "offer")

    async def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: str,
        **flags: Encodable | bool | None,
    ) -> str:
        """The SDP to send back to the caller in place of the callee's ``sdp``."""
        params = {
            **options(flags),
            "call-id": call_id,
            "from-tag": from_tag,
            "to-tag": to_tag,
            "sdp": sdp,
        }
        return _sdp(await self.request("answer", params), "answer")

    async def delete(
        self,
        call_id: str,
        from_tag: str | None = None,
        *,
        missing_ok: bool = False,
        **flags: Encodable | bool | None,
    ) -> dict[str, Value]:
        """Ends the call (one party's branch with ``from_tag``). rtpengine answers ``ok`` with
        a warning for a call it does not know; unless ``missing_ok``, that is an ``NgError``
        (the ``fatal`` flag)."""
        params = options({**flags, "fatal": not missing_ok, "from_tag": from_tag})
        return await self.request("delete", {**params, "call-id": call_id})

    async def query(self, call_id: str, **flags: Encodable | bool | None) -> dict[str, Value]:
        """The call's parties (``tags``), media, endpoints and packet counts."""
        return await self.request("query", {**options(flags), "call-id": call_id})

    async def list_calls(self, limit: int = 10_000) -> list[str]:
        """The call ids rtpengine holds, up to ``limit`` (``list`` without one stops at 32)."""
        calls = (await self.request("list", {"limit": limit})).get("calls", [])
        if not isinstance(calls, list):
            raise NgError("rtpengine list: no list of calls", command="list")
        return [str(c) for c in calls]

    async def block_media(
        self, call_id: str, from_tag: str | None = None, **flags: Encodable | bool | None
    ) -> None:
        """Stops relaying what ``from_tag`` sends (hold); the whole call with ``all=True``."""
        params = options({**flags, "from_tag": from_tag})
        await self.request("block media", {**params, "call-id": call_id})

    async def unblock_media(
        self, call_id: str, from_tag: str | None = None, **flags: Encodable | bool | None
    ) -> None:
        params = options({**flags, "from_tag": from_tag})
        await self.request("unblock media", {**params, "call-id": call_id})

    async def play_dtmf(
        self,
        call_id: str,
        digit: str,
        from_tag: str | None = None,
        *,
        duration_ms: int | None = None,
        **flags: Encodable | bool | None,
    ) -> None:
        """Injects ``digit`` (0-9, *, #, A-D) as if ``from_tag`` had sent it: RFC 4733 events
        where the other side negotiated telephone-event, else in-band tones. Only into a call
        offered and answered with ``inject_DTMF=True`` (without it rtpengine answers ``ok``
        and plays nothing), once ``from_tag``'s media flows (before: "No SSRC context")."""
        params = options({**flags, "from_tag": from_tag, "duration": duration_ms})
        await self.request("play DTMF", {**params, "call-id": call_id, "digit": digit})


def _sdp(reply: dict[str, Value], command: str) -> str:
    sdp = reply.get("sdp")
    if not isinstance(sdp, str):
        raise NgError(f"rtpengine {command}: no SDP in the reply", command=command)
    return sdp


def join_address(host: str, port: int) -> str:
    """``HOST:PORT``, or ``[IPV6]:PORT``, as rtpengine's ``--listen-ng`` takes it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``; ``ConfigurationError`` otherwise."""
    found = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\s\[\]]+):(\d{1,5})", address)
    port = int((found.group(2) or found.group(4)) if found else 0)
    if found is None or not 0 < port < 65536:
        raise ConfigurationError(f"{address!r} is not HOST:PORT (an ng control socket)")
    return found.group(1) or found.group(3), port
