"""In-process bus: the embedded default, exact for one process and useless across several."""

from __future__ import annotations

import heapq
import logging
import time
from typing import Any

from voxgate.bus.base import BusEvent, Handler, SessionCalls, TokenHold
from voxgate.domain.registrations import Admission, Registration, Verdict, admit, seniority

__all__ = ["LocalBus"]

log = logging.getLogger(__name__)
MAX_NOTED = 50_000  # sessions' calls kept before the expired ones are cleared out


class LocalBus:
    def __init__(self, node_id: str = "local") -> None:
        self.node_id = node_id
        self._handlers: list[Handler] = []
        self._regs: dict[str, dict[str, Registration]] = {}  # principal -> sessid -> reg
        self._sessions: dict[str, dict[str, Any]] = {}
        self._reports: dict[str, tuple[float, dict[str, Any]]] = {}  # node -> (until, report)
        self._slots: dict[str, dict[str, float]] = {}  # key -> member -> held until
        self._tokens: dict[str, dict[str, str]] = {}  # jti -> session id -> address
        self._token_until: dict[str, float] = {}  # jti -> when its entry goes
        self._token_heap: list[tuple[float, str]] = []  # (until, jti): the next to go first
        self._calls: dict[str, tuple[float, SessionCalls]] = {}  # sessid -> (until, calls)

    async def healthy(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._regs.clear()
        self._sessions.clear()

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, event: BusEvent) -> None:
        for handler in list(self._handlers):
            try:
                await handler(event)
            except Exception:  # one failing listener must not starve the others
                log.exception("bus handler failed")

    async def register(
        self, reg: Registration, admission: Admission, token: TokenHold | None = None
    ) -> Verdict:
        held = self._regs.setdefault(reg.principal, {})
        verdict = admit(list(held.values()), reg, admission)
        if verdict.refused_by is None:
            for gone in verdict.displaced:
                del held[gone.session_id]
            held[reg.session_id] = reg
            if token is not None:
                reused = await self.hold_token(reg.session_id, reg.address, token)
                verdict = Verdict(displaced=verdict.displaced, reused=tuple(reused))
        return verdict

    async def hold_token(self, session_id: str, address: str, token: TokenHold) -> list[str]:
        now, heap = time.time(), self._token_heap
        while heap and heap[0][0] <= now:
            until, jti = heapq.heappop(heap)
            if self._token_until.get(jti) == until:
                self._drop_token(jti, None)
        if token.previous is not None and token.previous != token.jti:
            self._drop_token(token.previous, session_id)
        holders = self._tokens.setdefault(token.jti, {})
        holders.pop(session_id, None)
        others = set(holders.values()) - {address}
        holders[session_id] = address
        until = token.until + 60  # as Redis: a minute late
        if self._token_until.get(token.jti) != until:
            self._token_until[token.jti] = until
            heapq.heappush(heap, (until, token.jti))
            if len(heap) > 4 * len(self._token_until) + 1024:
                self._compact_tokens()
        return sorted({*others, address}) if others else []

    def _compact_tokens(self) -> None:
        """A token let go of (its sessions ended) leaves its entry in the heap until its
        expiry, up to a day: one per login, which a login-and-drop loop piled up (``make
        bench``: dropped session memory). Rebuilt without them when they outnumber the live."""
        live = self._token_until
        self._token_heap = [(u, jti) for u, jti in self._token_heap if live.get(jti) == u]
        heapq.heapify(self._token_heap)

    def _drop_token(self, jti: str, session_id: str | None) -> None:
        holders = self._tokens.get(jti, {})
        if session_id is not None:
            holders.pop(session_id, None)
        if session_id is None or not holders:
            self._tokens.pop(jti, None)
            self._token_until.pop(jti, None)

    async def unregister(self, principal: str, session_id: str, jti: str | None = None) -> None:
        if jti is not None:
            self._drop_token(jti, session_id)
        held = self._regs.get(principal)
        if held is not None:
            held.pop(session_id, None)
            if not held:
                del self._regs[principal]

    async def registrations(self, principal: str) -> list[Registration]:
        return sorted(self._regs.get(principal, {}).values(), key=seniority)

    async def registrations_of_connection(self, connection_id: str) -> list[Registration]:
        return [r for r in await self.all_registrations() if r.connection_id == connection_id]

    async def all_registrations(self) -> list[Registration]:
        return [r for held in self._regs.values() for r in held.values()]

    async def put_node_report(self, report: dict[str, Any], ttl: float) -> None:
        self._reports[str(report.get("node_id", self.node_id))] = (time.monotonic() + ttl, report)

    async def node_reports(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [report for until, report in self._reports.values() if until > now]

    async def keep_session(self, sessid: str, record: dict[str, Any], ttl: float) -> None:
        self._sessions[sessid] = record  # one process: its sessions die with it anyway

    async def session_record(self, sessid: str) -> tuple[dict[str, Any], bool] | None:
        record = self._sessions.get(sessid)
        return None if record is None else (record, True)

    async def drop_session(self, sessid: str) -> None:
        self._sessions.pop(sessid, None)

    async def sweep_sessions(self, linger: float) -> int:
        return 0  # one node: every record is its own, and dies with it

    async def note_calls(self, sessid: str, calls: SessionCalls, ttl: float) -> None:
        now = time.monotonic()
        if len(self._calls) > MAX_NOTED:
            self._calls = {k: v for k, v in self._calls.items() if v[0] > now}
        before = self._calls.get(sessid)
        ids = calls.call_ids | before[1].call_ids if before is not None else calls.call_ids
        merged = SessionCalls(calls.credential_id, calls.connection_id, ids)
        self._calls[sessid] = (now + ttl, merged)

    async def calls_of(self, sessid: str) -> SessionCalls | None:
        found = self._calls.get(sessid)
        return found[1] if found is not None and found[0] > time.monotonic() else None

    async def node_alive(self, node_id: str) -> bool:
        return node_id == self.node_id

    async def take_slot(self, key: str, member: str, limit: int, ttl: float, now: float) -> bool:
        held = {m: until for m, until in self._slots.get(key, {}).items() if until > now}
        if len(held) >= limit and member not in held:
            self._slots[key] = held
            return False
        held[member] = now + ttl
        self._slots[key] = held
        return True

    async def free_slot(self, key: str, member: str) -> None:
        self._slots.get(key, {}).pop(member, None)
