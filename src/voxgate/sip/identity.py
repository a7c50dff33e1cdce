"""Who a SIP user name speaks for: a telephony credential (its ``sip_username``) or a
credential connection (its ``user_name``), with the rule its registrations follow, looked up
the way the gateway's password logins do it and cached like its token logins."""

from __future__ import annotations

from dataclasses import dataclass

from voxgate.domain.principals import Principal
from voxgate.domain.records import Connection, Credential, CredentialStatus
from voxgate.domain.registrations import Admission
from voxgate.domain.timeutil import from_epoch, to_epoch
from voxgate.services.cache import TtlCache
from voxgate.services.logins import CONNECTION_LOGIN, admission
from voxgate.store.base import Store

__all__ = ["Identities", "SipIdentity"]

MAX_USER = 128


@dataclass(frozen=True, slots=True)
class SipIdentity:
    principal: str
    connection: Connection
    credential: Credential | None
    user: str
    admission: Admission

    @property
    def record(self) -> Credential | Connection:
        return self.credential if self.credential is not None else self.connection

    @property
    def credential_id(self) -> str | None:
        return self.credential.id if self.credential is not None else None

    def expires_at(self) -> float | None:
        return to_epoch(self.credential.expires_at) if self.credential is not None else None

    def refusal(self, now: float) -> str | None:
        """Why this identity may not register or call now (a reason code), or None."""
        if self.credential is not None and (
            self.credential.effective_status(from_epoch(now)) != CredentialStatus.ACTIVE
        ):
            return "credential_not_active"
        return None if self.connection.active else "connection_not_active"

    @property
    def sip_uri_calling(self) -> str:
        return str(self.connection.settings.get("sip_uri_calling_preference") or "disabled")


class Identities:
    def __init__(self, store: Store, ttl: float = 2.0) -> None:
        self.store = store
        self._cache: TtlCache[SipIdentity | None] = TtlCache(self._load, ttl)

    async def get(self, user: str) -> SipIdentity | None:
        if not user or len(user) > MAX_USER:
            return None
        return await self._cache.get(user)

    def clear(self) -> None:
        """A record changed somewhere (a bus event): read them all again."""
        self._cache.clear()

    async def _load(self, user: str) -> SipIdentity | None:
        cred = await self.store.credential_by_sip_username(user)
        if cred is not None:
            conn = await self.store.get_connection(cred.connection_id)
            if conn is None:
                return None
            return SipIdentity(
                Principal.credential(cred.id), conn, cred, cred.sip_username, admission(cred, conn)
            )
        conn = await self.store.connection_by_user_name(user)
        if conn is None:
            return None
        return SipIdentity(
            Principal.connection(conn.id), conn, None, conn.user_name, CONNECTION_LOGIN
        )
