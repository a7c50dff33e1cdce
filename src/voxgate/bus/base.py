"""The ``Bus`` protocol. The local implementation is in-process; Redis spans nodes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from voxgate.domain.registrations import Admission, Registration, Verdict

__all__ = [
    "Bus",
    "BusEvent",
    "BusUnavailable",
    "Changed",
    "Displaced",
    "Handler",
    "NodeMessage",
    "Registration",
    "Revoked",
    "SessionCalls",
    "TokenHold",
]


@dataclass(frozen=True, slots=True)
class Revoked:
    """Close every live session of these principals: deactivated, deleted, expired, revoked."""

    principals: tuple[str, ...]
    reason: str
    expired: bool = False  # time ran out (grace applies) rather than someone revoked
    jtis: tuple[str, ...] = ()  # single tokens revoked (token reuse): their sessions close


@dataclass(frozen=True, slots=True)
class Displaced:
    """``session_id`` lost its registration to ``by`` (a newer one, past the cap)."""

    session_id: str
    by: Registration


@dataclass(frozen=True, slots=True)
class Changed:
    """These records were written: every node drops what it cached of them, so the next login
    sees the change (a registration policy, a connection's settings) wherever it lands."""

    credential_ids: tuple[str, ...]
    connection_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeMessage:
    """A call signal for one node: offer a call to, or relay a message for, its sessions."""

    node_id: str
    kind: str  # "offer" | "relay" | "fail"
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TokenHold:
    """A session presents the token ``jti`` (expiring at ``until``, epoch seconds); ``previous``:
    the token it presented before, which it no longer holds (a refresh, a reattach)."""

    jti: str
    until: float
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class SessionCalls:
    """Who a session spoke for and the calls it took part in: what its call reports are
    checked against, on whichever node they are posted."""

    credential_id: str | None
    connection_id: str
    call_ids: frozenset[str]


BusEvent = Revoked | Displaced | Changed | NodeMessage
Handler = Callable[[BusEvent], Awaitable[None]]


class BusUnavailable(Exception):
    """Presence or events cannot be reached; callers fail closed."""


class Bus(Protocol):
    node_id: str

    async def start(self) -> None: ...
    async def healthy(self) -> bool: ...
    async def close(self) -> None: ...
    def subscribe(self, handler: Handler) -> None: ...
    async def publish(self, event: BusEvent) -> None: ...
    async def register(
        self, reg: Registration, admission: Admission, token: TokenHold | None = None
    ) -> Verdict:
        """Add ``reg`` to the principal's registrations under ``admission``, atomically
        (``domain.registrations.admit``): refused, or in, with whom it displaced. Admitted with
        a ``token``, the session also holds it (``hold_token``) in the same step, and the
        verdict says whether that is token reuse."""
        ...

    async def hold_token(self, session_id: str, address: str, token: TokenHold) -> list[str]:
        """``session_id`` (at ``address``) presents ``token``: the addresses presenting it when
        sessions at other addresses on live nodes hold it too (token reuse), ours among them;
        else nothing. Kept until the token expires or the session lets go."""
        ...

    async def unregister(self, principal: str, session_id: str, jti: str | None = None) -> None:
        """Withdraw the registration; with ``jti``, the session has ended and lets go of its
        token too (a detached session keeps holding it)."""
        ...

    async def registrations(self, principal: str) -> list[Registration]:
        """The principal's registrations on live nodes, oldest first."""
        ...

    async def keep_session(self, sessid: str, record: dict[str, Any], ttl: float) -> None:
        """What another node needs to resume this session's calls if this node dies."""
        ...

    async def session_record(self, sessid: str) -> tuple[dict[str, Any], bool] | None:
        """The record and whether the node that wrote it is still alive."""
        ...

    async def drop_session(self, sessid: str) -> None: ...
    async def sweep_sessions(self, linger: float) -> int:
        """Records of nodes whose heartbeat is gone are left ``linger`` seconds (for their
        clients to come back) and then dropped: not kept for a day. Returns how many."""
        ...

    async def note_calls(self, sessid: str, calls: SessionCalls, ttl: float) -> None:
        """Keep ``calls`` (merged with those noted before) for ``ttl`` seconds."""
        ...

    async def calls_of(self, sessid: str) -> SessionCalls | None: ...

    async def node_alive(self, node_id: str) -> bool:
        """Is the gateway node ``node_id`` still beating? (Its calls' other legs ask.)"""
        ...

    async def registrations_of_connection(self, connection_id: str) -> list[Registration]: ...
    async def all_registrations(self) -> list[Registration]:
        """Every registration on a live node (the operator console's live view)."""
        ...

    async def put_node_report(self, report: dict[str, Any], ttl: float) -> None:
        """What this node says about itself (sessions, calls, per-minute counts)."""
        ...

    async def node_reports(self) -> list[dict[str, Any]]:
        """The latest report of every node that reported within its ``ttl``."""
        ...

    async def take_slot(self, key: str, member: str, limit: int, ttl: float, now: float) -> bool:
        """Count ``member`` in ``key`` unless ``limit`` members (each held for ``ttl`` seconds,
        or until ``free_slot``) are there already: the cluster-wide count behind a trunk's
        call limits (calls at once, calls per minute)."""
        ...

    async def free_slot(self, key: str, member: str) -> None: ...
