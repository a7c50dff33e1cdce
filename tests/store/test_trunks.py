"""SIP trunks and phone numbers in the store and their services, on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness import create_pg_database, drop_pg_database
from voxgate.domain.errors import Conflict, NotFound, ValidationFailed
from voxgate.services.control import ControlPlane
from voxgate.services.schemas import (
    ConnectionCreate,
    ConnectionUpdate,
    CredentialCreate,
    outbound_settings,
    parse,
)
from voxgate.services.trunk_schemas import NumberCreate, NumberUpdate, TrunkCreate, TrunkUpdate
from voxgate.store import schema
from voxgate.store.migrate import alembic_config
from voxgate.store.sql import SqlStore, open_store

CLEAR = "s3cret-Pa55word"


async def _trunk(plane: ControlPlane, **fields: object) -> str:
    body = {"name": "carrier", "host": "sip.example.net", **fields}
    return (await plane.trunks.create(parse(TrunkCreate, body))).id


async def _connection(plane: ControlPlane, name: str = "numbers") -> str:
    conn, _ = await plane.create_connection(ConnectionCreate(connection_name=name))
    return conn.id


async def test_trunk_rows_roundtrip_and_the_sealed_password(plane: ControlPlane) -> None:
    body = {
        "name": "Telnyx",
        "host": "SIP.Telnyx.com",
        "transport": "tls",
        "username": "acme",
        "password": CLEAR,
        "caller_id": "+12025550123",
        "register": True,
        "source_addresses": ["192.0.2.7", "198.51.100.0/24"],
        "concurrent_call_limit": 10,
    }
    trunk = await plane.trunks.create(parse(TrunkCreate, body))
    assert trunk.port == 5061 and trunk.host == "sip.telnyx.com" and trunk.enabled
    assert trunk.source_addresses == ["192.0.2.7/32", "198.51.100.0/24"]
    got = await plane.store.get_trunk(trunk.id)
    assert got == trunk
    assert got is not None and got.secret is not None and isinstance(got.secret, bytes)
    assert CLEAR.encode() not in got.secret
    assert plane.trunks.password(got) == CLEAR
    # the row itself: sealed, bound to the trunk's id
    store = plane.store
    assert isinstance(store, SqlStore)
    async with store.engine.connect() as db:
        raw = (await db.execute(select(schema.trunks.c.secret))).scalar_one()
    assert CLEAR.encode() not in bytes(raw)
    with pytest.raises(Exception, match="cannot be unsealed"):
        plane.sealer.open(got.secret, "trunk:another-id")

    plain = await plane.trunks.create(parse(TrunkCreate, {"name": "pbx", "host": "10.0.0.2"}))
    assert plain.port == 5060 and plain.transport == "udp" and plain.secret is None
    assert plane.trunks.password(plain) is None
    page = await plane.store.list_trunks(1, 1)
    assert page.total == 2 and page.total_pages == 2 and [t.id for t in page.items] == [plain.id]
    assert [t.id for t in (await plane.trunks.list(2, 1)).items] == [trunk.id]

    updated = await plane.trunks.update(
        trunk.id,
        parse(
            TrunkUpdate,
            {"password": "another-one", "caller_id": None, "enabled": False, "port": 5070},
        ),
    )
    assert updated.caller_id is None and not updated.enabled and updated.port == 5070
    assert updated.username == "acme" and plane.trunks.password(updated) == "another-one"
    assert updated.updated_at >= trunk.updated_at and updated.created_at == trunk.created_at
    cleared = await plane.trunks.update(
        trunk.id, parse(TrunkUpdate, {"username": None, "register": False})
    )
    assert cleared.username is None and cleared.secret is None

    assert (await plane.trunks.delete(plain.id)).id == plain.id
    assert await plane.store.get_trunk(plain.id) is None
    assert await plane.store.delete_trunk(plain.id) is None
    assert await plane.store.update_trunk(plain.id, name="x") is None
    with pytest.raises(NotFound):
        await plane.trunks.get(plain.id)


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"username": "u"}, "/password"),
        ({"password": CLEAR}, "/username"),
        ({"register": True}, "/register"),
    ],
)
async def test_trunk_credentials_go_together(
    plane: ControlPlane, body: dict[str, object], pointer: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        await _trunk(plane, **body)
    assert err.value.pointer == pointer
    assert CLEAR not in str(err.value.detail)  # never the value given


async def test_trunk_updates_keep_the_rules(plane: ControlPlane) -> None:
    trunk_id = await _trunk(plane, username="u", password=CLEAR, register=True)
    for body, pointer in (
        ({"name": None}, "/name"),
        ({"password": None}, "/register"),  # clears both, but it still registers
    ):
        with pytest.raises(ValidationFailed) as err:
            await plane.trunks.update(trunk_id, parse(TrunkUpdate, body))
        assert err.value.pointer == pointer
    other = await _trunk(plane)
    with pytest.raises(ValidationFailed) as err:
        await plane.trunks.update(other, parse(TrunkUpdate, {"username": "only"}))
    assert err.value.pointer == "/password"
    sources = await plane.trunks.update(trunk_id, parse(TrunkUpdate, {"source_addresses": None}))
    assert sources.source_addresses == [] and plane.trunks.password(sources) == CLEAR


async def test_numbers_assignment_lookup_and_filters(plane: ControlPlane) -> None:
    conn_id = await _connection(plane)
    other_conn = await _connection(plane, "other")
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    trunk_id = await _trunk(plane)

    to_cred = await plane.numbers.create(
        parse(NumberCreate, {"phone_number": "+1 (202) 555-0123", "credential_id": cred.id})
    )
    assert to_cred.phone_number == "+12025550123" and to_cred.connection_id == conn_id
    assert to_cred.credential_id == cred.id and to_cred.trunk_id is None
    to_conn = await plane.numbers.create(
        parse(
            NumberCreate,
            {"phone_number": "+442079460000", "connection_id": other_conn, "trunk_id": trunk_id},
        )
    )
    assert to_conn.credential_id is None and to_conn.trunk_id == trunk_id

    assert await plane.store.number_by_e164("+12025550123") == to_cred
    assert await plane.store.number_by_e164("+12025550199") is None
    assert await plane.store.get_number(to_conn.id) == to_conn
    everything = await plane.store.list_numbers(1, 10)
    assert everything.total == 2 and [n.id for n in everything.items] == [to_conn.id, to_cred.id]
    by_conn = await plane.store.list_numbers(1, 10, connection_id=conn_id)
    assert [n.id for n in by_conn.items] == [to_cred.id]
    by_cred = await plane.numbers.list(1, 10, credential_id=cred.id)
    assert [n.id for n in by_cred.items] == [to_cred.id]
    assert (await plane.numbers.list(1, 10, conn_id, "nobody")).total == 0

    with pytest.raises(Conflict) as clash:
        await plane.numbers.create(
            parse(NumberCreate, {"phone_number": "+12025550123", "connection_id": conn_id})
        )
    assert clash.value.pointer == "/phone_number"
    with pytest.raises(Conflict):  # the store's own unique index, past the service's check
        await plane.store.add_number(replace(to_cred, id="another"))

    # moving it: to the other connection (off the credential), back to the credential
    moved = await plane.numbers.update(
        to_cred.id, parse(NumberUpdate, {"connection_id": other_conn, "trunk_id": trunk_id})
    )
    assert moved.connection_id == other_conn and moved.credential_id is None
    assert moved.trunk_id == trunk_id
    back = await plane.numbers.update(
        to_cred.id, parse(NumberUpdate, {"credential_id": cred.id, "trunk_id": None})
    )
    assert back.connection_id == conn_id and back.credential_id == cred.id and back.trunk_id is None
    same = await plane.numbers.update(to_cred.id, parse(NumberUpdate, {"connection_id": conn_id}))
    assert same.credential_id == cred.id  # same connection: the credential stays
    with pytest.raises(ValidationFailed) as err:
        await plane.numbers.update(
            to_cred.id, parse(NumberUpdate, {"credential_id": cred.id, "connection_id": other_conn})
        )
    assert err.value.pointer == "/connection_id"

    assert (await plane.numbers.delete(to_conn.id)).id == to_conn.id
    assert await plane.store.get_number(to_conn.id) is None
    with pytest.raises(NotFound):
        await plane.numbers.delete(to_conn.id)
    assert await plane.store.update_number(to_conn.id, trunk_id=None) is None


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"phone_number": "12025550123", "connection_id": "CONN"}, "/phone_number"),  # no +
        ({"phone_number": "+15551234567", "connection_id": "CONN"}, "/phone_number"),  # 555
        ({"phone_number": "+1202555012", "connection_id": "CONN"}, "/phone_number"),  # short
        ({"phone_number": "+999123", "connection_id": "CONN"}, "/phone_number"),
        ({"phone_number": "+12025550123", "credential_id": "nope"}, "/credential_id"),
        ({"phone_number": "+12025550123", "connection_id": "nope"}, "/connection_id"),
        ({"phone_number": "+12025550123", "connection_id": "CONN", "trunk_id": "x"}, "/trunk_id"),
        ({"phone_number": "+12025550123"}, "/connection_id"),  # no owner
    ],
)
async def test_numbers_refuse_bad_input(
    plane: ControlPlane, body: dict[str, str], pointer: str
) -> None:
    conn_id = await _connection(plane)
    full = {k: conn_id if v == "CONN" else v for k, v in body.items()}
    with pytest.raises(ValidationFailed) as err:
        await plane.numbers.create(parse(NumberCreate, full))
    assert err.value.pointer == pointer
    assert (await plane.store.list_numbers(1, 10)).total == 0


async def test_exactly_one_owner(plane: ControlPlane) -> None:
    conn_id = await _connection(plane)
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    body = {"phone_number": "+12025550123", "connection_id": conn_id, "credential_id": cred.id}
    with pytest.raises(ValidationFailed, match="exactly one"):
        await plane.numbers.create(parse(NumberCreate, body))


async def test_deletes_cascade_to_numbers(plane: ControlPlane) -> None:
    conn_id = await _connection(plane)
    cred, _ = await plane.create_credential(CredentialCreate(connection_id=conn_id))
    trunk_id = await _trunk(plane)
    on_cred = await plane.numbers.create(
        parse(NumberCreate, {"phone_number": "+12025550123", "credential_id": cred.id})
    )
    on_conn = await plane.numbers.create(
        parse(
            NumberCreate,
            {"phone_number": "+12025550124", "connection_id": conn_id, "trunk_id": trunk_id},
        )
    )
    await plane.trunks.delete(trunk_id)
    kept = await plane.store.get_number(on_conn.id)
    assert kept is not None and kept.trunk_id is None  # ON DELETE SET NULL
    await plane.delete_credential(cred.id)
    assert await plane.store.get_number(on_cred.id) is None  # ON DELETE CASCADE
    assert await plane.store.get_number(on_conn.id) is not None
    await plane.delete_connection(conn_id)
    assert await plane.store.get_number(on_conn.id) is None


async def test_connection_outbound_settings(plane: ControlPlane) -> None:
    conn, _ = await plane.create_connection(ConnectionCreate(connection_name="out"))
    assert outbound_settings(conn.settings) | {"channel_limit": None} == conn.settings["outbound"]
    assert conn.settings["outbound"]["trunk_id"] is None
    assert conn.settings["outbound"]["whitelisted_destinations"] == ["US", "CA"]
    assert conn.settings["outbound"]["calls_per_minute"] == 60
    with pytest.raises(ValidationFailed) as err:
        await plane.update_connection(
            conn.id, parse(ConnectionUpdate, {"outbound": {"trunk_id": "no-such-trunk"}})
        )
    assert err.value.pointer == "/outbound/trunk_id"
    with pytest.raises(ValidationFailed) as err:
        await plane.create_connection(
            parse(ConnectionCreate, {"connection_name": "x", "outbound": {"trunk_id": "nope"}})
        )
    assert err.value.pointer == "/outbound/trunk_id"
    trunk_id = await _trunk(plane)
    body = {
        "outbound": {
            "trunk_id": trunk_id,
            "whitelisted_destinations": ["gb", "US", "GB"],
            "calls_per_minute": 5,
        }
    }
    updated, _ = await plane.update_connection(conn.id, parse(ConnectionUpdate, body))
    out = updated.settings["outbound"]
    assert out["trunk_id"] == trunk_id and out["whitelisted_destinations"] == ["GB", "US"]
    assert out["calls_per_minute"] == 5 and out["localization"] == "US"  # merged, not replaced
    cleared, _ = await plane.update_connection(
        conn.id, parse(ConnectionUpdate, {"outbound": {"trunk_id": None}})
    )
    assert cleared.settings["outbound"]["trunk_id"] is None
    for bad, pointer in (
        ({"whitelisted_destinations": ["ZZ"]}, "/outbound/whitelisted_destinations"),
        ({"whitelisted_destinations": ["USA"]}, "/outbound/whitelisted_destinations"),
        ({"calls_per_minute": 0}, "/outbound/calls_per_minute"),
    ):
        with pytest.raises(ValidationFailed) as err:
            parse(ConnectionUpdate, {"outbound": bad})
        assert (err.value.pointer or "").startswith(pointer)
    # a connection stored before these fields existed reads with their defaults
    assert outbound_settings({"outbound": {"localization": "GB"}})["calls_per_minute"] == 60
    assert outbound_settings({})["whitelisted_destinations"] == ["US", "CA"]


# -- the migration ----------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/migrate.db"
        return
    url = create_pg_database()
    yield url
    drop_pg_database(url)


def _to(revision: str, direction: str = "upgrade") -> object:
    def step(connection: Connection) -> None:
        from alembic import command

        getattr(command, direction)(alembic_config(connection), revision)

    return step


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migration_0006_up_and_down_keeps_the_data(empty_url: str) -> None:
    engine = create_async_engine(empty_url)
    try:
        async with engine.begin() as db:
            await db.run_sync(_to("0005"))  # type: ignore[arg-type]
            assert "sip_trunks" not in await db.run_sync(_tables)
            await db.execute(
                text(
                    "INSERT INTO credential_connections (id, connection_name, user_name, "
                    "user_name_key, password_hash, active, settings, created_at, updated_at) "
                    "VALUES ('1', 'old', 'olduser', 'olduser', 'x', true, '{}', 0, 0)"
                )
            )
    finally:
        await engine.dispose()
    store = await open_store(empty_url)  # upgrades to head
    try:
        old = await store.get_connection("1")
        assert old is not None and old.connection_name == "old"
        assert (await store.list_trunks(1, 10)).total == 0
        async with store.engine.begin() as db:
            assert {"sip_trunks", "phone_numbers"} <= await db.run_sync(_tables)
            await db.run_sync(_to("0005", "downgrade"))  # type: ignore[arg-type]
            assert not {"sip_trunks", "phone_numbers"} & await db.run_sync(_tables)
            await db.run_sync(_to("head"))  # type: ignore[arg-type]
        assert await store.get_connection("1") is not None
    finally:
        await store.close()
