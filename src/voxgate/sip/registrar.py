"""voxgate's side of the SIP edge's registrations: the verdicts Kamailio asks for and the SIP
contacts this node's Kamailio holds, kept in the same presence as WebRTC sessions.

Kamailio challenges and checks digests, and keeps the location table; every rule is decided
here, from the same records, throttle and presence the gateway's logins use:

- ``auth``: the HA1 for a user name (a decoy for unknown users and for credentials without a
  digest secret, so both fail exactly like a wrong password), or a refusal while locked out;
- ``auth_failed``: a failed digest counts towards the same per-user and per-address lockout
  as a failed WebRTC login, with the same log line and an audit row;
- ``register``: the credential's state and registration policy (latest_wins, first_wins,
  ring_all, max_registrations) against every registration of the identity, SIP or WebRTC, on
  any node; a refresh of the same contact is not a new device;
- bus events: a displaced or revoked contact of ours is removed from Kamailio at once.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass

import structlog

from voxgate import metrics
from voxgate.auth.throttle import login_keys
from voxgate.bus.base import Bus, BusEvent, BusUnavailable, Changed, Displaced, Revoked
from voxgate.domain.registrations import Registration
from voxgate.services.audit import AuditLog
from voxgate.services.logins import LoginService
from voxgate.services.sip_secrets import SipSecrets
from voxgate.sip.identity import Identities, SipIdentity
from voxgate.sip.rpc import KamailioRpc, RpcError

__all__ = ["Binding", "Registrar", "SipContact", "Verdict"]

log = structlog.get_logger("voxgate.sip")

TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")
MAX_FIELD = 1024
# A failed digest that says nothing about the password (the client's nonce aged out, or it
# sent no credentials yet) is re-challenged without counting towards the lockout.
HARMLESS = {"nonce_stale", "no_credentials"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What Kamailio replies (or does): ``status`` 200 lets it go on, with ``body`` as data
    (an HA1); any other is the SIP status to answer, with ``body`` as the reason phrase."""

    status: int
    body: str = ""


@dataclass(frozen=True, slots=True)
class SipContact:
    """A contact as Kamailio reports it (a REGISTER, or its table after a restart)."""

    user: str
    contact: str
    transport: str
    address: str
    port: int
    user_agent: str
    instance: str = ""

    @property
    def binding_id(self) -> str:
        return binding_id(self.user, self.contact, self.instance)


@dataclass(frozen=True, slots=True)
class Binding:
    """One SIP contact held by this node's Kamailio, as presence knows it."""

    reg: Registration
    aor: str
    contact_expires: float  # when Kamailio drops the contact unless it is refreshed


def binding_id(user: str, contact: str, instance: str) -> str:
    """Stable for one device: its ``+sip.instance`` when it sends one (RFC 5626), else its
    contact. A re-REGISTER of the same device is a refresh, not a new registration."""
    key = f"{user}\n{instance or contact}".encode()
    return "sip-" + hashlib.sha256(key).hexdigest()[:24]


class Registrar:
    def __init__(
        self,
        logins: LoginService,
        bus: Bus,
        audit: AuditLog,
        rpc: KamailioRpc,
        *,
        algorithm: str = "MD5",
    ) -> None:
        self.logins = logins
        self.bus = bus
        self.audit = audit
        self.rpc = rpc
        self.algorithm = algorithm
        self.node_id = bus.node_id
        self.identities = Identities(logins.control.store)
        self.bindings: dict[str, Binding] = {}

    @property
    def secrets(self) -> SipSecrets:
        return self.logins.control.secrets

    # -- what Kamailio asks ----------------------------------------------------------------
    async def auth(self, user: str, address: str, now: float) -> Verdict:
        keys = login_keys(user, address)
        throttle = self.logins.throttle
        if throttle.retry_after(keys, now) > 0:
            throttle.failure(keys, now)  # hammering through the back-off reaches the lockout
            return Verdict(403, "Too many failed logins, try again later")
        ident = await self.identities.get(user)
        record = ident.record if ident is not None else None
        ha1 = self.secrets.ha1(record, user, self.algorithm)
        return Verdict(200, ha1 or self.secrets.decoy(user, self.algorithm))

    async def auth_failed(
        self, user: str, address: str, transport: str, reason: str, now: float
    ) -> Verdict:
        ident = await self.identities.get(user)
        if reason in HARMLESS:
            return Verdict(200)
        if ident is not None and self.secrets.ha1(ident.record, user, self.algorithm) is None:
            reason = "no_digest_secret"  # a record from before digests were kept
            log.warning(
                "SIP digest secret missing: reset the credential's password "
                "(POST /v2/telephony_credentials/{id}/actions/reset_password)",
                credential_id=ident.credential_id,
                connection_id=ident.connection.id,
            )
        keys = login_keys(user, address)
        self.logins.throttle.failure(keys, now)
        self._failed(ident, reason, address, transport)
        if self.logins.throttle.retry_after(keys, now) > 0:
            return Verdict(403, "Too many failed logins, try again later")
        return Verdict(200)

    async def register(self, seen: SipContact, expires: int, now: float) -> Verdict:
        """After Kamailio checked the digest: may this contact register (or unregister)?"""
        user, contact, address, transport = seen.user, seen.contact, seen.address, seen.transport
        ident = await self.identities.get(user)
        if ident is None:  # deleted between the challenge and now
            return Verdict(403, "Forbidden")
        refusal = ident.refusal(now)
        if refusal is not None:
            self._failed(ident, refusal, address, transport)
            return Verdict(403, "Credential is not active")
        self.logins.throttle.success(login_keys(user, address))
        if expires <= 0:
            for bid in self._bindings_of(user, contact, seen.instance):
                await self.drop(bid, "unregistered")
            return Verdict(200)
        bid = seen.binding_id
        old = self.bindings.get(bid)
        reg = self._registration(ident, seen, old.reg.registered_at if old else now)
        try:
            verdict = await self.bus.register(reg, ident.admission)
        except BusUnavailable:
            return Verdict(503, "Presence service unavailable")
        if verdict.refused_by is not None:
            holder = verdict.refused_by.user_agent or "another device"
            self._failed(ident, "first_wins", address, transport)
            return Verdict(403, f"Already registered by {holder} (first_wins)"[:120])
        self.bindings[bid] = Binding(reg, user, now + expires)
        if old is not None and old.reg.contact != contact:
            with contextlib.suppress(RpcError):  # the same device from a new address
                await self.rpc.call("ul.rm_contact", "location", user, old.reg.contact)
        for gone in verdict.displaced:
            metrics.DISPLACEMENTS.inc()
            await self.bus.publish(Displaced(gone.session_id, reg))
        if old is None:
            metrics.LOGINS.labels("sip", "ok").inc()
            self._audit(reg, "sip_registered", {})
        return Verdict(200)

    async def expired(self, user: str, contact: str) -> None:
        for bid in self._bindings_of(user, contact, ""):
            await self.drop(bid, "expired", remove=False)

    # -- what this node does about them ----------------------------------------------------
    async def drop(self, bid: str, reason: str, *, remove: bool = False) -> None:
        """Forget one of our contacts: out of presence, out of Kamailio (``remove``), audited."""
        binding = self.bindings.pop(bid, None)
        if binding is None:
            return
        reg = binding.reg
        with contextlib.suppress(Exception):  # a bus outage: the record expires with the node
            await self.bus.unregister(reg.principal, bid)
        if remove:
            try:
                await self.rpc.call("ul.rm_contact", "location", binding.aor, reg.contact)
            except RpcError as exc:
                log.warning("SIP contact not removed", reason=reason, error=exc.detail)
        self._audit(reg, "sip_unregistered", {"reason": reason})

    async def on_event(self, event: BusEvent) -> None:
        if isinstance(event, Changed):
            self.identities.clear()
        elif isinstance(event, Revoked):
            self.identities.clear()
            named = set(event.principals)
            for bid, binding in list(self.bindings.items()):
                if binding.reg.principal in named:
                    await self.drop(bid, "revoked", remove=True)
        elif isinstance(event, Displaced) and event.session_id in self.bindings:
            await self.drop(event.session_id, "displaced", remove=True)

    async def sweep(self, now: float) -> None:
        """Contacts whose time ran out (Kamailio drops them too) and credentials that expired
        without an event reaching us."""
        for bid, binding in list(self.bindings.items()):
            expiry = binding.reg.expires_at
            if binding.contact_expires <= now:
                await self.drop(bid, "expired")
            elif expiry is not None and expiry <= now:
                await self.drop(bid, "credential_expired", remove=True)

    async def reclaim(self) -> None:
        """Take our contacts back into presence (the bus came back, or voxgate restarted while
        Kamailio kept its table)."""
        for binding in list(self.bindings.values()):
            ident = await self.identities.get(binding.aor)
            if ident is not None:
                with contextlib.suppress(BusUnavailable):
                    await self.bus.register(binding.reg, ident.admission)

    async def adopt(self, contacts: list[dict[str, object]], now: float) -> int:
        """Contacts Kamailio held before voxgate (re)started: back into our bindings and
        presence; those of identities that are gone or refused are removed."""
        adopted = 0
        for c in contacts:
            user, contact = str(c.get("aor", "")), str(c.get("contact", ""))
            ident = await self.identities.get(user)
            if ident is None or ident.refusal(now) is not None:
                with contextlib.suppress(RpcError):
                    await self.rpc.call("ul.rm_contact", "location", user, contact)
                continue
            expires = float(str(c.get("expires") or 0)) or now + 60
            seen = SipContact(
                user,
                contact,
                str(c.get("transport") or "udp"),
                str(c.get("address") or ""),
                int(str(c.get("port") or 0)),
                str(c.get("user_agent") or ""),
                str(c.get("instance") or ""),
            )
            registered_at = float(str(c.get("registered_at") or now))
            reg = self._registration(ident, seen, registered_at)
            self.bindings[seen.binding_id] = Binding(reg, user, expires)
            adopted += 1
        await self.reclaim()
        return adopted

    # -- helpers ---------------------------------------------------------------------------
    def _registration(
        self, ident: SipIdentity, seen: SipContact, registered_at: float
    ) -> Registration:
        return Registration(
            principal=ident.principal,
            connection_id=ident.connection.id,
            credential_id=ident.credential_id,
            sip_username=seen.user,
            session_id=seen.binding_id,
            node_id=self.node_id,
            address=seen.address,
            port=seen.port,
            user_agent=seen.user_agent,
            registered_at=registered_at,
            transport=seen.transport,
            policy=ident.admission.policy.value,
            expires_at=ident.expires_at(),
            contact=seen.contact,
        )

    def _bindings_of(self, user: str, contact: str, instance: str) -> list[str]:
        if contact == "*":
            return [bid for bid, b in self.bindings.items() if b.aor == user]
        bid = binding_id(user, contact, instance)
        found = [bid] if bid in self.bindings else []
        return found + [
            b for b, v in self.bindings.items() if v.aor == user and v.reg.contact == contact
        ]

    def _failed(self, ident: SipIdentity | None, reason: str, address: str, transport: str) -> None:
        """One refused REGISTER: counted and logged as a refused WebRTC login is, audited."""
        metrics.LOGINS.labels("sip", "failed").inc()
        log.info(
            "login failed",
            reason=reason,
            method="sip",
            address=address,
            credential_id=ident.credential_id if ident else None,
        )
        if ident is not None and ident.credential_id is not None:
            details = {"reason": reason, "address": address, "transport": transport}
            self.audit.record(ident.credential_id, "sip_register_failed", details)

    def _audit(self, reg: Registration, kind: str, extra: dict[str, str]) -> None:
        if reg.credential_id is None:
            return
        details = {
            "contact": reg.contact,
            "transport": reg.transport,
            "address": reg.address,
            "user_agent": reg.user_agent,
            **extra,
        }
        self.audit.record(reg.credential_id, kind, details)
