"""An asyncio client that speaks the same JSON-RPC as ``@telnyx/webrtc``.

    client = Client("ws://127.0.0.1:8001", login_token=jwt)
    await client.connect()                      # returns once the gateway says REGED
    await client.wait_for("token_expiring_soon")
    await client.update_token(new_jwt)          # re-login on the same socket

Reconnects (after an unexpected drop, never after a punt) use the newest token, or ask
``token_provider`` for a fresh one, so a long-lived client never replays an expired token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from voxgate.client.call import Call
from voxgate.domain.ids import new_uuid

__all__ = ["Call", "Client", "ClientError", "Event"]

Handler = Callable[["Event"], Any]


class ClientError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Event:
    """``name`` is one of ready, token_expiring_soon, displaced, revoked, expired, closed,
    error, notification, reconnecting, reattached, incoming_call, call_ended, ai_conversation."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)


_ACKED = {
    "telnyx_rtc.invite",
    "telnyx_rtc.ringing",
    "telnyx_rtc.answer",
    "telnyx_rtc.media",
    "telnyx_rtc.bye",
    "telnyx_rtc.candidate",
    "telnyx_rtc.attach",
    "telnyx_rtc.display",
}
_CALL_METHODS = {
    "telnyx_rtc.invite",
    "telnyx_rtc.ringing",
    "telnyx_rtc.media",
    "telnyx_rtc.answer",
    "telnyx_rtc.bye",
    "telnyx_rtc.info",
    "ai_conversation",
}
_PLACEHOLDER_SDP = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=voxgate\r\nt=0 0\r\n"

_NOTICES = {
    "voxgate.ice_servers": "ice_servers",
    "voxgate.token_expiring": "token_expiring_soon",
    "voxgate.displaced": "displaced",
    "voxgate.revoked": "revoked",
    "voxgate.expired": "expired",
}


class Client:
    def __init__(
        self,
        url: str,
        *,
        login_token: str | None = None,
        login: str | None = None,
        password: str | None = None,
        anonymous_login: dict[str, Any] | None = None,
        token_provider: Callable[[], Awaitable[str]] | None = None,
        reconnect: bool = True,
        max_backoff: float = 30.0,
        user_agent: str = "voxgate-python/0.1",
        fallback_urls: list[str] | None = None,
    ) -> None:
        if not (login_token or (login and password) or anonymous_login or token_provider):
            raise ValueError("give login_token, login+password, anonymous_login or token_provider")
        self.url = url
        self.urls = [url, *(fallback_urls or [])]  # reconnects walk this list
        self.login_token = login_token
        self.login = login
        self.password = password
        self.anonymous_login = anonymous_login
        self.token_provider = token_provider
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.user_agent = user_agent
        self.sessid: str | None = None
        self.ice_servers: list[dict[str, Any]] = []  # minted per login by the gateway
        self.ready = asyncio.Event()
        self.dc: str | None = None
        self.connections = 0
        self._ws: ClientConnection | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._handlers: dict[str, list[Handler]] = {}
        self._history: list[Event] = []
        self._waiters: list[tuple[str, asyncio.Future[Event]]] = []
        self._consumed: dict[str, int] = {}
        self._reader: asyncio.Task[None] | None = None
        self._punted = False
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.calls: dict[str, Call] = {}

    # -- public API ------------------------------------------------------------------------
    def on(self, name: str, handler: Handler) -> None:
        self._handlers.setdefault(name, []).append(handler)

    @property
    def events(self) -> list[Event]:
        return list(self._history)

    async def wait_for(self, name: str, timeout: float = 10.0) -> Event:
        """The oldest event called ``name`` not yet returned by ``wait_for``; waits if none."""
        seen = [ev for ev in self._history if ev.name == name]
        taken = self._consumed.get(name, 0)
        self._consumed[name] = taken + 1
        if len(seen) > taken:
            return seen[taken]
        fut: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((name, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self._consumed[name] -= 1
            raise

    async def connect(self, timeout: float = 10.0) -> str:
        """Open the socket, log in and wait for REGED. Returns the session id."""
        await asyncio.wait_for(self._open_and_login(), timeout)
        await self.wait_for("ready", timeout)
        assert self.sessid is not None
        return self.sessid

    async def update_token(self, token: str, timeout: float = 10.0) -> None:
        """Refresh in place: a second ``login`` on the live socket. Raises ``ClientError``."""
        self.login_token = token
        await self.request("login", self._login_params(reconnection=True), timeout=timeout)

    async def request(self, method: str, params: dict[str, Any], timeout: float = 10.0) -> Any:
        ws = self._ws
        if ws is None:
            raise ClientError(-1, "not connected")
        req_id = new_uuid()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            await ws.send(
                json.dumps({"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
            )
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(req_id, None)

    async def new_call(
        self,
        destination: str,
        *,
        sdp: str | None = None,
        media: bool = False,
        caller_name: str = "",
        caller_number: str = "",
    ) -> Call:
        """Dial ``destination``. With ``media=True`` (aiortc) the call sends real audio."""
        call = Call(
            self,
            new_uuid(),
            "outbound",
            params={
                "destination_number": destination,
                "caller_id_name": caller_name,
                "caller_id_number": caller_number,
            },
        )
        self.calls[call.id] = call
        if sdp is None:
            sdp = await call.media_offer() if media else _PLACEHOLDER_SDP
        await self.request(
            "telnyx_rtc.invite",
            {
                "sessid": self.sessid,
                "sdp": sdp,
                "dialogParams": {"callID": call.id, **call.params},
                "User-Agent": self.user_agent,
            },
        )
        if call.state == "new":  # ringing or a bye may already have arrived
            call.set_state("trying")
        return call

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    # -- internals -------------------------------------------------------------------------
    def _login_params(self, *, reconnection: bool = False) -> dict[str, Any]:
        ua = {"sdkVersion": "voxgate-python", "data": self.user_agent}
        if self.anonymous_login is not None and not self.login_token:
            return {**self.anonymous_login, "reconnection": reconnection, "User-Agent": ua}
        params: dict[str, Any] = {
            "userVariables": {},
            "reconnection": reconnection,
            "loginParams": {},
            "User-Agent": ua,
        }
        if self.login_token:
            params["login_token"] = self.login_token
        else:
            params["login"], params["passwd"] = self.login, self.password
        if reconnection and self.sessid:
            params["sessid"] = self.sessid
        return params

    async def _open_and_login(self) -> None:
        if self.token_provider is not None and (self.connections > 0 or not self.login_token):
            self.login_token = await self.token_provider()
        self.ready.clear()
        self._punted = False
        self._ws = await websockets.connect(self.url, compression=None, ping_interval=None)
        self.connections += 1
        self._reader = asyncio.create_task(self._read(self._ws))
        method = (
            "anonymous_login"
            if self.anonymous_login is not None and not self.login_token
            else "login"
        )
        try:
            result = await self.request(
                method, self._login_params(reconnection=self.connections > 1)
            )
        except ClientError as exc:
            self._emit(Event("error", {"code": exc.code, "message": exc.message}))
            raise
        self.sessid = result.get("sessid") if isinstance(result, dict) else None

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                with contextlib.suppress(ValueError):
                    await self._dispatch(ws, json.loads(message))
        except ConnectionClosed:
            pass
        finally:
            code, reason = ws.close_code, ws.close_reason or ""
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ClientError(-1, "connection closed"))
            self.ready.clear()
            self._emit(Event("closed", {"code": code, "reason": reason, "punted": self._punted}))
            if self.reconnect and not self._punted and not self._closing:
                self._spawn(self._reconnect())

    async def _dispatch(self, ws: ClientConnection, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        msg_id, method = msg.get("id"), msg.get("method")
        if method is None:
            fut = self._pending.get(str(msg_id))
            if fut is not None and not fut.done():
                if "error" in msg:
                    err = msg["error"] or {}
                    fut.set_exception(
                        ClientError(int(err.get("code", 0)), str(err.get("message", "")))
                    )
                else:
                    result = msg.get("result")
                    fut.set_result(result)
                    if isinstance(result, dict) and isinstance(result.get("params"), dict):
                        self._gateway_reported(result["params"])
            return
        params = msg.get("params") or {}
        if method in _ACKED and msg_id is not None:
            await self._send({"jsonrpc": "2.0", "id": msg_id, "result": {"method": method}})
        if method in _CALL_METHODS and isinstance(params, dict):
            await self._call_message(method, params)
            return
        if method == "telnyx_rtc.clientReady":
            await self._reattached(params.get("reattached_sessions"))
            self._spawn(self._gateway_state())
        elif method == "telnyx_rtc.punt":
            self._punted = True
        elif method == "telnyx_rtc.ping":
            self._spawn(self._ping())
        elif method in ("telnyx_rtc.event", "webrtc.event"):
            name = _NOTICES.get(str(params.get("eventType")), "notification")
            if name == "ice_servers" and isinstance(params.get("iceServers"), list):
                self.ice_servers = params["iceServers"]
            self._emit(Event(name, params))
        elif method == "telnyx_rtc.gatewayState":
            self._gateway_reported(params)

    async def _reattached(self, listed: object) -> None:
        """After a reconnect the gateway lists the calls that survived; the others are gone
        (as the SDK does: ended here, no bye, since the server no longer knows them)."""
        if self.connections < 2 or not isinstance(listed, list):
            return
        for call in list(self.calls.values()):
            if call.state != "hangup" and call.id not in listed:
                call.cause = "SESSION_NOT_REATTACHED"
                await call.ended()
                self._emit(Event("call_ended", {"call": call, "cause": call.cause}))
        self._emit(Event("reattached", {"calls": [c for c in listed if isinstance(c, str)]}))

    def _gateway_reported(self, params: dict[str, Any]) -> None:
        if isinstance(params.get("dc"), str):
            self.dc = params["dc"]  # the node (or worker) that holds this session
        if params.get("state") in ("REGED", "REGISTER") and not self.ready.is_set():
            self.ready.set()
            self._emit(Event("ready", {"sessid": self.sessid}))

    async def _call_message(self, method: str, params: dict[str, Any]) -> None:
        call_id = str(params.get("callID", ""))
        if method == "telnyx_rtc.invite":
            incoming = Call(self, call_id, "inbound", remote_sdp=params.get("sdp"), params={})
            incoming.learn_ids(params)
            incoming.set_state("ringing")
            self.calls[call_id] = incoming
            self._emit(Event("incoming_call", {"call": incoming, **params}))
            return
        call = self.calls.get(call_id)
        if call is None:
            return
        if method == "ai_conversation":
            self._emit(Event("ai_conversation", {"call": call, **params}))
            return
        await call.on_signal(method, params)
        if method == "telnyx_rtc.bye":
            self._emit(Event("call_ended", {"call": call, **params}))

    async def _send(self, frame: dict[str, Any]) -> None:
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(json.dumps(frame))

    async def _gateway_state(self) -> None:
        with contextlib.suppress(ClientError, TimeoutError):
            await self.request("telnyx_rtc.gatewayState", {})

    async def _ping(self) -> None:
        with contextlib.suppress(ClientError, TimeoutError):
            await self.request("telnyx_rtc.ping", {})

    async def _reconnect(self) -> None:
        delay = 0.5
        while not self._closing:
            self._emit(Event("reconnecting", {"delay": delay}))
            await asyncio.sleep(delay * random.uniform(0.75, 1.25))
            self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
            try:
                await self.connect()
                return
            except ClientError as exc:
                if exc.code == -32001:
                    return  # the credentials are refused: retrying would only spin
            except (OSError, TimeoutError, ConnectionClosed):
                pass
            delay = min(self.max_backoff, delay * 2)

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        for name, fut in list(self._waiters):
            if name == event.name:
                self._waiters.remove((name, fut))
                if not fut.done():
                    fut.set_result(event)
                    break
        for handler in self._handlers.get(event.name, []):
            result = handler(event)
            if asyncio.iscoroutine(result):
                self._spawn(result)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Background work that is kept referenced until it ends (the loop holds tasks weakly)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
