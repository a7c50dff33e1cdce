"""Who may log in to the gateway: token, password and anonymous logins become a ``Grant``.

The gateway's sans-I/O core parses a login's params into a typed value; its adapter passes the
parts here and gets a grant or a ``LoginFailed`` back. Failure messages never say whether a
user exists.
"""

from __future__ import annotations

import time

from voxgate.auth.throttle import LoginThrottle, login_keys
from voxgate.auth.tokens import verify_signature
from voxgate.domain.errors import LoginFailed
from voxgate.domain.principals import Principal
from voxgate.domain.records import Connection, Credential, CredentialStatus, Grant
from voxgate.domain.registrations import Admission, Policy, TokenReuse
from voxgate.domain.timeutil import from_epoch, to_epoch
from voxgate.services.cache import STALE_AFTER, TtlCache
from voxgate.services.control import ControlPlane

__all__ = ["CONNECTION_LOGIN", "Grant", "LoginService", "admission"]

KEY_RELOAD_INTERVAL = 5.0
# A connection's own user name/password is shared by every device set up with it: as on
# Telnyx, all of them ring (parallel forking), up to the ring_all cap.
CONNECTION_LOGIN = Admission.resolve(None, None, default=Policy.RING_ALL)


def admission(cred: Credential, conn: Connection) -> Admission:
    """The credential's own rule, else its connection's; the cap likewise, else the policy's."""
    policy = cred.registration_policy or conn.settings.get("registration_policy")
    cap = cred.max_registrations
    if cap is None:
        cap = conn.settings.get("max_registrations")
    return Admission.resolve(policy, cap)


class LoginService:
    def __init__(
        self,
        control: ControlPlane,
        throttle: LoginThrottle | None = None,
        cache_ttl: float = STALE_AFTER,
    ) -> None:
        self.control = control
        self.throttle = throttle or LoginThrottle()
        self._last_reload = 0.0
        # Token logins read the credential and its connection; a short cache keeps them off the
        # store. Revocation events invalidate entries at once; the TTL bounds staleness if an
        # event is ever missed (and missed events are re-checked when the bus comes back).
        self._creds = TtlCache(control.store.get_credential, cache_ttl)
        self._conns = TtlCache(control.store.get_connection, cache_ttl)
        control.on_change.append(self.invalidate)
        # Tokens revoked one by one (token reuse): a handful at most, each until its exp.
        # The bus adds one at once (``refuse_tokens``); a reload within ``cache_ttl`` covers
        # a node that started, or missed the event, after the revocation: the same bound as a
        # revoked credential's.
        self._revoked_jtis: set[str] = set()
        self._jtis_ttl = cache_ttl
        self._jtis_loaded = -cache_ttl

    def invalidate(self, credential_ids: list[str], connection_ids: list[str]) -> None:
        self._creds.drop(*credential_ids)
        self._conns.drop(*connection_ids)

    async def token_login(self, token: str, now: float) -> Grant:
        ring = self.control.ring
        try:
            claims = verify_signature(ring, token, now)
        except LoginFailed:
            if await self._maybe_reload_keys():
                claims = verify_signature(self.control.ring, token, now)
            else:
                raise
        cred = await self._creds.get(claims.sub)
        if cred is None:
            raise LoginFailed("JWT token authentication failed")
        if cred.effective_status(from_epoch(now)) != CredentialStatus.ACTIVE:
            raise LoginFailed("Credential is not active", subject=cred.id)
        if claims.iat < to_epoch(cred.tokens_valid_after) or await self._jti_revoked(claims.jti):
            raise LoginFailed("JWT token has been revoked", subject=cred.id)
        conn = await self._conns.get(cred.connection_id)
        if conn is None or not conn.active:
            raise LoginFailed("Connection is not active", subject=cred.id)
        return Grant(
            "token",
            Principal.credential(cred.id),
            cred.connection_id,
            cred.id,
            cred.sip_username,
            float(min(claims.exp, to_epoch(cred.expires_at))),
            jti=claims.jti,
            issued_at=float(claims.iat),
            admission=admission(cred, conn),
            on_token_reuse=TokenReuse(conn.settings.get("on_token_reuse") or TokenReuse.AUDIT),
        )

    async def password_login(self, login: str, password: str, address: str, now: float) -> Grant:
        if not login or not password or len(login) > 128 or len(password) > 1024:
            raise LoginFailed("Login Incorrect")  # the core checks this too; defence in depth
        keys = login_keys(login, address)
        if self.throttle.retry_after(keys, now) > 0:
            # Counted, so hammering through the back-off reaches the lockout; no hashing done.
            self.throttle.failure(keys, now)
            raise LoginFailed("Too many failed logins, try again later")
        store = self.control.store
        cred = await store.credential_by_sip_username(login)
        conn = None if cred is not None else await store.connection_by_user_name(login)
        stored_hash = cred.sip_password_hash if cred else conn.password_hash if conn else None
        if not self.control.passwords.verify(stored_hash, password):
            self.throttle.failure(keys, now)
            raise LoginFailed("Login Incorrect", subject=cred.id if cred else None)
        if cred is not None:
            owner = await store.get_connection(cred.connection_id)
            if (
                cred.effective_status(from_epoch(now)) != CredentialStatus.ACTIVE
                or owner is None
                or not owner.active
            ):
                raise LoginFailed("Login Incorrect", subject=cred.id)
            self.throttle.success(keys)
            await self._keep_digest(cred, password)
            return Grant(
                "password",
                Principal.credential(cred.id),
                cred.connection_id,
                cred.id,
                cred.sip_username,
                to_epoch(cred.expires_at),
                admission=admission(cred, owner),
            )
        assert conn is not None
        if not conn.active:
            raise LoginFailed("Login Incorrect")
        self.throttle.success(keys)
        await self._keep_digest(conn, password)
        return Grant(
            "password",
            Principal.connection(conn.id),
            conn.id,
            None,
            conn.user_name,
            None,
            admission=CONNECTION_LOGIN,
        )

    async def _keep_digest(self, record: Credential | Connection, password: str) -> None:
        """A record from before SIP digest secrets were kept (or from another realm) gets
        one at its first password login: the password was just proven, so its phones can
        register from now on without a reset."""
        secrets = self.control.secrets
        user = record.sip_username if isinstance(record, Credential) else record.user_name
        if secrets.ha1(record, user, "MD5") is not None:
            return
        digest = secrets.digest(record.id, user, password)
        try:
            if isinstance(record, Credential):
                await self.control.store.update_credential(record.id, sip_digest=digest)
            else:
                await self.control.store.update_connection(record.id, digest=digest)
        except Exception:  # the login stands; the next one tries again
            return

    async def anonymous_login(self, assistant_id: str, conversation_id: str | None) -> Grant:
        assistant = await self.control.store.get_assistant(assistant_id)
        if assistant is None:
            raise LoginFailed("Unknown AI assistant")
        return Grant(
            "anonymous",
            Principal.assistant(assistant.id),
            "",
            None,
            "",
            None,
            assistant_id=assistant.id,
            conversation_id=conversation_id,
        )

    async def still_valid(self, grant: Grant, now: float) -> bool:
        """Re-check a live session's grant against the store (after missed revocations)."""
        store = self.control.store
        if grant.credential_id is not None:
            cred = await store.get_credential(grant.credential_id)
            if cred is None or cred.effective_status(from_epoch(now)) != CredentialStatus.ACTIVE:
                return False
            if grant.issued_at is not None and grant.issued_at < to_epoch(cred.tokens_valid_after):
                return False
        if grant.jti is not None and await self._jti_revoked(grant.jti):
            return False  # revoked on its own (token reuse) while we were not listening
        conn = await store.get_connection(grant.connection_id)
        return conn is not None and conn.active

    async def after_missed_events(self) -> set[str]:
        """Events may have been lost (the bus was down, or failed over): forget every cached
        record and read the single-token revocations again now. The revoked jtis."""
        self._creds.clear()
        self._conns.clear()
        self._jtis_loaded = -self._jtis_ttl  # stale until the read below succeeds
        self._revoked_jtis = await self.control.store.revoked_jtis(from_epoch(time.time()))
        self._jtis_loaded = time.monotonic()
        return set(self._revoked_jtis)

    def refuse_tokens(self, jtis: tuple[str, ...]) -> None:
        self._revoked_jtis.update(jtis)

    async def _jti_revoked(self, jti: str) -> bool:
        clock = time.monotonic()
        if clock - self._jtis_loaded >= self._jtis_ttl:
            self._jtis_loaded = clock
            self._revoked_jtis = await self.control.store.revoked_jtis(from_epoch(time.time()))
        return jti in self._revoked_jtis

    async def _maybe_reload_keys(self) -> bool:
        """A token from a key rotated in by another process: reload the ring, at most every 5 s."""
        now = time.monotonic()
        if now - self._last_reload < KEY_RELOAD_INTERVAL:
            return False
        self._last_reload = now
        before = set(self.control.ring.keys)
        await self.control.load_keys()
        return set(self.control.ring.keys) != before
