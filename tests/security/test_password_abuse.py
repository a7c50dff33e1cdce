"""Password logins: same work for "no such user" and "wrong password"; lockouts cost no hashing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from voxgate.auth.keyring import Sealer
from voxgate.auth.passwords import Passwords
from voxgate.auth.throttle import LoginThrottle
from voxgate.bus.local import LocalBus
from voxgate.domain.errors import LoginFailed
from voxgate.services.control import ControlPlane
from voxgate.services.logins import LoginService
from voxgate.services.schemas import ConnectionCreate, CredentialCreate
from voxgate.store.sql import open_store


class CountingPasswords(Passwords):
    def __init__(self) -> None:
        super().__init__()
        self.verifications: list[str | None] = []

    def verify(self, stored_hash: str | None, password: str) -> bool:
        self.verifications.append(stored_hash)
        return super().verify(stored_hash, password)


@pytest.fixture
async def setup(tmp_path: Path) -> Any:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path}/a.db")
    pw = CountingPasswords()
    plane = ControlPlane(store, LocalBus(), Sealer.from_file(tmp_path / "k"), pw)
    await plane.load_keys()
    conn, _ = await plane.create_connection(ConnectionCreate(connection_name="c"))
    cred, secret = await plane.create_credential(CredentialCreate(connection_id=conn.id))
    logins = LoginService(plane, LoginThrottle(free_failures=3, lockout_after=6, lockout=900))
    yield logins, pw, cred, secret
    await store.close()


async def test_unknown_user_and_wrong_password_do_the_same_work(setup: Any) -> None:
    logins, pw, cred, _ = setup
    with pytest.raises(LoginFailed) as wrong:
        await logins.password_login(
            cred.sip_username, "wrong-password", "198.51.100.1", time.time()
        )
    with pytest.raises(LoginFailed) as unknown:
        await logins.password_login(
            "gencredNobodyHere", "wrong-password", "198.51.100.2", time.time()
        )
    assert str(wrong.value) == str(unknown.value) == "Login Incorrect"
    assert len(pw.verifications) == 2
    assert pw.verifications[0] is not None and pw.verifications[1] is None  # None = the dummy hash


async def test_locked_out_attempts_cost_no_hashing(setup: Any) -> None:
    logins, pw, cred, secret = setup
    now = time.time()
    for _ in range(6):
        with pytest.raises(LoginFailed):
            await logins.password_login(cred.sip_username, "nope-nope", "198.51.100.7", now)
    hashed = len(pw.verifications)
    for _ in range(20):
        with pytest.raises(LoginFailed, match="Too many"):
            await logins.password_login(cred.sip_username, secret, "198.51.100.8", now)
    assert len(pw.verifications) == hashed  # rejected before any argon2 work
    later = now + 901
    grant = await logins.password_login(cred.sip_username, secret, "198.51.100.8", later + 900 * 2)
    assert grant.credential_id == cred.id
    await asyncio.sleep(0)
