"""Who is connected to this node: sessions by id and by principal, the registrations held
here, recent revocations, and the token each session presents (the bus tells which tokens are
presented from two addresses, on any node).

Plain bookkeeping with no I/O; the gateway keeps it current as sockets open, log in and go.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from voxgate.domain.principals import Principal
from voxgate.gateway.sockets import Socket
from voxgate.rtc.outputs import Close
from voxgate.rtc.session import Session

__all__ = ["Directory", "P", "Peer", "Tracked"]

REVOCATION_MEMORY = 60.0  # seconds a revocation is remembered against racing logins
MAX_REVOCATIONS = 100_000


class Tracked(Protocol):
    session: Session
    principal: str | None
    jti: str | None
    rivals: tuple[str, ...]


P = TypeVar("P", bound=Tracked)


@dataclass(eq=False, slots=True)
class Peer:
    """A session and the socket it is on (none while the session is detached)."""

    ws: Socket | None
    session: Session
    principal: str | None = None
    jti: str | None = None
    closing: Close | None = field(default=None)
    # a list, not a deque: it holds a frame or two at most (MAX_INBOX), and an empty deque
    # costs ~600 bytes against a list's 56 in every idle session
    inbox: list[str | bytes] = field(default_factory=list)
    busy: bool = False
    saved: tuple[tuple[str, str], ...] = ()  # the legs last kept on the bus (handover)
    noted: frozenset[str] = frozenset()  # the call ids last noted on the bus (call reports)
    rivals: tuple[str, ...] = ()  # token reuse the bus reported at registration, unanswered


@dataclass(slots=True)
class Directory(Generic[P]):
    peers: dict[str, P] = field(default_factory=dict)  # sessid -> peer
    by_principal: dict[str, set[P]] = field(default_factory=dict)
    registered: dict[str, P] = field(default_factory=dict)  # sessid -> a peer registered here
    revoked_at: dict[str, float] = field(default_factory=dict)  # principal -> when

    def add(self, peer: P) -> None:
        self.peers[peer.session.sessid] = peer

    def of(self, principal: str) -> list[P]:
        return list(self.by_principal.get(principal, ()))

    def knows(self, peer: P) -> bool:
        """Is ``peer`` still a session here (not forgotten while a login awaited the bus)?"""
        return self.peers.get(peer.session.sessid) is peer

    def track(self, peer: P, principal: str, jti: str | None) -> None:
        """A login of ``peer`` as ``principal``, presenting token ``jti`` (if any)."""
        if not self.knows(peer):
            return  # it ended while its login was checked: nothing to index it under
        if peer.principal is None:
            peer.principal = principal
            self.by_principal.setdefault(principal, set()).add(peer)
        if jti is not None and peer.principal == principal:
            peer.jti = jti

    def note_revoked(self, principals: Iterable[str], now: float) -> None:
        for principal in principals:
            self.revoked_at[principal] = now
        if len(self.revoked_at) > MAX_REVOCATIONS:
            cutoff = now - REVOCATION_MEMORY
            self.revoked_at = {p: t for p, t in self.revoked_at.items() if t > cutoff}

    def revoked_since(self, principal: Principal | str, when: float) -> bool:
        return self.revoked_at.get(principal, 0.0) >= when

    def forget(self, peer: P) -> None:
        self.peers.pop(peer.session.sessid, None)
        if self.registered.get(peer.session.sessid) is peer:
            del self.registered[peer.session.sessid]
        principal = peer.principal
        if principal is not None:
            holders = self.by_principal.get(principal)
            if holders is not None:
                holders.discard(peer)
                if not holders:
                    del self.by_principal[principal]
