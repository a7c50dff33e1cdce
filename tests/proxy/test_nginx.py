"""voxgate behind Debian's nginx with the documented configuration (docs/nginx/voxgate.conf):
TLS at nginx, REST and signaling on one hostname, and the client's own address everywhere a
per-address rule applies, because the gateway trusts nginx (``--trusted-proxies``) and only
nginx."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import telnyx
import websockets

from tests.harness import Voxgate
from tests.nginx import Nginx, run_nginx
from tests.rtc.conftest import Api, api_for


@pytest.fixture
def proxied(make_server: type[Voxgate], tmp_path: Path) -> Iterator[tuple[Voxgate, Nginx]]:
    vg = make_server(extra_args=["--trusted-proxies", "127.0.0.1/32"]).start()
    with run_nginx(tmp_path, vg.api_port, vg.rtc_port) as nginx:
        yield vg, nginx


async def login(
    url: str, params: dict[str, Any], source: str, tls: ssl.SSLContext | None = None, **kw: Any
) -> dict[str, Any]:
    """One login from the loopback address ``source``; the socket is closed afterwards."""
    async with websockets.connect(url, ssl=tls, local_addr=(source, 0), **kw) as ws:
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": "l", "method": "login", "params": params})
        )
        reply: dict[str, Any] = json.loads(await ws.recv())
        return reply


def test_the_official_sdk_works_over_https_through_nginx(proxied: tuple[Voxgate, Nginx]) -> None:
    vg, nginx = proxied
    client = telnyx.Telnyx(
        api_key=vg.api_key,
        base_url=nginx.https + "/v2",
        http_client=telnyx.DefaultHttpxClient(verify=ssl.create_default_context(cafile=nginx.ca)),
        max_retries=0,
    )
    conn = client.credential_connections.create(
        connection_name="behind-nginx", user_name="nginxuser1", password="nginx-password-1"
    )
    assert conn.data is not None and conn.data.id is not None
    cred = client.telephony_credentials.create(connection_id=conn.data.id)
    assert cred.data is not None and cred.data.id is not None
    token = client.telephony_credentials.create_token(cred.data.id)
    assert token.count(".") == 2
    page = client.telephony_credentials.list()
    assert any(c.id == cred.data.id for c in page.data or [])


async def test_a_lockout_follows_the_forwarded_address_not_nginx(
    proxied: tuple[Voxgate, Nginx],
) -> None:
    vg, nginx = proxied
    api = api_for(vg)
    tls = ssl.create_default_context(cafile=str(nginx.ca))
    victim, other, bystander = api.credential(), api.credential(), api.credential()
    for _ in range(12):  # wrong passwords from 127.0.0.3, through nginx
        reply = await login(
            nginx.wss, {"login": victim["sip_username"], "passwd": "wrong"}, "127.0.0.3", tls
        )
    assert "Too many" in reply["error"]["message"]
    locked = await login(
        nginx.wss,
        {"login": other["sip_username"], "passwd": other["sip_password"]},
        "127.0.0.3",
        tls,
    )
    assert "Too many" in locked["error"]["message"]  # that address is locked out ...
    fine = await login(
        nginx.wss,
        {"login": bystander["sip_username"], "passwd": bystander["sip_password"]},
        "127.0.0.4",
        tls,
    )
    assert "result" in fine  # ... another client behind the same nginx is not
    logged = [json.loads(line) for line in vg.log_path.read_text().splitlines() if "{" in line]
    failures = [e for e in logged if e.get("event") == "login failed"]
    assert {e["address"] for e in failures} == {"127.0.0.3"}  # the client, never nginx
    assert {"login_incorrect", "too_many_failed_logins_try_again_later"} <= {
        e["reason"] for e in failures
    }
    assert all(e["method"] == "password" for e in failures)
    audit = _audit(api, victim["id"])
    failed = [e for e in audit if e["kind"] == "login_failed"]
    assert failed and {e["details"]["address"] for e in failed} == {"127.0.0.3"}


async def test_forwarding_headers_from_anyone_else_are_ignored(
    proxied: tuple[Voxgate, Nginx],
) -> None:
    vg, nginx = proxied
    api = api_for(vg)
    cred = api.credential()
    token = api.token(cred["id"])
    spoofed = {"X-Forwarded-For": "198.51.100.7", "Forwarded": "for=198.51.100.8"}
    direct = await login(
        vg.rtc_url, {"login_token": token}, "127.0.0.5", additional_headers=spoofed
    )
    assert "result" in direct
    tls = ssl.create_default_context(cafile=str(nginx.ca))
    via = await login(
        nginx.wss, {"login_token": token}, "127.0.0.6", tls, additional_headers=spoofed
    )
    assert "result" in via
    api.wait_audit(cred["id"], "login_ok")
    addresses = [
        e["details"]["address"] for e in _audit(api, cred["id"]) if e["kind"] == "login_ok"
    ]
    # straight to the gateway: its own address; through nginx: the address nginx saw (the
    # client's own X-Forwarded-For entries are to the left of it and not believed)
    assert sorted(addresses) == ["127.0.0.5", "127.0.0.6"]
    # REST likewise: the request log names the client nginx saw, not nginx, not the spoof
    transport = httpx.HTTPTransport(
        verify=ssl.create_default_context(cafile=nginx.ca), local_address="127.0.0.7"
    )
    with httpx.Client(transport=transport) as http:
        r = http.get(nginx.https + "/v2/telephony_credentials", headers={**_bearer(vg), **spoofed})
        assert r.status_code == 200

    def clients() -> set[str]:
        """The request log's clients (its line is written after the reply goes out)."""
        logged = [json.loads(x) for x in vg.log_path.read_text().splitlines() if "{" in x]
        return {e.get("client") for e in logged if e.get("event") == "request"}

    deadline = time.monotonic() + 5
    while "127.0.0.7" not in clients() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "127.0.0.7" in clients() and not clients() & {"198.51.100.7", "198.51.100.8"}


def _bearer(vg: Voxgate) -> dict[str, str]:
    return {"Authorization": f"Bearer {vg.api_key}"}


def _audit(api: Api, cred_id: str) -> list[dict[str, Any]]:
    for _ in range(50):
        events: list[dict[str, Any]] = api.http.get(
            f"/telephony_credentials/{cred_id}/audit", params={"page[size]": 250}
        ).json()["data"]
        if events:
            return events
    return []
