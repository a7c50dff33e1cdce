"""The same store suite on SQLite and on the real Postgres of this machine (fresh DB per run)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from voxgate.auth.keyring import Sealer
from voxgate.auth.tokens import verify_signature
from voxgate.domain.errors import (
    ConfigurationError,
    Conflict,
    LoginFailed,
    NotFound,
    ValidationFailed,
)
from voxgate.domain.timeutil import utcnow
from voxgate.services.control import ControlPlane
from voxgate.services.logins import LoginService
from voxgate.services.schemas import ConnectionCreate, CredentialCreate, CredentialUpdate
from voxgate.store.base import ConnectionFilter, CredentialFilter
from voxgate.store.sql import open_store


async def _conn(plane: ControlPlane, name: str = "c1") -> str:
    conn, _ = await plane.create_connection(ConnectionCreate(connection_name=name))
    return conn.id


async def test_migrations_are_idempotent(plane: ControlPlane, tmp_path: Path) -> None:
    url = str(plane.store.engine.url.render_as_string(hide_password=False))  # type: ignore[attr-defined]
    again = await open_store(url)
    await again.ping()
    await again.close()


async def test_connection_roundtrip_and_unique_user_name(plane: ControlPlane) -> None:
    conn, password = await plane.create_connection(
        ConnectionCreate(connection_name="one", user_name="Alice123", password="password123")
    )
    assert password == "password123"
    assert conn.password_hash != password and conn.password_hash.startswith("$argon2")
    with pytest.raises(Conflict):
        await plane.create_connection(
            ConnectionCreate(connection_name="two", user_name="alice123", password="password123")
        )
    found = await plane.store.connection_by_user_name("ALICE123")
    assert found is not None and found.id == conn.id
    page = await plane.list_connections(
        ConnectionFilter(name_contains="ON", sort="connection_name"), 1, 10
    )
    assert [c.id for c in page.items] == [conn.id]


async def test_credential_filters_paging_and_expiry(plane: ControlPlane) -> None:
    conn_id = await _conn(plane)
    made = [
        (
            await plane.create_credential(
                CredentialCreate(
                    connection_id=conn_id, name=f"n{i}", tag="even" if i % 2 == 0 else "odd"
                )
            )
        )[0]
        for i in range(5)
    ]
    evens = await plane.list_credentials(CredentialFilter(tag="even"), 1, 2)
    assert evens.total == 3 and len(evens.items) == 2 and evens.total_pages == 2
    second = await plane.list_credentials(CredentialFilter(tag="even"), 2, 2)
    assert len(second.items) == 1
    assert {c.id for c in evens.items + second.items} == {made[0].id, made[2].id, made[4].id}
    by_user = await plane.list_credentials(
        CredentialFilter(sip_username=made[1].sip_username), 1, 10
    )
    assert [c.id for c in by_user.items] == [made[1].id]
    # expiry is derived from expires_at, and the sweep marks and revokes
    await plane.store.update_credential(made[3].id, expires_at=utcnow() - timedelta(seconds=1))
    expired = await plane.list_credentials(CredentialFilter(status="expired"), 1, 10)
    assert [c.id for c in expired.items] == [made[3].id]
    assert await plane.expire_due() == [made[3].id]
    assert plane.revocations[-1].principals == (f"cred:{made[3].id}",)  # type: ignore[attr-defined]
    with pytest.raises(ValidationFailed):
        await plane.update_credential(made[3].id, CredentialUpdate(name="x"))


async def test_deactivation_revokes_old_tokens_even_after_reactivation(plane: ControlPlane) -> None:
    logins = LoginService(plane)
    conn_id = await _conn(plane)
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    token, claims = await plane.mint_token(cred.id)
    now = utcnow().timestamp()
    grant = await logins.token_login(token, now)
    assert grant.credential_id == cred.id and grant.expires_at == claims.exp
    await plane.set_credential_active(cred.id, False)
    assert plane.revocations[-1].principals == (f"cred:{cred.id}",)  # type: ignore[attr-defined]
    with pytest.raises(LoginFailed):
        await logins.token_login(token, now)
    await plane.set_credential_active(cred.id, True)
    with pytest.raises(LoginFailed, match="revoked"):
        await logins.token_login(token, now)
    fresh, _ = await plane.mint_token(cred.id)  # minted right after: must work at once
    assert (await logins.token_login(fresh, utcnow().timestamp())).credential_id == cred.id


async def test_revoke_tokens_and_delete(plane: ControlPlane) -> None:
    logins = LoginService(plane)
    conn_id = await _conn(plane)
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    token, _ = await plane.mint_token(cred.id)
    await plane.revoke_tokens(cred.id)
    with pytest.raises(LoginFailed):
        await logins.token_login(token, utcnow().timestamp())
    await plane.delete_credential(cred.id)
    with pytest.raises(NotFound):
        await plane.get_credential(cred.id)
    audit = await plane.audit_log.page(cred.id, 1, 50)  # the trail outlives the credential
    assert {e.kind for e in audit.items} >= {"token_minted", "revoked"}


async def test_a_node_that_missed_the_events_rechecks_revoked_tokens_and_changes(
    plane: ControlPlane,
) -> None:
    """A login service that heard no event (its node was cut off from the bus) while one
    token was revoked (token reuse) and the connection's policy changed: once it is told to
    forget (the bus is back), a live session on that token fails the re-check and the next
    login reads the new policy, at once rather than after a cache's TTL."""
    logins = LoginService(plane, cache_ttl=3600.0)  # a TTL that would hide both changes
    conn_id = await _conn(plane)
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    token, claims = await plane.mint_token(cred.id)
    other, _ = await plane.mint_token(cred.id)
    now = utcnow().timestamp()
    grant = await logins.token_login(token, now)
    assert await logins.still_valid(grant, now)
    await plane.revoke_token(claims.jti, cred.id, utcnow() + timedelta(hours=1), "reuse")
    await plane.store.update_connection(conn_id, settings={"registration_policy": "ring_all"})
    assert await logins.still_valid(grant, now)  # still the cached view
    await logins.after_missed_events()
    assert not await logins.still_valid(grant, now)
    fresh = await logins.token_login(other, now)
    assert fresh.admission.policy.value == "ring_all"


async def test_deleting_a_connection_cascades_and_revokes(plane: ControlPlane) -> None:
    conn_id = await _conn(plane)
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    await plane.delete_connection(conn_id)
    assert await plane.store.get_credential(cred.id) is None
    assert f"cred:{cred.id}" in plane.revocations[-1].principals  # type: ignore[attr-defined]


async def test_key_rotation_and_retirement(plane: ControlPlane) -> None:
    conn_id = await _conn(plane)
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    old_token, old_claims = await plane.mint_token(cred.id)
    new_kid = await plane.rotate_signing_key()
    ring = await plane.load_keys()
    assert ring.signing_kid == new_kid and old_claims.kid in ring.keys
    now = utcnow().timestamp()
    assert verify_signature(plane.ring, old_token, now).kid == old_claims.kid  # old still verifies
    new_token, new_claims = await plane.mint_token(cred.id)
    assert new_claims.kid == new_kid
    await plane.retire_signing_key(old_claims.kid)
    await plane.load_keys()
    with pytest.raises(LoginFailed):
        verify_signature(plane.ring, old_token, now)
    assert verify_signature(plane.ring, new_token, now).kid == new_kid


async def test_signing_secrets_are_sealed_at_rest(plane: ControlPlane) -> None:
    stored = await plane.store.list_signing_keys()
    live = plane.ring.signing_key()
    sealed = next(k for k in stored if k.kid == live.kid)
    assert live.secret not in sealed.secret and len(live.secret) == 64
    assert (
        replace(sealed, secret=plane.sealer.open(sealed.secret, sealed.kid)).secret == live.secret
    )


async def test_wrong_secret_file_is_a_clear_error(plane: ControlPlane, tmp_path: Path) -> None:
    other = ControlPlane(plane.store, plane.bus, Sealer.from_file(tmp_path / "other-kek"))
    with pytest.raises(ConfigurationError, match="secret file"):
        await other.load_keys()
