"""Redis bus: presence with node heartbeats, and pub/sub events across every node.

Keys (all under a per-deployment prefix):
  ``node:<id>``        heartbeat, expires after ``node_ttl`` unless refreshed
  ``regs:<principal>`` hash: session id -> JSON registration (who may receive its calls)
  ``conn:<id>``        set of principals registered under a connection
  ``report:<id>``      a node's report for the operator console (expires unless refreshed)
  ``tok:<jti>``        hash: session id -> [node, address] of the live sessions presenting a
                       token (token reuse across nodes); expires with the token
  ``sess:<sessid>``    what another node needs to resume a session's calls
  ``sessions:<node>``  the session records a node wrote; ``session-nodes``: the nodes that
                       have any (a dead node's records are swept once its heartbeat is gone)
  ``calls:<sessid>``   who a session was and its call ids (its call reports, on any node)
Channels: ``events`` (revocations, displacements) and ``node:<id>`` (call signals).

A registration whose node's heartbeat is gone is treated as absent, so a crashed node's
registrations vanish within ``node_ttl`` seconds without anyone cleaning up.

Redis may forget: a restart without persistence, a failover to a replica that missed the last
writes, a heartbeat that lapsed while Redis was out of reach (others then pruned our
registrations as a dead node's). Each shows as a resubscription or as our own heartbeat key
gone; either runs the ``on_reconnect`` hooks, which put back what this node holds (presence,
session records) and re-read from the store what the lost events said (revocations).
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

from voxgate.bus import lua
from voxgate.bus.base import (
    BusEvent,
    BusUnavailable,
    Handler,
    NodeMessage,
    Registration,
    SessionCalls,
    TokenHold,
)
from voxgate.bus.scripts import ScriptRunner
from voxgate.bus.target import RedisTarget
from voxgate.bus.wire import decode, encode
from voxgate.domain.registrations import Admission, Verdict, seniority
from voxgate.tasks import cancel_and_wait

__all__ = ["RedisBus"]

log = logging.getLogger(__name__)


class RedisBus:
    def __init__(
        self,
        target: str | RedisTarget,
        *,
        node_id: str,
        prefix: str = "voxgate:",
        node_ttl: float = 5.0,
    ) -> None:
        """``target``: a ``redis://`` URL, or where the master is (a URL or Sentinels)."""
        self.node_id = node_id
        self.prefix = prefix
        self.node_ttl = node_ttl
        target = RedisTarget(url=target) if isinstance(target, str) else target
        self._redis: aioredis.Redis
        self._redis, self._sentinel = target.connect()
        scripts = {
            "register": lua.REGISTER,
            "hold": lua.HOLD,
            "unregister": lua.UNREGISTER,
            "slot": lua.SLOT,
            "keep": lua.KEEP,
            "drop": lua.DROP,
            "sweep": lua.SWEEP,
            "calls": lua.CALLS,
            "publish": lua.PUBLISH,
        }
        self.scripts = ScriptRunner(self._redis, scripts)
        self._handlers: list[Handler] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._up = asyncio.Event()
        self._beaten = False  # our heartbeat key was set once: its absence means Redis forgot
        self._recovering = asyncio.Lock()
        self.recoveries = 0  # times the hooks ran: how often Redis came back or forgot us
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
        if self._sentinel is not None:
            await self._sentinel.aclose()

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
            await self.scripts.run("publish", (channel,), (encode(event),))
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis publish failed: {type(exc).__name__}") from exc

    async def _listen(self) -> None:
        """Subscribe and dispatch; on any Redis failure, resubscribe with back-off (to the
        master Sentinel names now, with Sentinel) and run the reconnect hooks once it is back."""
        delay, connected_before = 0.2, False
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._k("events"), self._k("node", self.node_id))
                await self._beat()
                self._up.set()
                delay = 0.2
                if connected_before:
                    log.warning("redis connection back: taking presence back, re-checking")
                    await self._recover()
                connected_before = True
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and (event := decode(msg["data"])) is not None:
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

    async def _recover(self) -> None:
        """Run the reconnect hooks, one run at a time (a resubscription and a forgotten
        heartbeat may both notice the same failover)."""
        async with self._recovering:
            self.recoveries += 1
            for callback in list(self.on_reconnect):
                try:
                    await callback()
                except Exception:
                    log.exception("reconnect hook failed")

    async def _dispatch(self, event: BusEvent) -> None:
        for handler in list(self._handlers):
            try:
                await handler(event)
            except Exception:
                log.exception("bus handler failed")

    # -- presence --------------------------------------------------------------------------
    async def _beat(self) -> bool:
        """Refresh our heartbeat; False when Redis had forgotten it since the last one.
        (``XX`` rather than ``GET``: one command either way, and Redis before 6.2 has it.)"""
        key, ttl = self._k("node", self.node_id), int(self.node_ttl * 1000)
        if self._beaten and await self._redis.set(key, "1", px=ttl, xx=True):
            return True
        await self._redis.set(key, "1", px=ttl)
        forgotten, self._beaten = self._beaten, True
        return not forgotten

    async def _heartbeat(self) -> None:
        """Beats on while the hooks run (in a task of their own): a long re-check must not
        let our key expire, or the other nodes would count us dead."""
        recovery: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    remembered = await self._beat()
                except (RedisError, OSError):
                    remembered = True  # the listener notices the loss and recovers when back
                if not remembered and self._up.is_set() and (recovery is None or recovery.done()):
                    log.warning("redis forgot this node (failover, restart, flush): re-announcing")
                    recovery = asyncio.create_task(self._recover())
                await asyncio.sleep(self.node_ttl / 4)
        finally:
            if recovery is not None:
                await cancel_and_wait([recovery])

    async def _alive(self, node_id: str) -> bool:
        return bool(await self._redis.exists(self._k("node", node_id)))

    async def node_alive(self, node_id: str) -> bool:
        try:
            return node_id == self.node_id or await self._alive(node_id)
        except (RedisError, OSError):
            return True  # cannot tell: never end a call on a guess

    async def register(
        self, reg: Registration, admission: Admission, token: TokenHold | None = None
    ) -> Verdict:
        keys: tuple[str, ...] = (self._k("regs", reg.principal), self._k("conn", reg.connection_id))
        args: tuple[str, ...] = (
            json.dumps(asdict(reg)),
            reg.session_id,
            reg.principal,
            admission.policy.value,
            str(admission.max_registrations),
            self._k("node", ""),
        )
        if token is not None:
            keys += self._token_keys(token)
            args += (self.node_id, reg.address, _epoch_ms(token.until))
        try:
            answer = await self.scripts.run("register", keys, args)
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis register failed: {type(exc).__name__}") from exc
        others = [Registration(**json.loads(raw)) for raw in answer[2:]]
        if answer[0] == "refused":
            return Verdict(refused_by=others[0])
        return Verdict(displaced=tuple(others), reused=_reused(answer[1], reg.address))

    async def hold_token(self, session_id: str, address: str, token: TokenHold) -> list[str]:
        args = (session_id, self.node_id, address, _epoch_ms(token.until), self._k("node", ""))
        try:
            rivals = await self.scripts.run("hold", self._token_keys(token), args)
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis token failed: {type(exc).__name__}") from exc
        return list(_reused(rivals, address))

    def _token_keys(self, token: TokenHold) -> tuple[str, ...]:
        previous = () if token.previous is None else (self._k("tok", token.previous),)
        return (self._k("tok", token.jti), *previous)

    async def unregister(self, principal: str, session_id: str, jti: str | None = None) -> None:
        held = () if jti is None else (self._k("tok", jti),)
        await self.scripts.run(
            "unregister",
            (self._k("regs", principal), *held),
            (session_id, principal, self._k("conn", "")),
        )

    async def registrations(
        self, principal: str, alive: dict[str, bool] | None = None
    ) -> list[Registration]:
        """``alive``: node liveness already looked up (a scan over many principals shares it)."""
        alive = {} if alive is None else alive
        try:
            raw = await self._redis.hgetall(self._k("regs", principal))
            found = [Registration(**json.loads(v)) for v in raw.values()]
            for node in {r.node_id for r in found} - alive.keys():
                alive[node] = await self._alive(node)
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis lookup failed: {type(exc).__name__}") from exc
        return sorted((r for r in found if alive[r.node_id]), key=seniority)

    async def registrations_of_connection(self, connection_id: str) -> list[Registration]:
        principals = await self._redis.smembers(self._k("conn", connection_id))
        alive: dict[str, bool] = {}
        found = [r for p in principals for r in await self.registrations(str(p), alive)]
        return [r for r in found if r.connection_id == connection_id]

    async def all_registrations(self) -> list[Registration]:
        found: list[Registration] = []
        alive: dict[str, bool] = {}
        try:
            async for key in self._redis.scan_iter(match=self._k("regs", "*"), count=500):
                principal = str(key).removeprefix(self._k("regs", ""))
                found += await self.registrations(principal, alive)
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis scan failed: {type(exc).__name__}") from exc
        return found

    async def put_node_report(self, report: dict[str, Any], ttl: float) -> None:
        with contextlib.suppress(RedisError, OSError):  # the next report tries again
            key = self._k("report", self.node_id)
            await self._redis.set(key, json.dumps(report), px=int(ttl * 1000))

    async def node_reports(self) -> list[dict[str, Any]]:
        reports = []
        try:
            async for key in self._redis.scan_iter(match=self._k("report", "*"), count=100):
                raw = await self._redis.get(key)
                if raw is not None:
                    reports.append(json.loads(raw))
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis scan failed: {type(exc).__name__}") from exc
        return reports

    async def keep_session(self, sessid: str, record: dict[str, Any], ttl: float) -> None:
        body = json.dumps({**record, "node": self.node_id})
        listed = (self._k("sessions", self.node_id), self._k("session-nodes"))
        keys = (self._k("sess", sessid), *listed)
        with contextlib.suppress(RedisError, OSError):  # a lost record only costs a reattach
            await self.scripts.run("keep", keys, (body, _ms(ttl), self.node_id, sessid))

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
        keys = (self._k("sess", sessid), self._k("sessions", self.node_id))
        with contextlib.suppress(RedisError, OSError):
            await self.scripts.run("drop", keys, (sessid,))

    async def sweep_sessions(self, linger: float) -> int:
        args = (self._k("node", ""), self.prefix, _ms(linger))
        try:
            return int(await self.scripts.run("sweep", (self._k("session-nodes"),), args))
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis sweep failed: {type(exc).__name__}") from exc

    async def note_calls(self, sessid: str, calls: SessionCalls, ttl: float) -> None:
        owner = (calls.credential_id or "", calls.connection_id)
        args = (_ms(ttl), *owner, *sorted(calls.call_ids))
        with contextlib.suppress(RedisError, OSError):  # only its reports elsewhere are lost
            await self.scripts.run("calls", (self._k("calls", sessid),), args)

    async def calls_of(self, sessid: str) -> SessionCalls | None:
        try:
            found = await self._redis.hgetall(self._k("calls", sessid))
        except (RedisError, OSError):
            return None
        if not found:
            return None
        fields = {str(k): str(v) for k, v in found.items()}  # decoded by the client already
        ids = frozenset(k[2:] for k in fields if k.startswith("c:"))
        return SessionCalls(fields.get("credential_id") or None, fields["connection_id"], ids)

    async def take_slot(self, key: str, member: str, limit: int, ttl: float, now: float) -> bool:
        args = (member, repr(now), str(limit), repr(now + ttl), str(int(ttl * 1000) + 1000))
        try:
            return bool(await self.scripts.run("slot", (self._k("slots", key),), args))
        except (RedisError, OSError) as exc:
            raise BusUnavailable(f"redis slot failed: {type(exc).__name__}") from exc

    async def free_slot(self, key: str, member: str) -> None:
        with contextlib.suppress(RedisError, OSError):  # it lets go at its expiry anyway
            await self._redis.zrem(self._k("slots", key), member)


def _ms(seconds: float) -> str:
    return str(max(1, int(seconds * 1000)))


def _epoch_ms(epoch: float) -> str:
    """When a token's key goes: its expiry, a minute late for clocks that disagree."""
    return str(int((epoch + 60) * 1000))


def _reused(rivals: str, address: str) -> tuple[str, ...]:
    """The script's answer (other addresses, space-separated) as a verdict's ``reused``."""
    others = rivals.split()
    return tuple(sorted({*others, address})) if others else ()
