"""Who is connected to this node: sessions by id and by principal, the registrations held
here, recent revocations, and which addresses present the same token.

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


@dataclass(slots=True)
class Directory(Generic[P]):
    peers: dict[str, P] = field(default_factory=dict)  # sessid -> peer
    by_principal: dict[str, set[P]] = field(default_factory=dict)
    registered: dict[str, P] = field(default_factory=dict)  # sessid -> a peer registered here
    revoked_at: dict[str, float] = field(default_factory=dict)  # principal -> when
    jti_addresses: dict[str, set[str]] = field(default_factory=dict)

    def add(self, peer: P) -> None:
        self.peers[peer.session.sessid] = peer

    def of(self, principal: str) -> list[P]:
        return list(self.by_principal.get(principal, ()))

    def track(self, peer: P, principal: str, jti: str | None) -> list[str]:
        """A login of ``peer`` as ``principal`` with token ``jti``. Returns every address
        presenting that token when more than one does (token reuse), else nothing."""
        if peer.principal is None:
            peer.principal = principal
            self.by_principal.setdefault(principal, set()).add(peer)
        if jti is None or peer.principal != principal:
            return []
        # Whatever this session presented before (at whatever address: a reattach moves it)
        # is its own, never a rival: only other sessions count.
        self._drop_jti(peer)
        peer.jti = jti
        holders = self.jti_addresses.setdefault(jti, set())
        address = peer.session.address
        reused = sorted(holders | {address}) if holders - {address} else []
        holders.add(address)
        return reused

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
        self._drop_jti(peer)

    def _drop_jti(self, peer: P) -> None:
        if peer.jti is None:
            return
        others = {
            p.session.address
            for p in self.by_principal.get(peer.principal or "", ())
            if p is not peer and p.jti == peer.jti
        }
        if others:
            self.jti_addresses[peer.jti] = others
        else:
            self.jti_addresses.pop(peer.jti, None)
