"""A password's two stored forms: the argon2 hash that WebRTC password logins verify, and the
sealed digest secret that SIP REGISTERs are checked against (``auth/digest.py``). Every place
that sets a password goes through here, so the two never disagree."""

from __future__ import annotations

from typing import Any, Protocol

from voxgate.auth.digest import DigestSeal, DigestSecret
from voxgate.auth.keyring import Sealer
from voxgate.auth.passwords import Passwords
from voxgate.domain import ids
from voxgate.domain.errors import NotFound
from voxgate.domain.records import Connection, Credential
from voxgate.domain.timeutil import utcnow
from voxgate.services.audit import AuditLog
from voxgate.store.base import Store

__all__ = ["SipSecrets", "reset_password"]


class SipSecrets:
    def __init__(self, passwords: Passwords, sealer: Sealer, realm: str) -> None:
        self.passwords = passwords
        self.seal = DigestSeal(sealer)
        self.realm = realm

    def credential(self, cred_id: str, user: str, password: str) -> dict[str, Any]:
        """The columns a credential's password is stored in."""
        return {
            "sip_password_hash": self.passwords.hash(password),
            "sip_digest": self.digest(cred_id, user, password),
        }

    def connection(self, conn_id: str, user: str, password: str) -> dict[str, Any]:
        return {
            "password_hash": self.passwords.hash(password),
            "digest": self.digest(conn_id, user, password),
        }

    def digest(self, record_id: str, user: str, password: str) -> bytes:
        return self.seal.seal(record_id, DigestSecret.of(user, self.realm, password))

    def ha1(self, record: Credential | Connection | None, user: str, algorithm: str) -> str | None:
        """The record's HA1 for this realm and user name; None when it has none that fits
        (written before digests were kept, or under another realm or user name)."""
        if isinstance(record, Credential):
            record_id, blob = record.id, record.sip_digest
        elif isinstance(record, Connection):
            record_id, blob = record.id, record.digest
        else:
            return None
        secret = self.seal.open(record_id, blob)
        if secret is None or secret.realm != self.realm or secret.user != user:
            return None
        return secret.ha1.get(algorithm)

    def decoy(self, user: str, algorithm: str) -> str:
        return self.seal.decoy(user, self.realm, algorithm)


class Plane(Protocol):
    """What a password reset needs of the control plane."""

    store: Store
    secrets: SipSecrets
    audit_log: AuditLog

    async def usable_credential(self, cred_id: str, what: str) -> Credential: ...
    async def revoke(
        self, reason: str, credential_ids: list[str], connection_ids: list[str]
    ) -> None: ...


async def reset_password(plane: Plane, cred_id: str) -> tuple[Credential, str]:
    """A new SIP password for a credential (both forms), shown once. Its live sessions and SIP
    registrations end, since a device may have held the old password; its tokens stay valid."""
    cred = await plane.usable_credential(cred_id, "a password")
    password = ids.new_sip_password()
    changes = plane.secrets.credential(cred.id, cred.sip_username, password)
    updated = await plane.store.update_credential(cred.id, updated_at=utcnow(), **changes)
    if updated is None:
        raise NotFound(pointer="/")
    plane.audit_log.record(cred.id, "password_reset", {})
    await plane.revoke("credential password reset", [cred.id], [])
    return updated, password
