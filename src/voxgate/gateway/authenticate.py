"""A core's ``Authenticate`` becomes a grant or a refusal.

Around the login service: fail closed when presence is down, refuse a login that raced a
revocation or that its credential's first_wins policy keeps out, count every outcome; and
(``track``) answer a token presented from two addresses, which the bus notices across nodes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Generic

import structlog

from voxgate import metrics
from voxgate.auth.turn import IceConfig
from voxgate.bus.base import Bus
from voxgate.domain.errors import LoginFailed
from voxgate.domain.records import Grant
from voxgate.gateway.directory import Directory, P
from voxgate.gateway.presence import Presence
from voxgate.rtc.logins import AnonymousLogin, LoginParams, PasswordLogin, TokenLogin
from voxgate.rtc.outputs import Authenticate
from voxgate.rtc.session import LoginOutcome
from voxgate.services.audit import AuditLog
from voxgate.services.logins import LoginService

__all__ = ["Authenticator"]

log = structlog.get_logger("voxgate.gateway")

ANONYMOUS_TURN_TTL = 3600.0
_METHODS: dict[type, str] = {
    TokenLogin: "token",
    PasswordLogin: "password",
    AnonymousLogin: "anonymous",
}


@dataclass(slots=True)
class Authenticator(Generic[P]):
    bus: Bus
    logins: LoginService
    directory: Directory[P]
    audit: AuditLog
    ice: IceConfig
    presence: Presence[P]
    on_reuse: Callable[[Grant, list[str]], Awaitable[None]]  # what the connection asked for

    async def __call__(self, peer: P, req: Authenticate) -> LoginOutcome:
        login, now = req.login, time.time()
        method = _METHODS[type(login)]
        if not req.refresh and method != "anonymous" and not await self.bus.healthy():
            metrics.LOGINS.labels(method, "unavailable").inc()
            return LoginFailed("Presence service unavailable; try again shortly")  # fail closed
        try:
            grant = await self._verify(login, peer.session.address, now)
        except LoginFailed as exc:
            return _failed(exc, method, peer.session.address)
        except Exception as exc:  # store or bus down: fail closed, say so plainly
            log.warning("login check unavailable", error=type(exc).__name__)
            metrics.LOGINS.labels(method, "unavailable").inc()
            return LoginFailed("Login service temporarily unavailable")
        if self.directory.revoked_since(grant.principal, now):
            # a revocation arrived while we checked (maybe against a cached record)
            raced = LoginFailed("Credential was revoked", subject=grant.credential_id)
            return _failed(raced, method, peer.session.address)
        holder = None if req.refresh else await self.presence.holder(grant, req.resume)
        if holder is not None:
            detail = (
                f"Credential is already registered by {holder.user_agent or 'another device'}"
                " (registration_policy first_wins)"
            )
            refused = LoginFailed(detail, subject=grant.credential_id, final=True)
            return _failed(refused, method, peer.session.address)
        metrics.LOGINS.labels(method, "ok").inc()
        if req.refresh:
            metrics.REFRESHES.inc()
        else:
            metrics.SESSIONS.labels(grant.method).inc()
        return self._with_ice(grant, now)

    async def track(self, peer: P, grant: Grant, *, live: bool = True) -> None:
        """``peer`` now speaks for ``grant`` (a login, a refresh, or a reattach once the session
        moved to its new socket). The same token from two sessions at two addresses, on any
        nodes, is token reuse: audited, then answered as the connection says (``on_reuse``).

        The bus found it when the session registered (``Presence.claim``) and this answers it
        only now, once the login's reply and outputs are out; a refresh presents a new token
        without registering, so it is held here. ``live``: the socket is not being closed."""
        reused, peer.rivals = peer.rivals, ()
        if live and grant.jti is not None and grant.jti != peer.jti:
            reused = await self.presence.hold(peer, grant)
        self.directory.track(peer, grant.principal, grant.jti)
        if reused and grant.credential_id:
            addresses = list(reused)
            action = grant.on_token_reuse.value
            details = {"jti": grant.jti, "addresses": addresses, "action": action}
            self.audit.record(grant.credential_id, "token_reuse", details)
            await self.on_reuse(grant, addresses)

    def _with_ice(self, grant: Grant, now: float) -> Grant:
        """The login's ICE servers: TURN credentials named after the identity (coturn's logs
        show who relayed), expiring with the token; an anonymous session's within the hour,
        since it only calls its assistant."""
        if not self.ice.configured:
            return grant
        limit = now + ANONYMOUS_TURN_TTL if grant.anonymous else grant.expires_at
        return replace(grant, ice=self.ice.issue(grant.principal, now, limit))

    async def _verify(self, login: LoginParams, address: str, now: float) -> Grant:
        if isinstance(login, TokenLogin):
            return await self.logins.token_login(login.token, now)
        if isinstance(login, PasswordLogin):
            return await self.logins.password_login(login.login, login.password, address, now)
        return await self.logins.anonymous_login(login.assistant_id, login.conversation_id)


def _failed(exc: LoginFailed, method: str, address: str) -> LoginFailed:
    """Count and log a refused login: one line with a stable reason code (from the message,
    which never holds the token or password), the method, the client's address and the
    credential if known."""
    metrics.LOGINS.labels(method, "failed").inc()
    reason = re.sub(r"[^a-z]+", "_", (exc.detail or "login incorrect").lower()).strip("_")[:48]
    log.info(
        "login failed",
        reason=reason,
        method=method,
        address=address,
        credential_id=exc.subject,
    )
    return exc
