"""The control plane: connections, credentials, tokens, keys, assistants, trunks, numbers.

REST handlers and CLI commands are thin wrappers around these methods, so both enforce the
same rules. Every change that must reach live sessions is written to the store first, then
published on the bus.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog

from voxgate.auth.keyring import KeyRing, Sealer
from voxgate.auth.passwords import Passwords
from voxgate.auth.tokens import TokenClaims, mint
from voxgate.auth.turn import IceConfig
from voxgate.bus.base import Bus, BusUnavailable, Changed, Revoked
from voxgate.domain import ids
from voxgate.domain.errors import CredentialExpired, NotFound, ValidationFailed
from voxgate.domain.principals import Principal
from voxgate.domain.records import Connection, Credential, CredentialStatus, Page, SigningKey
from voxgate.domain.timeutil import from_epoch, parse_instant, spoken, utcnow
from voxgate.domain.webhook_targets import WebhookTargets
from voxgate.services.apikeys import ApiKeys
from voxgate.services.assistants import Assistants
from voxgate.services.audit import AuditLog
from voxgate.services.cache import STALE_AFTER, TtlCache
from voxgate.services.numbers import Numbers
from voxgate.services.schemas import (
    CONNECTION_DEFAULTS,
    ConnectionCreate,
    ConnectionUpdate,
    CredentialCreate,
    CredentialUpdate,
    deep_merge,
)
from voxgate.services.sip_secrets import SipSecrets
from voxgate.services.trunks import Trunks
from voxgate.store.base import ConnectionFilter, CredentialFilter, Store

__all__ = ["ControlPlane"]

log = structlog.get_logger("voxgate.control")

DEFAULT_CREDENTIAL_LIFETIME = timedelta(days=365 * 22)


class ControlPlane:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        sealer: Sealer,
        passwords: Passwords | None = None,
        ice: IceConfig | None = None,
        realm: str = "voxgate",
        webhook_targets: WebhookTargets | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.sealer = sealer
        self.passwords = passwords or Passwords()
        self.ice = ice or IceConfig((), (), None, None)
        self.webhook_targets = webhook_targets or WebhookTargets()  # where webhooks may go
        self.secrets = SipSecrets(self.passwords, sealer, realm)  # the SIP realm: HA1s use it
        self.ring = KeyRing({}, None)
        self.audit_log = AuditLog(store)
        self._mint_cache = TtlCache(self.get_credential, STALE_AFTER)
        self.assistants = Assistants(store)
        self.api_keys = ApiKeys(store)
        self.trunks, self.numbers = Trunks(store, sealer), Numbers(store)  # the phone network
        # Caches elsewhere in this process (the login cache) drop entries when we write.
        self.on_change: list[Callable[[list[str], list[str]], None]] = []

    # -- keys ------------------------------------------------------------------------------
    async def load_keys(self) -> KeyRing:
        """Loads (and on first start creates) the signing key ring."""
        keys = await self.store.list_signing_keys()
        if not any(k.retired_at is None for k in keys):
            await self.rotate_signing_key()
            keys = await self.store.list_signing_keys()
        opened = [replace(k, secret=self.sealer.open(k.secret, k.kid)) for k in keys]
        self.ring = KeyRing.from_keys(opened)
        return self.ring

    async def rotate_signing_key(self) -> str:
        kid = ids.new_kid()
        secret = secrets.token_bytes(64)
        await self.store.add_signing_key(
            SigningKey(kid, self.sealer.seal(secret, kid), utcnow(), None)
        )
        return kid

    async def retire_signing_key(self, kid: str) -> None:
        if not await self.store.retire_signing_key(kid, utcnow()):
            raise NotFound("No active signing key with that kid")

    # -- connections -----------------------------------------------------------------------
    async def create_connection(self, body: ConnectionCreate) -> tuple[Connection, str]:
        """Returns the connection and its clear password, which only the create response shows."""
        fields = body.model_dump(exclude_unset=True, exclude_none=False)
        await self.trunks.check_outbound(fields)
        await self.webhook_targets.check_settings(fields)
        user_name = fields.pop("user_name", None) or await self._free_user_name()
        password = fields.pop("password", None) or ids.new_sip_password()
        name = fields.pop("connection_name")
        active = fields.pop("active", None)
        now, conn_id = utcnow(), ids.new_connection_id()
        conn = Connection(
            id=conn_id,
            connection_name=name,
            user_name=user_name,
            active=True if active is None else bool(active),
            settings=deep_merge(CONNECTION_DEFAULTS, fields),
            created_at=now,
            updated_at=now,
            **self.secrets.connection(conn_id, user_name, password),
        )
        await self.store.add_connection(conn)
        return conn, password

    async def _free_user_name(self) -> str:
        while True:
            candidate = "user" + ids.new_sip_password()[:12]
            if await self.store.connection_by_user_name(candidate) is None:
                return candidate

    async def get_connection(self, conn_id: str) -> Connection:
        conn = await self.store.get_connection(conn_id)
        if conn is None:
            raise NotFound("The requested resource or URL could not be found.", pointer="/")
        return conn

    async def list_connections(
        self, flt: ConnectionFilter, number: int, size: int
    ) -> Page[Connection]:
        return await self.store.list_connections(flt, number, size)

    async def update_connection(
        self, conn_id: str, body: ConnectionUpdate
    ) -> tuple[Connection, str | None]:
        conn = await self.get_connection(conn_id)
        fields = body.model_dump(exclude_unset=True)
        await self.trunks.check_outbound(fields)
        await self.webhook_targets.check_settings(fields)
        changes: dict[str, Any] = {"updated_at": utcnow()}
        password = fields.pop("password", None)
        for key in ("connection_name", "user_name", "active"):
            if key in fields and fields[key] is not None:
                changes[key] = fields.pop(key)
            fields.pop(key, None)
        user_name = changes.get("user_name", conn.user_name)
        if password is not None:
            changes.update(self.secrets.connection(conn_id, user_name, password))
        elif user_name != conn.user_name:
            changes["digest"] = None  # HA1 holds the user name: a new one needs the password
        changes["settings"] = deep_merge(conn.settings, fields)
        updated = await self.store.update_connection(conn_id, **changes)
        await self._changed_everywhere([], [conn_id])
        if updated is None:
            raise NotFound(pointer="/")
        if conn.active and not updated.active:
            cred_ids = await self.store.credential_ids_of_connection(conn_id)
            await self.revoke("connection deactivated", cred_ids, [conn_id], cut_off=True)
        elif password is not None or (
            "user_name" in changes and changes["user_name"] != conn.user_name
        ):
            # Only password logins of the connection end; its credentials are untouched.
            await self.revoke("connection password changed", [], [conn_id])
        return updated, password

    async def delete_connection(self, conn_id: str) -> Connection:
        cred_ids = await self.store.credential_ids_of_connection(conn_id)
        conn = await self.store.delete_connection(conn_id)
        self._changed(cred_ids, [conn_id])
        if conn is None:
            raise NotFound(pointer="/")
        await self.revoke("connection deleted", cred_ids, [conn_id])
        return conn

    # -- credentials -----------------------------------------------------------------------
    async def create_credential(self, body: CredentialCreate) -> tuple[Credential, str]:
        now = utcnow()
        await self._existing_connection(body.connection_id)
        expires_at = self._expiry(body.expires_at, now) or now + DEFAULT_CREDENTIAL_LIFETIME
        password, cred_id, user = ids.new_sip_password(), ids.new_uuid(), ids.new_sip_username()
        cred = Credential(
            id=cred_id,
            connection_id=body.connection_id,
            name=body.name if body.name is not None else spoken(now),
            tag=body.tag,
            sip_username=user,
            status=CredentialStatus.ACTIVE,
            expires_at=expires_at,
            tokens_valid_after=from_epoch(0),
            created_at=now,
            updated_at=now,
            registration_policy=body.registration_policy,
            max_registrations=body.max_registrations,
            **self.secrets.credential(cred_id, user, password),
        )
        await self.store.add_credential(cred)
        return cred, password

    async def _existing_connection(self, conn_id: str) -> None:
        if await self.store.get_connection(conn_id) is None:
            message = "connection_id does not name an existing credential connection"
            raise ValidationFailed(message, pointer="/connection_id")

    @staticmethod
    def _expiry(text: str | None, now: datetime) -> datetime | None:
        if text is None:
            return None
        try:
            value = parse_instant(text)
        except ValueError:
            raise ValidationFailed(
                "Invalid expires_at: expected an ISO-8601 date-time", pointer="/expires_at"
            ) from None
        if value <= now:
            raise ValidationFailed(
                "Invalid expires_at: must be in the future", pointer="/expires_at"
            )
        return value

    async def get_credential(self, cred_id: str) -> Credential:
        cred = await self.store.get_credential(cred_id)
        if cred is None:
            raise NotFound("The requested resource or URL could not be found.", pointer="/")
        return cred

    async def list_credentials(
        self, flt: CredentialFilter, number: int, size: int
    ) -> Page[Credential]:
        return await self.store.list_credentials(replace(flt, now=utcnow()), number, size)

    async def update_credential(self, cred_id: str, body: CredentialUpdate) -> Credential:
        cred = await self.get_credential(cred_id)
        now = utcnow()
        if cred.is_expired(now):
            raise CredentialExpired("can't update credentials in expired status", pointer="/status")
        fields = body.model_dump(exclude_unset=True)
        changes: dict[str, Any] = {"updated_at": now}
        if fields.get("connection_id") is not None:
            await self._existing_connection(fields["connection_id"])
            changes["connection_id"] = fields["connection_id"]
        if "name" in fields and fields["name"] is not None:
            changes["name"] = fields["name"]
        if "tag" in fields:
            changes["tag"] = fields["tag"]
        if fields.get("expires_at") is not None:
            changes["expires_at"] = self._expiry(fields["expires_at"], now)
        for key in ("registration_policy", "max_registrations"):  # null: the connection's
            if key in fields:
                changes[key] = fields[key]
        updated = await self._update_credential(cred_id, **changes)
        if updated is None:
            raise NotFound(pointer="/")
        await self._changed_everywhere([cred_id], [])
        if "connection_id" in changes and changes["connection_id"] != cred.connection_id:
            await self.revoke("credential moved to another connection", [cred_id], [])
        return updated

    async def delete_credential(self, cred_id: str) -> Credential:
        cred = await self.store.delete_credential(cred_id)
        self._changed([cred_id], [])
        if cred is None:
            raise NotFound(pointer="/")
        await self.revoke("credential deleted", [cred_id], [])
        return cred

    async def set_credential_active(self, cred_id: str, active: bool) -> Credential:
        cred = await self.get_credential(cred_id)
        now = utcnow()
        if cred.is_expired(now):
            raise CredentialExpired("can't update credentials in expired status", pointer="/status")
        changes: dict[str, Any] = {"updated_at": now}
        changes["status"] = CredentialStatus.ACTIVE if active else CredentialStatus.INACTIVE
        if not active:  # cut off in the same write: a revocation is on the REST request's path
            changes["tokens_valid_after"] = self._cutoff()
        updated = await self._update_credential(cred_id, **changes)
        if updated is None:
            raise NotFound(pointer="/")
        if not active:
            await self.revoke("credential deactivated", [cred_id], [])
        return updated

    async def revoke_tokens(self, cred_id: str) -> Credential:
        await self.get_credential(cred_id)
        cutoff = self._cutoff()
        updated = await self._update_credential(
            cred_id, tokens_valid_after=cutoff, updated_at=utcnow()
        )
        if updated is None:
            raise NotFound(pointer="/")
        await self.revoke("tokens revoked", [cred_id], [])
        return updated

    async def expire_due(self) -> list[str]:
        """Marks credentials whose time ran out and ends their sessions."""
        expired = await self.store.expire_credentials(utcnow())
        self._changed(expired, [])
        if expired:
            await self.revoke("credential expired", expired, [], expired=True)
        return expired

    async def revoke(
        self,
        reason: str,
        credential_ids: list[str],
        connection_ids: list[str],
        *,
        cut_off: bool = False,
        expired: bool = False,
    ) -> None:
        """The one way a credential's or connection's live sessions are ended: cut off every
        token minted so far (unless the caller did, in the same write as its own change), audit
        each credential, then publish so every node closes the sessions.

        ``expired``: time ran out rather than someone revoking (a call in progress may finish).
        """
        if cut_off:
            cutoff = self._cutoff()
            for cred_id in credential_ids:
                await self._update_credential(cred_id, tokens_valid_after=cutoff)
        kind = "expired" if expired else "revoked"
        for cred_id in credential_ids:
            self.audit_log.record(cred_id, kind, {"reason": reason})
        principals = (
            *map(Principal.connection, connection_ids),
            *map(Principal.credential, credential_ids),
        )
        await self.publish(Revoked(principals, reason, expired=expired))

    async def revoke_token(self, jti: str, cred_id: str, expires: datetime, reason: str) -> None:
        """One token, not its credential (token reuse): refused from now until it would have
        expired anyway, audited, and the sessions holding it end on every node."""
        await self.store.revoke_jti(jti, cred_id, expires, utcnow())
        self.audit_log.record(cred_id, "token_revoked", {"jti": jti, "reason": reason})
        await self.publish(Revoked((), reason, jtis=(jti,)))

    @staticmethod
    def _cutoff() -> datetime:
        """The next whole second: token ``iat`` has second precision, so every token minted
        up to now has ``iat`` below it and every later one is minted at or above it."""
        return from_epoch(math.floor(utcnow().timestamp()) + 1)

    async def _changed_everywhere(self, cred_ids: list[str], conn_ids: list[str]) -> None:
        self._changed(cred_ids, conn_ids)
        await self.publish(Changed(tuple(cred_ids), tuple(conn_ids)))

    async def publish(self, event: Revoked | Changed) -> None:
        """The store already holds the change; if the bus is down, gateways re-check their
        sessions against the store when it returns, so the revocation is not lost."""
        try:
            await self.bus.publish(event)
        except BusUnavailable:
            log.warning("bus unavailable; live sessions will be re-checked on reconnect")

    async def _update_credential(self, cred_id: str, **changes: Any) -> Credential | None:
        updated = await self.store.update_credential(cred_id, **changes)
        self._changed([cred_id], [])
        return updated

    def _changed(self, cred_ids: list[str], conn_ids: list[str]) -> None:
        self._mint_cache.drop(*cred_ids)
        for listener in self.on_change:
            listener(cred_ids, conn_ids)

    # -- tokens ----------------------------------------------------------------------------
    async def mint_token(self, cred_id: str) -> tuple[str, TokenClaims]:
        cred, now = await self.usable_credential(cred_id, "a token"), utcnow()
        token, claims = mint(
            self.ring,
            subject=cred.id,
            now=now.timestamp(),
            not_before_iat=cred.tokens_valid_after.timestamp(),
            expires_at=cred.expires_at.timestamp(),
        )
        details = {"jti": claims.jti, "exp": claims.exp, "kid": claims.kid}
        self.audit_log.record(cred.id, "token_minted", details)
        return token, claims

    async def usable_credential(self, cred_id: str, what: str) -> Credential:
        """The credential ``what`` (a token, ICE servers) is made for, read through a 2 s cache
        (another API node's write can stay unseen that long; a token minted then is still
        refused at login, its iat predating the cut-off); 422 unless active."""
        cred = await self._mint_cache.get(cred_id)
        state = "expired" if cred.is_expired(utcnow()) else cred.status
        if state != CredentialStatus.ACTIVE:
            error = CredentialExpired if state == "expired" else ValidationFailed
            raise error(f"can't create {what} for an {state} credential", pointer="/status")
        return cred
