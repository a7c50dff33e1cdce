"""The seed documents' examples, pasted verbatim (only the host and key changed)."""

from __future__ import annotations

import httpx

from tests.harness import Voxgate


def test_authentication_guide_steps_1_to_3(server: Voxgate) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}", "Content-Type": "application/json"}
    # Step 1: no user_name/password, fields the spec does not know, "enabled" outside its enum
    step1 = httpx.post(
        f"{server.base_url}/credential_connections",
        headers=headers,
        content=b"""{
 "connection_name": "My WebRTC Connection",
 "transport_protocol": "TLS",
 "sip_uri_calling_preference": "enabled",
 "sip_uri_calling_region": "any"
 }""",
    )
    assert step1.status_code == 201, step1.text
    conn = step1.json()["data"]
    assert conn["connection_name"] == "My WebRTC Connection"
    assert conn["user_name"] and conn["password"]  # generated
    assert conn["sip_uri_calling_preference"] == "enabled" and conn["transport_protocol"] == "TLS"
    # Step 2
    step2 = httpx.post(
        f"{server.base_url}/telephony_credentials",
        headers=headers,
        content=b'{\n "connection_id": "YOUR_CONNECTION_ID",\n "name": "user-123"\n }'.replace(
            b"YOUR_CONNECTION_ID", conn["id"].encode()
        ),
    )
    assert step2.status_code == 201, step2.text
    cred = step2.json()["data"]
    # Step 3: no body, no content type
    step3 = httpx.post(
        f"{server.base_url}/telephony_credentials/{cred['id']}/token",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert step3.status_code == 201 and step3.headers["content-type"].startswith("text/plain")
    assert step3.text.startswith("eyJhbGciOiJIUzUxMiIs")  # same opening as the guide's sample token
    # the generated connection login works as a password login
    import json

    from websockets.sync.client import connect

    with connect(server.rtc_url) as ws:
        ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "1",
                    "method": "login",
                    "params": {"login": conn["user_name"], "passwd": conn["password"]},
                }
            )
        )
        assert "result" in json.loads(ws.recv(timeout=5))


def test_ops_endpoints(server: Voxgate) -> None:
    assert httpx.get(server.api_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.api_url + "/readyz").json() == {"status": "ready"}
    assert "voxgate_http_requests_total" in httpx.get(server.api_url + "/metrics").text
    spec = httpx.get(server.api_url + "/openapi.json").json()
    assert "/v2/telephony_credentials/{cred_id}/token" in spec["paths"]
    assert httpx.get(server.api_url + "/docs").status_code == 200
    r = httpx.get(server.base_url + "/nope", headers={"Authorization": f"Bearer {server.api_key}"})
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "10005"
    assert r.headers["x-request-id"]
