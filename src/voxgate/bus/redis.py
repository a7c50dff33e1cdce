"""Redis bus: presence with node heartbeats, and pub/sub events across every node.

Keys (all under a per-deployment prefix):
  ``node:<id>``        heartbeat, expires after ``node_ttl`` unless refreshed
  ``reg:<principal>``  JSON registration (who receives the principal's inbound calls)
  ``conn:<id>``        set of principals registered under a connection
Channels: ``events`` (revocations, displacements) and ``node:<id>`` (call signals).

A registration whose node's heartbeat is gone is treated as absent, so a crashed node's
registrations vanish within ``node_ttl`` seconds without anyone cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import asdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from voxgate.bus.base import (
    BusEvent,
    BusUnavailable,
    Displaced,
    Handler,
    NodeMessage,
    Registration,
    Revoked,
)
from voxgate.tasks import cancel_and_wait

__all__ = ["RedisBus"]

log = logging.getLogger(__name__)

# Take the registration; return the previous one (or nil). Atomic, so two nodes racing for the
# same principal both see a consistent "who was before me".
_REGISTER = """
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return old
"""
# Delete only if the registration still belongs to this session.
_UNREGISTER = """
local cur = redis.call('GET', KEYS[1])
if cur and cjson.decode(cur)['session_id'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""


class RedisBus:
    def __init__(
        self, url: str, *, node_id: str, prefix: str = "voxgate:", node_ttl: float = 5.0
    ) -> None:
        self.node_id = node_id
        self.prefix = prefix
        self.node_ttl = node_ttl
        self._redis = aioredis.from_url(
            url,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
            health_check_interval=5,
        )
        self._handlers: list[Handler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._up = asyncio.Event()
        self.on_reconnect: list[Any] = []  # async callables run after Redis comes back

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._heartbeat()), asyncio.create_task(self._listen())]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), 5)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._k("node", self.node_id))
        await self._redis.aclose()

    async def healthy(self) -> bool:
        return self._up.is_set()

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    # -- events ----------------------------------------------------------------------------
    async def publish(self, event: BusEvent) -> None:
        channel = (
            self._k("node", event.node_id) if isinstance(event, NodeMessage) else self._k("events")
        )
        try:
            await self._redis.publish(channel, _encode(event))
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis publish failed: {type(exc).__name__}") from exc

    async def _listen(self) -> None:
        """Subscribe and dispatch; on any Redis failure, resubscribe with back-off and run the
        reconnect hooks (re-register, re-check revocations) once it is back."""
        delay, connected_before = 0.2, False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._k("events"), self._k("node", self.node_id))
                await self._beat()
                self._up.set()
                delay = 0.2
                if connected_before:
                    for callback in list(self.on_reconnect):
                        try:
                            await callback()
                        except Exception:
                            log.exception("reconnect hook failed")
                connected_before = True
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and (event := _decode(msg["data"])) is not None:
                        await self._dispatch(event)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._up.is_set():
                    log.warning("redis connection lost: %s", type(exc).__name__)
                self._up.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _dispatch(self, event: BusEvent) -> None:
        for handler in list(self._handlers):
            try:
                await handler(event)
            except Exception:
                log.exception("bus handler failed")

    # -- presence --------------------------------------------------------------------------
    async def _beat(self) -> None:
        await self._redis.set(self._k("node", self.node_id), "1", px=int(self.node_ttl * 1000))

    async def _heartbeat(self) -> None:
        while True:
            with contextlib.suppress(RedisError, OSError):
                await self._beat()
            await asyncio.sleep(self.node_ttl / 4)

    async def _alive(self, node_id: str) -> bool:
        return bool(await self._redis.exists(self._k("node", node_id)))

    async def node_alive(self, node_id: str) -> bool:
        try:
            return node_id == self.node_id or await self._alive(node_id)
        except (RedisError, OSError):
            return True  # cannot tell: never end a call on a guess

    async def register(self, reg: Registration) -> Registration | None:
        try:
            old = await self._redis.eval(
                _REGISTER,
                2,
                self._k("reg", reg.principal),
                self._k("conn", reg.connection_id),
                json.dumps(asdict(reg)),
                reg.principal,
            )
            previous = Registration(**json.loads(old)) if old else None
            if previous is None or previous.session_id == reg.session_id:
                return None
            return previous if await self._alive(previous.node_id) else None
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis register failed: {type(exc).__name__}") from exc

    async def unregister(self, principal: str, session_id: str) -> None:
        cur = await self._redis.get(self._k("reg", principal))
        conn = json.loads(cur)["connection_id"] if cur else ""
        await self._redis.eval(
            _UNREGISTER, 2, self._k("reg", principal), self._k("conn", conn), session_id, principal
        )

    async def registration(self, principal: str) -> Registration | None:
        try:
            raw = await self._redis.get(self._k("reg", principal))
            if raw is None:
                return None
            reg = Registration(**json.loads(raw))
            return reg if await self._alive(reg.node_id) else None
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis lookup failed: {type(exc).__name__}") from exc

    async def registrations_of_connection(self, connection_id: str) -> list[Registration]:
        principals = await self._redis.smembers(self._k("conn", connection_id))
        found = [await self.registration(str(p)) for p in principals]
        return [r for r in found if r is not None and r.connection_id == connection_id]

    async def keep_session(self, sessid: str, record: dict[str, Any], ttl: float) -> None:
        body = json.dumps({**record, "node": self.node_id})
        with contextlib.suppress(RedisError, OSError):  # a lost record only costs a reattach
            await self._redis.set(self._k("sess", sessid), body, px=int(ttl * 1000))

    async def session_record(self, sessid: str) -> tuple[dict[str, Any], bool] | None:
        try:
            raw = await self._redis.get(self._k("sess", sessid))
            if raw is None:
                return None
            record: dict[str, Any] = json.loads(raw)
            return record, await self._alive(str(record.get("node", "")))
        except (RedisError, OSError, ValueError):
            return None

    async def drop_session(self, sessid: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._k("sess", sessid))


def _encode(event: BusEvent) -> str:
    if isinstance(event, Revoked):
        return json.dumps(
            {
                "t": "revoked",
                "principals": list(event.principals),
                "reason": event.reason,
                "expired": event.expired,
            }
        )
    if isinstance(event, Displaced):
        return json.dumps(
            {"t": "displaced", "session_id": event.session_id, "by": asdict(event.by)}
        )
    return json.dumps(
        {"t": "node", "node_id": event.node_id, "kind": event.kind, "body": event.body}
    )


def _decode(data: str) -> BusEvent | None:
    try:
        obj = json.loads(data)
        if obj["t"] == "revoked":
            return Revoked(tuple(obj["principals"]), obj["reason"], bool(obj.get("expired")))
        if obj["t"] == "displaced":
            return Displaced(obj["session_id"], Registration(**obj["by"]))
        if obj["t"] == "node":
            return NodeMessage(obj["node_id"], obj["kind"], obj["body"])
    except (ValueError, KeyError, TypeError):
        log.warning("undecodable bus message dropped")
    return None
