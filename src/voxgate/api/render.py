"""Records as the SDKs expect them on the wire."""

from __future__ import annotations

from typing import Any

from voxgate.domain.records import (
    ApiKey,
    Assistant,
    AuditEvent,
    CallReport,
    Connection,
    Credential,
    IceServers,
    PhoneNumber,
    Registration,
    Trunk,
)
from voxgate.domain.timeutil import from_epoch, iso, utcnow
from voxgate.services.schemas import REGISTRATION_DEFAULTS, outbound_settings

__all__ = [
    "api_key",
    "assistant",
    "audit_event",
    "call_report",
    "connection",
    "credential",
    "ice_servers",
    "instant",
    "live_call",
    "phone_number",
    "registration",
    "registration_status",
    "trunk",
]


def api_key(key: ApiKey, clear: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": key.id,
        "record_type": "api_key",
        "label": key.label,
        "prefix": key.prefix,
        "scope": key.scope,
        "created_at": iso(key.created_at),
        "last_used_at": iso(key.last_used_at) if key.last_used_at else None,
        "revoked_at": iso(key.revoked_at) if key.revoked_at else None,
    }
    if clear is not None:
        body["key"] = clear
    return body


def connection(conn: Connection, password: str | None = None) -> dict[str, Any]:
    return {
        "id": conn.id,
        "record_type": "credential_connection",
        "connection_name": conn.connection_name,
        "user_name": conn.user_name,
        "password": password if password is not None else "********",
        "active": conn.active,
        **REGISTRATION_DEFAULTS,  # connections made before these existed
        **conn.settings,
        "outbound": outbound_settings(conn.settings),  # with fields newer than the connection
        "created_at": iso(conn.created_at),
        "updated_at": iso(conn.updated_at),
    }


def credential(cred: Credential, password: str | None = None) -> dict[str, Any]:
    now = utcnow()
    body: dict[str, Any] = {
        "id": cred.id,
        "record_type": "credential",
        "resource_id": f"connection:{cred.connection_id}",
        "connection_id": cred.connection_id,
        "name": cred.name,
        "tag": cred.tag,
        "sip_username": cred.sip_username,
        "status": cred.effective_status(now),
        "expired": cred.is_expired(now),
        "expires_at": iso(cred.expires_at),
        "user_id": "voxgate",
        "registration_policy": cred.registration_policy,
        "max_registrations": cred.max_registrations,
        "created_at": iso(cred.created_at),
        "updated_at": iso(cred.updated_at),
    }
    if password is not None:
        body["sip_password"] = password
    return body


def registration_status(conn: Connection, reg: Registration | None) -> dict[str, Any]:
    if reg is None:
        return {
            "record_type": "registration_status",
            "status": "Not Registered",
            "sip_username": conn.user_name,
            "ip_address": None,
            "port": None,
            "transport": None,
            "user_agent": None,
            "last_registration": None,
        }
    return {
        "record_type": "registration_status",
        "status": "Registered",
        "sip_username": reg.sip_username,
        "credential_id": reg.credential_id,
        "ip_address": reg.address,
        "port": reg.port,
        "transport": reg.transport,
        "user_agent": reg.user_agent,
        "last_registration": from_epoch(reg.registered_at).strftime("%Y-%m-%dT%H:%M:%S"),
        "node_id": reg.node_id,
    }


def audit_event(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "record_type": "audit_event",
        "credential_id": event.credential_id,
        "kind": event.kind,
        "occurred_at": iso(event.at),
        "details": event.details,
    }


def assistant(item: Assistant) -> dict[str, Any]:
    return {
        "id": item.id,
        "record_type": "ai_assistant",
        "name": item.name,
        "kind": item.kind,
        "instructions": item.settings.get("instructions"),
        "created_at": iso(item.created_at),
    }


def ice_servers(ice: IceServers) -> dict[str, Any]:
    return {
        "record_type": "ice_servers",
        "ice_servers": list(ice.servers),
        "expires_at": iso(from_epoch(ice.expires_at)),
    }


def instant(epoch: float) -> str:
    return iso(from_epoch(epoch))


def registration(reg: Registration) -> dict[str, Any]:
    """One live registration, for the console and ``GET /v2/registrations``."""
    return {
        "record_type": "registration",
        "principal": reg.principal,
        "credential_id": reg.credential_id,
        "connection_id": reg.connection_id,
        "sip_username": reg.sip_username,
        "session_id": reg.session_id,
        "node_id": reg.node_id,
        "ip_address": reg.address,
        "port": reg.port,
        "user_agent": reg.user_agent,
        "transport": reg.transport,
        "contact": reg.contact or None,
        "registration_policy": reg.policy,
        "registered_at": instant(reg.registered_at),
        "expires_at": instant(reg.expires_at) if reg.expires_at else None,
    }


def live_call(call: dict[str, Any]) -> dict[str, Any]:
    return {
        "record_type": "live_call",
        "call_session_id": call.get("call_session_id"),
        "from": call.get("from"),
        "to": call.get("to"),
        "state": call.get("state"),
        "started_at": instant(float(call.get("started") or 0.0)),
        "caller_node": call.get("caller_node"),
        "callee_node": call.get("callee_node"),
        **({"relay": call["relay"]} if call.get("relay") else {}),  # --anchor-media
        **({"sip_trunk_id": call["sip_trunk_id"]} if call.get("sip_trunk_id") else {}),
    }


def call_report(report: CallReport) -> dict[str, Any]:
    summary = report.body.get("summary")
    return {
        "id": report.id,
        "record_type": "call_report",
        "call_id": report.call_id,
        "session_id": report.session_id,
        "credential_id": report.credential_id,
        "connection_id": report.connection_id,
        "kind": report.kind,
        "final": report.final,
        "segment": report.segment,
        "intervals": len(report.body.get("stats") or []),
        "summary": summary if isinstance(summary, dict) else None,
        "received_at": iso(report.received_at),
    }


def trunk(item: Trunk, registered: list[bool] | None = None) -> dict[str, Any]:
    """A SIP trunk; whether it has a password, never the password (nor its sealed form).
    ``registered``: what each SIP edge node says of its registration with the carrier."""
    if not item.register:
        status = "not_registering"
    elif not registered:
        status = "unknown"  # no SIP edge has reported on it (yet)
    else:
        status = "registered" if any(registered) else "failed"
    return {
        "id": item.id,
        "record_type": "sip_trunk",
        "name": item.name,
        "host": item.host,
        "port": item.port,
        "transport": item.transport,
        "username": item.username,
        "password_set": item.secret is not None,
        "caller_id": item.caller_id,
        "register": item.register,
        "registration_status": status,
        "source_addresses": list(item.source_addresses),
        "concurrent_call_limit": item.concurrent_call_limit,
        "enabled": item.enabled,
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
    }


def phone_number(item: PhoneNumber, connection_name: str | None = None) -> dict[str, Any]:
    """As Telnyx's ``/phone_numbers`` shows a number, with voxgate's assignment (the
    credential it rings, the trunk it arrives on)."""
    body: dict[str, Any] = {
        "id": item.id,
        "record_type": "phone_number",
        "phone_number": item.phone_number,
        "status": "active",
        "connection_id": item.connection_id,
        "credential_id": item.credential_id,
        "trunk_id": item.trunk_id,
        "tags": [],
        "deletion_lock_enabled": False,
        "purchased_at": iso(item.created_at),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
    }
    if connection_name is not None:
        body["connection_name"] = connection_name
    return body
