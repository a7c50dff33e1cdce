"""Sessions whose socket dropped: which this node keeps for their client, how many of one
credential it keeps, and how a reconnecting client resumes one.

The core ends a session without a call when its socket drops (the SDK keeps only the calls
listed in ``reattached_sessions``, so there is nothing to reattach); one with a call waits
``--reattach-window`` seconds, detached. A client dropping sessions with calls in a loop could
still fill the node, so each credential keeps at most ``--max-detached-per-credential`` here
(an anonymous session: its assistant per client address), the oldest let go first (its calls
end as if its window were over). The count is the ``voxgate_detached_sessions`` gauge.
"""

from __future__ import annotations

import time
from typing import Protocol

from voxgate import metrics
from voxgate.domain.records import Grant
from voxgate.gateway.authenticate import Authenticator
from voxgate.gateway.directory import Directory, Peer
from voxgate.gateway.timers import Alarm
from voxgate.rtc.frames import Id
from voxgate.rtc.outputs import Close, CloseCode, Output
from voxgate.rtc.states import State

__all__ = ["Detached", "ReattachHost"]


class ReattachHost(Protocol):
    """The gateway as its detached sessions see it."""

    directory: Directory[Peer]
    timers: Alarm[Peer]
    authenticate: Authenticator[Peer]

    async def apply(self, peer: Peer, outs: list[Output]) -> None: ...
    def drain(self, peer: Peer) -> None: ...


class Detached:
    def __init__(self, host: ReattachHost, cap: int) -> None:
        self.host = host
        self.cap = max(1, cap)
        # principal -> sessid -> peer, in the order they detached (the oldest first)
        self._held: dict[str, dict[str, Peer]] = {}
        # sessid -> the key it is held under: an anonymous session's includes its address,
        # which a reattach from elsewhere changes before it is dropped from here
        self._keys: dict[str, str] = {}
        self.count = 0

    async def noted(self, peer: Peer) -> None:
        """After anything happened to ``peer``: held while it is detached (letting go of its
        credential's oldest beyond the cap), out of the count once it is not."""
        session = peer.session
        if session.state is not State.DETACHED or not self.host.directory.knows(peer):
            self.drop(peer)
            return
        if session.sessid in self._keys:
            return
        key = self._keys[session.sessid] = _holder(peer)
        held = self._held.setdefault(key, {})
        held[session.sessid] = peer
        self.count += 1
        metrics.DETACHED.inc()
        for _ in range(len(held) - self.cap):
            if not held:
                break
            oldest = next(iter(held.values()))
            self.drop(oldest)
            metrics.LIMIT_HITS.labels("detached_per_credential").inc()
            await self.host.apply(oldest, oldest.session.give_up())

    def drop(self, peer: Peer) -> None:
        key = self._keys.get(peer.session.sessid, "")
        held = self._held.get(key)
        if held is None or held.get(peer.session.sessid) is not peer:
            return
        del held[peer.session.sessid], self._keys[peer.session.sessid]
        self.count -= 1
        metrics.DETACHED.dec()
        if not held:
            del self._held[key]

    async def resume(self, fresh: Peer, target: Peer, request_id: Id, grant: Grant) -> None:
        """A reconnecting client resumes ``target`` on the socket ``fresh`` opened: the
        session, its calls and its sessid carry on; the fresh session is dropped unseen. If
        the old socket still looks open (the drop was not noticed yet), it is closed."""
        host, now = self.host, time.time()
        old = target.ws
        if old is not None:
            old.peer, target.ws = None, None
            old.close(CloseCode.RESUMED_ELSEWHERE, "session resumed on a newer connection")
            await host.apply(target, target.session.lost(now, clean=False, takeover=True))
        sock, fresh.ws = fresh.ws, None
        fresh.closing = Close(CloseCode.RESUMED_ELSEWHERE, "merged into a reattached session")
        host.timers.cancel(fresh)
        host.directory.forget(fresh)
        metrics.SESSIONS.labels(grant.method).dec()  # counted as a new login by authenticate
        metrics.REATTACHES.inc()
        target.ws, target.closing, target.inbox = sock, None, fresh.inbox
        if sock is not None:
            sock.peer = target
        outs = target.session.resume(request_id, grant, now, socket=fresh.session)
        await host.apply(target, outs)
        await host.authenticate.track(target, grant)  # at its new address: not a rival
        host.drain(target)


def _holder(peer: Peer) -> str:
    """Whose cap a session counts against: its credential (or connection); an anonymous
    session, whose principal is the assistant every visitor calls, its assistant and address."""
    principal = peer.principal or peer.session.sessid
    return f"{principal}@{peer.session.address}" if principal.startswith("anon:") else principal
