"""SIP trunks (voxgate's ``/v2/sip_trunks``) and phone numbers (Telnyx's ``/v2/phone_numbers``,
through the official SDK) against a live server, and the same from the CLI."""

from __future__ import annotations

import json
import sqlite3
import uuid
from typing import Any

import httpx
import pytest
import telnyx

from tests.harness import SECRETS, Voxgate


@pytest.fixture
def client(server: Voxgate) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key=server.api_key, base_url=server.base_url, max_retries=0)


@pytest.fixture
def http(server: Voxgate) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {server.api_key}"}
    )


def _password() -> str:
    clear = "trunk-" + uuid.uuid4().hex
    SECRETS.add(clear)  # tests/security/test_secrets_scan.py: in no log or error body
    return clear


def _no_secret(data: Any, clear: str) -> None:
    text = json.dumps(data)
    assert clear not in text and "secret" not in text
    assert "password" not in {k for k in (data if isinstance(data, dict) else {})}


def _connection(client: telnyx.Telnyx, name: str, **fields: Any) -> Any:
    user_name = "numbers" + uuid.uuid4().hex[:12]
    conn = client.credential_connections.create(
        connection_name=name, user_name=user_name, password="password123", **fields
    ).data
    assert conn is not None
    return conn


def _number() -> str:
    """A valid US number of its own (NANP 202-555-01xx is fictional but well-formed)."""
    return f"+1202555{uuid.uuid4().int % 10_000:04d}"


def test_sip_trunks_crud_never_shows_the_password(server: Voxgate, http: httpx.Client) -> None:
    clear = _password()
    body = {
        "name": "carrier",
        "host": "sip.example.net",
        "transport": "tls",
        "username": "acme",
        "password": clear,
        "caller_id": "+12025550100",
        "register": True,
        "source_addresses": ["192.0.2.7", "198.51.100.0/24"],
        "concurrent_call_limit": 4,
    }
    made = http.post("/sip_trunks", json=body)
    assert made.status_code == 201, made.text
    trunk = made.json()["data"]
    _no_secret(trunk, clear)
    assert set(trunk) == {
        "id", "record_type", "name", "host", "port", "transport", "username", "password_set",
        "caller_id", "register", "registration_status", "source_addresses",
        "concurrent_call_limit", "enabled", "created_at", "updated_at",
    }  # fmt: skip
    assert trunk["registration_status"] == "unknown"  # no SIP edge here has reported on it
    assert trunk["record_type"] == "sip_trunk" and trunk["password_set"] is True
    assert trunk["port"] == 5061 and trunk["register"] is True and trunk["enabled"] is True
    assert trunk["source_addresses"] == ["192.0.2.7/32", "198.51.100.0/24"]

    got = http.get(f"/sip_trunks/{trunk['id']}").json()["data"]
    assert got == trunk
    listed = http.get("/sip_trunks", params={"page[size]": 250}).json()
    assert trunk["id"] in [t["id"] for t in listed["data"]] and listed["meta"]["page_number"] == 1
    for item in listed["data"]:
        _no_secret(item, clear)
    bare = httpx.get(
        f"{server.api_url}/sip_trunks/{trunk['id']}",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert bare.status_code == 200

    patched = http.patch(f"/sip_trunks/{trunk['id']}", json={"enabled": False, "caller_id": None})
    assert patched.status_code == 200, patched.text
    assert (
        patched.json()["data"]["enabled"] is False and patched.json()["data"]["caller_id"] is None
    )

    # the row: sealed, not the password
    with sqlite3.connect(server.workdir / "voxgate.db") as db:
        (secret,) = db.execute(
            "SELECT secret FROM sip_trunks WHERE id = ?", (trunk["id"],)
        ).fetchone()
    assert secret and clear.encode() not in bytes(secret)
    assert clear not in server.log_path.read_text(errors="replace")

    gone = http.delete(f"/sip_trunks/{trunk['id']}")
    assert gone.status_code == 200 and gone.json()["data"]["id"] == trunk["id"]
    assert http.get(f"/sip_trunks/{trunk['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "x", "host": "sip://x.example"}, "/host"),
        ({"name": "x", "host": "a b"}, "/host"),
        ({"name": "x", "host": "h.example", "port": 70000}, "/port"),
        ({"name": "x", "host": "h.example", "transport": "ws"}, "/transport"),
        ({"name": "x", "host": "h.example", "username": "u"}, "/password"),
        ({"name": "x", "host": "h.example", "register": True}, "/register"),
        ({"name": "x", "host": "h.example", "caller_id": "5550100"}, "/caller_id"),
        ({"name": "x", "host": "h.example", "source_addresses": ["nope"]}, "/source_addresses"),
        ({"name": "x", "host": "h.example", "concurrent_call_limit": 0}, "/concurrent_call_limit"),
        ({"name": "x", "host": "h.example", "pasword": "typo"}, "/pasword"),
        ({"host": "h.example"}, "/name"),
    ],
)
def test_sip_trunk_validation_is_422_with_a_pointer(
    http: httpx.Client, body: dict[str, Any], pointer: str
) -> None:
    res = http.post("/sip_trunks", json=body)
    assert res.status_code == 422, res.text
    error = res.json()["errors"][0]
    assert error["code"] == "10015" and error["source"]["pointer"] == pointer


def test_a_bad_password_is_refused_without_echoing_it(http: httpx.Client) -> None:
    clear = _password() + "\r\nInjected: header"
    res = http.post(
        "/sip_trunks", json={"name": "x", "host": "h.example", "username": "u", "password": clear}
    )
    assert res.status_code == 422 and res.json()["errors"][0]["source"]["pointer"] == "/password"
    assert clear not in res.text and "Injected" not in res.text


def test_phone_numbers_with_the_official_sdk(client: telnyx.Telnyx, http: httpx.Client) -> None:
    conn, other = _connection(client, "numbers"), _connection(client, "numbers-2")
    cred = client.telephony_credentials.create(connection_id=conn.id).data
    assert cred is not None
    trunk = http.post("/sip_trunks", json={"name": "t", "host": "192.0.2.1"}).json()["data"]

    numbers = [_number() for _ in range(3)]
    made = http.post("/phone_numbers", json={"phone_number": numbers[0], "credential_id": cred.id})
    assert made.status_code == 201, made.text
    first = made.json()["data"]
    assert first["record_type"] == "phone_number" and first["status"] == "active"
    assert first["phone_number"] == numbers[0] and first["connection_id"] == conn.id
    assert first["credential_id"] == cred.id and first["connection_name"] == "numbers"
    assert first["trunk_id"] is None and first["tags"] == []
    for n in numbers[1:]:
        res = http.post(
            "/phone_numbers",
            json={"phone_number": n, "connection_id": conn.id, "trunk_id": trunk["id"]},
        )
        assert res.status_code == 201, res.text

    # list (filters, paging), retrieve, update, delete: as on Telnyx
    page = client.phone_numbers.list(filter={"connection_id": conn.id}, page_size=2)
    assert page.meta is not None and page.meta.total_results == 3 and page.meta.total_pages == 2
    assert {n.phone_number for n in page.iter_pages() for n in n.data} == set(numbers)
    assert first["id"] in [n.id for n in client.phone_numbers.list(page_size=250)]
    by_cred = list(client.phone_numbers.list(extra_query={"filter[credential_id]": cred.id}))
    assert [n.id for n in by_cred] == [first["id"]]
    got = client.phone_numbers.retrieve(first["id"]).data
    assert got is not None and got.phone_number == numbers[0] and got.connection_id == conn.id
    assert got.connection_name == "numbers" and got.status == "active"

    moved = client.phone_numbers.update(first["id"], connection_id=other.id, tags=["x"]).data
    assert moved is not None and moved.connection_id == other.id
    assert moved.model_extra is not None and moved.model_extra["credential_id"] is None
    again = client.phone_numbers.update(
        first["id"], extra_body={"credential_id": cred.id, "trunk_id": trunk["id"]}
    ).data
    assert again is not None and again.connection_id == conn.id
    assert again.model_extra is not None and again.model_extra["trunk_id"] == trunk["id"]

    with pytest.raises(telnyx.UnprocessableEntityError) as bad:
        client.phone_numbers.update(first["id"], connection_id="no-such-connection")
    assert bad.value.body["errors"][0]["source"]["pointer"] == "/connection_id"  # type: ignore[index]
    dup = http.post("/phone_numbers", json={"phone_number": numbers[0], "connection_id": conn.id})
    assert dup.status_code == 409 and dup.headers["x-should-retry"] == "false"
    invalid = http.post("/phone_numbers", json={"phone_number": "+1555", "connection_id": conn.id})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["source"]["pointer"] == "/phone_number"

    deleted = client.phone_numbers.delete(first["id"]).data
    assert deleted is not None and deleted.id == first["id"]
    with pytest.raises(telnyx.NotFoundError):
        client.phone_numbers.retrieve(first["id"])
    # deleting the connection releases its numbers
    client.credential_connections.delete(conn.id)
    assert list(client.phone_numbers.list(filter={"connection_id": conn.id})) == []


def test_connection_outbound_settings_round_trip_the_sdk(
    client: telnyx.Telnyx, http: httpx.Client
) -> None:
    conn = _connection(client, "dialer", outbound={"channel_limit": 3, "localization": "GB"})
    assert conn.outbound is not None
    extra = conn.outbound.model_extra or {}
    assert extra["trunk_id"] is None and extra["whitelisted_destinations"] == ["US", "CA"]
    assert extra["calls_per_minute"] == 60 and conn.outbound.channel_limit == 3
    trunk = http.post("/sip_trunks", json={"name": "t", "host": "192.0.2.2"}).json()["data"]
    outbound: Any = {"trunk_id": trunk["id"], "whitelisted_destinations": ["gb"]}
    updated = client.credential_connections.update(conn.id, outbound=outbound).data
    assert updated is not None and updated.outbound is not None
    extra = updated.outbound.model_extra or {}
    assert extra["trunk_id"] == trunk["id"] and extra["whitelisted_destinations"] == ["GB"]
    assert updated.outbound.localization == "GB" and updated.outbound.channel_limit == 3
    got = client.credential_connections.retrieve(conn.id).data
    assert got is not None and got.outbound is not None
    assert (got.outbound.model_extra or {})["trunk_id"] == trunk["id"]
    with pytest.raises(telnyx.UnprocessableEntityError) as err:
        client.credential_connections.update(conn.id, outbound={"trunk_id": "nope"})  # type: ignore[typeddict-unknown-key]
    assert err.value.body["errors"][0]["source"]["pointer"] == "/outbound/trunk_id"  # type: ignore[index]
    # the caller id a carrier is told is a number, never text that could become a header
    for ani in ("+1 312 555 0100", "+13125550100\r\nX-Evil: 1", "anonymous"):
        with pytest.raises(telnyx.UnprocessableEntityError) as err:
            client.credential_connections.update(conn.id, outbound={"ani_override": ani})
        assert err.value.body["errors"][0]["source"]["pointer"] == "/outbound/ani_override"  # type: ignore[index]
    updated = client.credential_connections.update(
        conn.id, outbound={"ani_override": "+13125550100"}
    ).data
    assert updated is not None and updated.outbound is not None
    assert updated.outbound.ani_override == "+13125550100"


def test_the_openapi_documents_both(server: Voxgate) -> None:
    spec = httpx.get(f"{server.api_url}/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v2/sip_trunks", "/v2/sip_trunks/{trunk_id}", "/v2/phone_numbers"):
        assert path in paths
    assert set(paths["/v2/sip_trunks/{trunk_id}"]) == {"get", "patch", "delete"}
    assert paths["/v2/sip_trunks"]["post"]["tags"] == ["SIP Trunks"]
    assert paths["/v2/phone_numbers/{number_id}"]["patch"]["tags"] == ["Phone Numbers"]
    create = paths["/v2/sip_trunks"]["post"]["requestBody"]["content"]["application/json"]
    props = create["schema"]["properties"]
    assert {"format": "password", "type": "string", "writeOnly": True} in props["password"]["anyOf"]
    assert "register" in props and "registration" not in props


# -- the CLI --------------------------------------------------------------------------------------
def _json(res: Any) -> Any:
    return json.loads(res.stdout)


def test_cli_trunks_numbers_and_the_outbound_trunk(server: Voxgate) -> None:
    clear = _password()
    created = server.cli(
        "trunks", "create", "--name", "cli-carrier", "--host", "sip.example.org",
        "--port", "5080", "--transport", "tcp", "--username", "acme", "--password", clear,
        "--caller-id", "+12025550100", "--register",
        "--source-address", "192.0.2.9", "--source-address", "203.0.113.0/24",
        "--concurrent-call-limit", "2",
    )  # fmt: skip
    assert clear not in created.stdout + created.stderr
    trunk = _json(created)
    _no_secret(trunk, clear)
    assert trunk["id"] and trunk["password_set"] is True and trunk["port"] == 5080
    assert trunk["transport"] == "tcp" and trunk["register"] is True
    assert trunk["source_addresses"] == ["192.0.2.9/32", "203.0.113.0/24"]
    listed = _json(server.cli("trunks", "list"))
    assert trunk["id"] in [t["id"] for t in listed] and clear not in json.dumps(listed)

    change = [
        "trunks", "update", trunk["id"], "--disable", "--no-register", "--caller-id", "none",
        "--concurrent-call-limit", "0", "--source-address", "none",
    ]  # fmt: skip
    updated = _json(server.cli(*change))
    assert updated["enabled"] is False and updated["register"] is False
    assert updated["caller_id"] is None and updated["concurrent_call_limit"] is None
    assert updated["source_addresses"] == [] and updated["password_set"] is True
    assert _json(server.cli("trunks", "update", trunk["id"], "--enable"))["enabled"] is True
    stripped = _json(server.cli("trunks", "update", trunk["id"], "--clear-credentials"))
    assert stripped["username"] is None and stripped["password_set"] is False

    conn = _json(server.cli("connections", "create", "--name", "cli-numbers"))
    change = [
        "connections", "update", conn["id"], "--outbound-trunk", trunk["id"],
        "--whitelisted-destinations", "us,CA,GB", "--calls-per-minute", "10",
    ]  # fmt: skip
    out = _json(server.cli(*change))["outbound"]
    assert out["trunk_id"] == trunk["id"] and out["whitelisted_destinations"] == ["US", "CA", "GB"]
    assert out["calls_per_minute"] == 10
    cleared = _json(server.cli("connections", "update", conn["id"], "--outbound-trunk", "none"))
    assert cleared["outbound"]["trunk_id"] is None

    cred = _json(server.cli("credentials", "create", "--connection-id", conn["id"]))
    e164 = _number()
    number = _json(
        server.cli("numbers", "create", e164, "--credential-id", cred["id"], "--trunk", trunk["id"])
    )
    assert number["id"] and number["phone_number"] == e164 and number["trunk_id"] == trunk["id"]
    assert number["connection_id"] == conn["id"] and number["credential_id"] == cred["id"]
    on_conn = _json(server.cli("numbers", "create", _number(), "--connection-id", conn["id"]))
    assert on_conn["credential_id"] is None
    mine = _json(server.cli("numbers", "list", "--connection-id", conn["id"]))
    assert {n["id"] for n in mine} == {number["id"], on_conn["id"]}
    assert [n["id"] for n in _json(server.cli("numbers", "list"))].count(number["id"]) == 1
    moved = _json(server.cli("numbers", "update", number["id"], "--trunk", "none"))
    assert moved["trunk_id"] is None
    assert _json(server.cli("numbers", "delete", number["id"]))["id"] == number["id"]
    assert number["id"] not in [n["id"] for n in _json(server.cli("numbers", "list"))]
    assert _json(server.cli("trunks", "delete", trunk["id"]))["id"] == trunk["id"]
    assert trunk["id"] not in [t["id"] for t in _json(server.cli("trunks", "list"))]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("trunks", "create", "--name", "x", "--host", "sip://bad"), "host"),
        (("trunks", "create", "--name", "x", "--host", "h.example", "--username", "u"), "password"),
        (("trunks", "create", "--name", "x", "--host", "h.example", "--transport", "ws"), "udp"),
        (("trunks", "update", "no-such-trunk", "--disable"), "No SIP trunk"),
        (("trunks", "delete", "no-such-trunk"), "No SIP trunk"),
        (("numbers", "create", "+12025550100"), "exactly one"),
        (("numbers", "create", "+12025550100", "--connection-id", "nope"), "connection_id"),
        (("numbers", "create", "12025550100", "--connection-id", "x"), "+E.164"),
        (("numbers", "delete", "no-such-number"), "could not be found"),
        (("connections", "update", "x", "--outbound-trunk", "t"), "could not be found"),
    ],
)
def test_cli_errors_are_one_line_and_nonzero(
    server: Voxgate, args: tuple[str, ...], says: str
) -> None:
    res = server.cli(*args, check=False)
    assert res.returncode == 1, res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0]


def test_cli_refuses_an_unknown_outbound_trunk(server: Voxgate) -> None:
    conn = _json(server.cli("connections", "create", "--name", "cli-bad-trunk"))
    res = server.cli("connections", "update", conn["id"], "--outbound-trunk", "nope", check=False)
    assert res.returncode == 1 and "trunk_id" in res.stderr
    res = server.cli(
        "connections", "update", conn["id"], "--whitelisted-destinations", "US,XX", check=False
    )
    assert res.returncode == 1 and "XX" in res.stderr
