"""In-process bus: the embedded default, exact for one process and useless across several."""

from __future__ import annotations

import logging
import time
from typing import Any

from voxgate.bus.base import BusEvent, Handler
from voxgate.domain.registrations import Admission, Registration, Verdict, admit, seniority

__all__ = ["LocalBus"]

log = logging.getLogger(__name__)


class LocalBus:
    def __init__(self, node_id: str = "local") -> None:
        self.node_id = node_id
        self._handlers: list[Handler] = []
        self._regs: dict[str, dict[str, Registration]] = {}  # principal -> sessid -> reg
        self._sessions: dict[str, dict[str, Any]] = {}
        self._reports: dict[str, tuple[float, dict[str, Any]]] = {}  # node -> (until, report)
        self._slots: dict[str, dict[str, float]] = {}  # key -> member -> held until

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

    async def register(self, reg: Registration, admission: Admission) -> Verdict:
        held = self._regs.setdefault(reg.principal, {})
        verdict = admit(list(held.values()), reg, admission)
        if verdict.refused_by is None:
            for gone in verdict.displaced:
                del held[gone.session_id]
            held[reg.session_id] = reg
        return verdict

    async def unregister(self, principal: str, session_id: str) -> None:
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
