"""Whom a dialled destination names: a credential (by ``sip_username``, or by ``name``) or a
credential connection (by its ``user_name``)."""

from __future__ import annotations

from voxgate.domain.principals import Principal
from voxgate.store.base import CredentialFilter, Store

__all__ = ["principal_for"]


async def principal_for(store: Store, dest: str) -> tuple[Principal | None, str]:
    """The principal and its connection's id, or (None, "")."""
    if not dest or len(dest) > 128:
        return None, ""
    cred = await store.credential_by_sip_username(dest)
    if cred is None:
        named = await store.list_credentials(CredentialFilter(name=dest), 1, 1)
        cred = named.items[0] if named.items else None
    if cred is not None:
        return Principal.credential(cred.id), cred.connection_id
    conn = await store.connection_by_user_name(dest)
    if conn is not None:
        return Principal.connection(conn.id), conn.id
    return None, ""
