"""API keys: listed and revoked (CLI and REST), and scoped: a ``tokens`` key, the one a web
backend holds, reads credentials and mints their tokens and nothing else."""

from __future__ import annotations

import json
import time

import httpx
import pytest
import telnyx

from tests.harness import Voxgate


def _http(server: Voxgate, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"})


def test_keys_are_listed_and_a_revoked_key_is_refused_within_the_cache_time(
    server: Voxgate,
) -> None:
    key = server.cli("keys", "create", "--label", "revoke-me").stdout.strip()
    listed = {k["label"]: k for k in json.loads(server.cli("keys", "list").stdout)}
    mine = listed["revoke-me"]
    assert mine["prefix"] == key[:10] and mine["scope"] == "admin"
    assert mine["last_used_at"] is None and mine["revoked_at"] is None
    assert key not in server.cli("keys", "list").stdout  # the key itself is never shown again
    with _http(server, key) as http:
        assert http.get("/telephony_credentials").status_code == 200
        used = json.loads(server.cli("keys", "list").stdout)
        assert next(k for k in used if k["id"] == mine["id"])["last_used_at"] is not None
        revoked_at = time.monotonic()
        assert server.cli("keys", "revoke", mine["id"]).stdout.strip() == f"revoked {mine['id']}"
        while http.get("/telephony_credentials").status_code != 401:
            assert time.monotonic() - revoked_at < 6.0, "a revoked key still works after 6 s"
            time.sleep(0.2)
    again = server.cli("keys", "revoke", mine["id"], check=False)
    assert again.returncode == 1 and "No API key" in again.stderr


def test_admin_keys_manage_keys_over_rest(server: Voxgate) -> None:
    with _http(server, server.api_key) as admin:
        made = admin.post("/api_keys", json={"label": "backend", "scope": "tokens"})
        assert made.status_code == 201
        body = made.json()["data"]
        assert body["scope"] == "tokens" and body["key"].startswith(body["prefix"])
        listed = admin.get("/api_keys").json()["data"]
        assert body["id"] in [k["id"] for k in listed]
        assert all("key" not in k for k in listed)
        bad = admin.post("/api_keys", json={"label": "x", "scope": "root"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["source"]["pointer"] == "/scope"
        with _http(server, body["key"]) as backend:  # a tokens key cannot make keys
            denied = backend.post("/api_keys", json={"label": "escalate"})
            assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "10010"
        gone = admin.delete(f"/api_keys/{body['id']}")
        assert gone.status_code == 200 and gone.json()["data"]["revoked_at"] is not None


def test_a_tokens_key_mints_through_the_official_sdk_and_changes_nothing(
    server: Voxgate,
) -> None:
    admin = telnyx.Telnyx(api_key=server.api_key, base_url=server.base_url, max_retries=0)
    conn = admin.credential_connections.create(
        connection_name="scoped", user_name="scopeduser1", password="scoped-password-1"
    )
    assert conn.data is not None and conn.data.id is not None
    cred = admin.telephony_credentials.create(connection_id=conn.data.id)
    assert cred.data is not None and cred.data.id is not None
    cred_id = cred.data.id
    key = server.cli("keys", "create", "--label", "web backend", "--scope", "tokens").stdout
    backend = telnyx.Telnyx(api_key=key.strip(), base_url=server.base_url, max_retries=0)
    token = backend.telephony_credentials.create_token(cred_id)
    assert isinstance(token, str) and token.count(".") == 2  # 201, a JWT
    read = backend.telephony_credentials.retrieve(cred_id).data
    assert read is not None and read.id == cred_id
    assert backend.telephony_credentials.list().data is not None
    with _http(server, key.strip()) as http:
        assert http.post(f"/telephony_credentials/{cred_id}/ice_servers").status_code == 200
    attempts = [
        lambda: backend.telephony_credentials.create(connection_id=conn.data.id),  # type: ignore[union-attr]
        lambda: backend.telephony_credentials.delete(cred_id),
        lambda: backend.telephony_credentials.update(cred_id, name="renamed"),
        lambda: backend.credential_connections.delete(conn.data.id),  # type: ignore[union-attr]
        lambda: backend.credential_connections.list(),
    ]
    for attempt in attempts:
        with pytest.raises(telnyx.PermissionDeniedError) as denied:
            attempt()
        assert denied.value.status_code == 403
        assert "10010" in str(denied.value.body)
    still = admin.telephony_credentials.retrieve(cred_id).data
    assert still is not None and still.status == "active"


def test_a_tokens_key_cannot_deactivate(server: Voxgate) -> None:
    """The legacy action (not in the Python SDK) is refused like the rest."""
    with _http(server, server.api_key) as admin:
        conn = admin.post("/credential_connections", json={"connection_name": "a"}).json()
        cred = admin.post("/telephony_credentials", json={"connection_id": conn["data"]["id"]})
        cred_id = cred.json()["data"]["id"]
        key = admin.post("/api_keys", json={"label": "b", "scope": "tokens"}).json()["data"]["key"]
    with _http(server, key) as backend:
        denied = backend.post(f"/telephony_credentials/{cred_id}/actions/deactivate")
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["title"] == "Authorization failed"
