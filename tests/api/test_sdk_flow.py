"""The official ``telnyx`` Python SDK, unmodified, against a live voxgate (only base_url set)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import telnyx

from tests.harness import Voxgate


@pytest.fixture
def client(server: Voxgate) -> telnyx.Telnyx:
    return telnyx.Telnyx(api_key=server.api_key, base_url=server.base_url, max_retries=0)


def _claims(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header = jwt.get_unverified_header(token)
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    return header, payload


def test_full_credential_lifecycle(client: telnyx.Telnyx, server: Voxgate) -> None:
    conn = client.credential_connections.create(
        connection_name="sdk-flow",
        user_name=f"sdkflow{uuid.uuid4().hex[:8]}",
        password="password123",
    ).data
    assert conn is not None and conn.id and conn.id.isdigit()
    assert conn.record_type == "credential_connection"
    tag = "t" + uuid.uuid4().hex[:8]
    expires = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    creds = [
        client.telephony_credentials.create(connection_id=conn.id, name=f"user-{i}", tag=tag).data
        for i in range(7)
    ]
    short = client.telephony_credentials.create(
        connection_id=conn.id, name="short", tag=tag, expires_at=expires.isoformat()
    ).data
    assert short is not None
    for cred in creds:
        assert cred is not None
        assert cred.sip_username and cred.sip_username.startswith("gencred")
        assert cred.sip_password and len(cred.sip_password) >= 16
        assert cred.resource_id == f"connection:{conn.id}"

    # every filter
    by_tag = list(client.telephony_credentials.list(filter={"tag": tag}, page_size=3))
    assert {c.id for c in by_tag} == {c.id for c in creds if c} | {short.id}
    first = creds[0]
    assert first is not None
    assert [
        c.id for c in client.telephony_credentials.list(filter={"name": "user-0", "tag": tag})
    ] == [first.id]
    assert [
        c.id for c in client.telephony_credentials.list(filter={"sip_username": first.sip_username})
    ] == [first.id]
    by_resource = list(
        client.telephony_credentials.list(
            filter={"resource_id": f"connection:{conn.id}"}, page_size=250
        )
    )
    assert len(by_resource) == 8
    active = list(client.telephony_credentials.list(filter={"status": "active", "tag": tag}))
    assert len(active) == 8

    # auto-pagination across >= 3 pages, and the paging meta the SDK relies on
    page = client.telephony_credentials.list(filter={"tag": tag}, page_size=3)
    assert page.meta is not None and page.meta.total_pages == 3 and page.meta.total_results == 8
    pages = list(page.iter_pages())
    assert len(pages) == 3
    assert sum(len(p.data) for p in pages) == 8

    # retrieve never shows the password again; update merges
    got = client.telephony_credentials.retrieve(first.id).data
    assert got is not None and got.sip_username == first.sip_username and got.sip_password is None
    updated = client.telephony_credentials.update(first.id, name="renamed", tag="newtag").data
    assert updated is not None and updated.name == "renamed" and updated.tag == "newtag"

    # token: every claim, the 24 h rule and the expires_at cap
    token = client.telephony_credentials.create_token(first.id)
    assert isinstance(token, str) and token.count(".") == 2 and not token.startswith('"')
    header, claims = _claims(token)
    assert header["alg"] == "HS512" and header["typ"] == "JWT" and header["kid"]
    assert set(claims) == {"aud", "exp", "iat", "iss", "jti", "nbf", "sub", "tel_token", "typ"}
    assert claims["iss"] == claims["aud"] == "telnyx_telephony"
    assert claims["typ"] == "access" and claims["sub"] == first.id
    assert claims["nbf"] == claims["iat"] - 1  # type: ignore[operator]
    assert claims["exp"] == claims["iat"] + 86400  # type: ignore[operator]
    assert abs(claims["iat"] - time.time()) < 5  # type: ignore[operator]
    uuid.UUID(str(claims["jti"]))
    capped = _claims(client.telephony_credentials.create_token(short.id))[1]
    assert capped["exp"] == int(expires.timestamp())

    # the token logs in until the credential is deactivated
    assert _token_login(server, token) == "ok"
    httpx.post(
        f"{server.base_url}/telephony_credentials/{first.id}/actions/deactivate",
        headers={"Authorization": f"Bearer {server.api_key}"},
    ).raise_for_status()
    assert client.telephony_credentials.retrieve(first.id).data.status == "inactive"  # type: ignore[union-attr]
    assert _token_login(server, token) == "refused"
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.telephony_credentials.create_token(first.id)

    deleted = client.telephony_credentials.delete(first.id).data
    assert deleted is not None and deleted.id == first.id
    with pytest.raises(telnyx.NotFoundError):
        client.telephony_credentials.retrieve(first.id)


def _token_login(server: Voxgate, token: str) -> str:
    from websockets.sync.client import connect

    with connect(server.rtc_url) as ws:
        ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": "1", "method": "login", "params": {"login_token": token}}
            )
        )
        reply = json.loads(ws.recv(timeout=5))
    if "result" in reply:
        return "ok"
    assert reply["error"]["code"] == -32001
    return "refused"


def test_connection_crud_filters_and_sort(client: telnyx.Telnyx) -> None:
    marker = uuid.uuid4().hex[:6]
    made = [
        client.credential_connections.create(
            connection_name=f"{marker}-{n}", user_name=f"u{marker}{n}", password="password123"
        ).data
        for n in ("b", "a", "c")
    ]
    listed = client.credential_connections.list(
        filter={"connection_name": {"contains": marker}}, sort="connection_name"
    )
    assert [c.connection_name for c in listed] == [f"{marker}-a", f"{marker}-b", f"{marker}-c"]
    desc = client.credential_connections.list(
        filter={"connection_name": {"contains": marker}}, sort="-connection_name"
    )
    assert next(c.connection_name for c in desc) == f"{marker}-c"
    target = made[0]
    assert target is not None
    got = client.credential_connections.retrieve(target.id).data
    assert got is not None and got.password == "********"  # the clear password only on create
    patched = client.credential_connections.update(
        target.id, inbound={"timeout_2xx_secs": 30}, active=False
    ).data
    assert patched is not None and patched.active is False
    assert patched.inbound is not None and patched.inbound.timeout_2xx_secs == 30
    assert patched.inbound.timeout_1xx_secs == 3  # PATCH merges nested objects
    status = client.credential_connections.actions.check_registration_status(target.id).data
    assert status is not None and status.status == "Not Registered"
    assert client.credential_connections.delete(target.id).data.id == target.id  # type: ignore[union-attr]
    with pytest.raises(telnyx.NotFoundError):
        client.credential_connections.retrieve(target.id)


def test_error_paths_raise_sdk_exceptions(server: Voxgate, client: telnyx.Telnyx) -> None:
    anonymous = telnyx.Telnyx(api_key="wrong-key", base_url=server.base_url, max_retries=0)
    with pytest.raises(telnyx.AuthenticationError) as auth:
        anonymous.telephony_credentials.list()
    assert auth.value.body["errors"][0]["code"] == "10009"  # type: ignore[index]
    with pytest.raises(telnyx.NotFoundError) as nf:
        client.telephony_credentials.retrieve(str(uuid.uuid4()))
    assert nf.value.body["errors"][0]["code"] == "10005"  # type: ignore[index]
    with pytest.raises(telnyx.UnprocessableEntityError) as unproc:
        client.telephony_credentials.create(connection_id="999999")
    assert unproc.value.body["errors"][0]["source"]["pointer"] == "/connection_id"  # type: ignore[index]
    with pytest.raises(telnyx.UnprocessableEntityError) as bad_user:
        client.credential_connections.create(
            connection_name="x", user_name="no spaces!", password="password123"
        )
    assert bad_user.value.body["errors"][0]["code"] == "10015"  # type: ignore[index]
    with pytest.raises(telnyx.UnprocessableEntityError):
        client.credential_connections.create(
            connection_name="x", user_name="okname12", password="short"
        )
    conn = client.credential_connections.create(
        connection_name="errs", user_name=f"e{uuid.uuid4().hex[:10]}", password="password123"
    ).data
    assert conn is not None
    with pytest.raises(telnyx.UnprocessableEntityError) as bad_exp:
        client.telephony_credentials.create(connection_id=conn.id, expires_at="not-a-date")
    assert bad_exp.value.body["errors"][0]["source"]["pointer"] == "/expires_at"  # type: ignore[index]
    with pytest.raises(telnyx.BadRequestError) as bad_page:
        client.telephony_credentials.list(page_number=0)
    assert bad_page.value.body["errors"][0]["code"] == "10015"  # type: ignore[index]


def test_without_v2_prefix_and_no_api_key(server: Voxgate) -> None:
    bare = telnyx.Telnyx(api_key=server.api_key, base_url=server.api_url, max_retries=0)
    assert bare.telephony_credentials.list().meta is not None
    r = httpx.get(f"{server.base_url}/telephony_credentials")
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "10009"


@pytest.mark.parametrize("body", [b"{not json", b"[" * 50_000], ids=["broken", "too deep"])
def test_malformed_json_is_400(server: Voxgate, body: bytes) -> None:
    r = httpx.post(
        f"{server.base_url}/credential_connections",
        content=body,
        headers={"Authorization": f"Bearer {server.api_key}", "content-type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "10015"


def test_expired_credential_can_only_be_deleted(server: Voxgate, client: telnyx.Telnyx) -> None:
    conn = client.credential_connections.create(
        connection_name="exp", user_name=f"x{uuid.uuid4().hex[:10]}", password="password123"
    ).data
    assert conn is not None
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    cred = client.telephony_credentials.create(connection_id=conn.id, expires_at=soon).data
    assert cred is not None
    deadline = time.monotonic() + 10
    while client.telephony_credentials.retrieve(cred.id).data.status != "expired":  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "credential never expired"
        time.sleep(0.2)
    assert [
        c.id
        for c in client.telephony_credentials.list(
            filter={"status": "expired", "resource_id": f"connection:{conn.id}"}
        )
    ] == [cred.id]
    with pytest.raises(telnyx.UnprocessableEntityError) as exc:
        client.telephony_credentials.update(cred.id, name="nope")
    assert "expired" in exc.value.body["errors"][0]["detail"]  # type: ignore[index]
    assert client.telephony_credentials.delete(cred.id).data is not None
