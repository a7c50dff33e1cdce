"""TURN for calls across NATs: voxgate mints coturn REST-API credentials per login; a real
coturn (started here on loopback with a generated secret) accepts them, and refuses expired,
foreign and tampered ones."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.harness import Voxgate
from tests.rtc.conftest import api_for
from tests.turn import Coturn, turn_entry, with_turn
from voxgate.auth.turn import turn_credential
from voxgate.client import Client


async def test_every_login_gets_turn_credentials_that_coturn_accepts(
    make_server: type[Voxgate], coturn: Coturn, tmp_path: Path
) -> None:
    vg = with_turn(make_server, coturn, tmp_path)
    api = api_for(vg)
    cred = api.credential()
    client = Client(vg.rtc_url, login_token=api.token(cred["id"]), reconnect=False)
    await client.connect()
    notice = await client.wait_for("ice_servers", 5)
    turn = turn_entry(client.ice_servers)
    assert turn["urls"] == [
        f"turn:127.0.0.1:{coturn.port}?transport=udp",
        f"turn:127.0.0.1:{coturn.port}?transport=tcp",
    ]
    assert {"urls": [f"stun:127.0.0.1:{coturn.port}"]} in client.ice_servers
    expiry, identity = turn["username"].split(":", 1)
    assert identity == f"cred-{cred['id']}"  # coturn's log names who relayed
    assert time.time() < int(expiry) <= notice.data["expires_at"] <= time.time() + 86_400
    assert coturn.allocates(turn["username"], turn["credential"])
    past = turn_credential(coturn.secret.encode(), identity, time.time() - 5)
    assert not coturn.allocates(*past)  # expired
    foreign = turn_credential(b"another secret", identity, time.time() + 600)
    assert not coturn.allocates(*foreign)  # signed with another secret
    tampered = turn["username"].replace(identity, "cred-someone-else")
    assert not coturn.allocates(tampered, turn["credential"])  # username changed
    # a refresh hands out new ones, expiring later
    await asyncio.sleep(1.1)
    await client.update_token(api.token(cred["id"]))
    fresh = turn_entry((await client.wait_for("ice_servers", 5)).data["iceServers"])
    assert fresh["username"] != turn["username"]
    assert int(fresh["username"].split(":")[0]) > int(expiry)
    await client.close()


async def test_an_anonymous_session_gets_short_lived_credentials(
    make_server: type[Voxgate], coturn: Coturn, tmp_path: Path
) -> None:
    vg = with_turn(make_server, coturn, tmp_path)
    api = api_for(vg)
    bot = api.post("/ai/assistants", {"name": "echo", "kind": "echo"}).json()["data"]
    client = Client(
        vg.rtc_url, anonymous_login={"target_type": "ai_assistant", "target_id": bot["id"]}
    )
    await client.connect()
    turn = turn_entry((await client.wait_for("ice_servers", 5)).data["iceServers"])
    expiry, identity = turn["username"].split(":", 1)
    assert identity == f"anon-{bot['id']}" and int(expiry) <= time.time() + 3600
    assert coturn.allocates(turn["username"], turn["credential"])
    await client.close()


def test_ice_servers_over_rest(make_server: type[Voxgate], coturn: Coturn, tmp_path: Path) -> None:
    vg = with_turn(make_server, coturn, tmp_path, "--turn-ttl", "600")
    api = api_for(vg)
    cred = api.credential()
    path = f"/telephony_credentials/{cred['id']}/ice_servers"
    data = api.post(path).json()["data"]
    assert data["record_type"] == "ice_servers" and data["expires_at"].endswith("Z")
    turn = turn_entry(data["ice_servers"])
    assert int(turn["username"].split(":")[0]) <= time.time() + 601  # --turn-ttl
    assert coturn.allocates(turn["username"], turn["credential"])
    assert httpx.post(vg.base_url + path).status_code == 401
    unknown = api.http.post(
        "/telephony_credentials/00000000-0000-4000-8000-000000000000/ice_servers"
    )
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "10005"
    api.post(f"/telephony_credentials/{cred['id']}/actions/deactivate")
    refused = api.http.post(path)  # a revoked credential gets no new TURN credentials
    assert refused.status_code == 422 and "inactive" in refused.json()["errors"][0]["detail"]


async def test_without_turn_nothing_changes(api: Any, server: Voxgate) -> None:
    client = Client(server.rtc_url, login_token=api.token(api.credential()["id"]))
    await client.connect()
    await asyncio.sleep(0.2)
    assert client.ice_servers == [] and not [e for e in client.events if e.name == "ice_servers"]
    await client.close()


def test_turn_settings_come_from_the_environment_too(
    make_server: type[Voxgate], tmp_path: Path
) -> None:
    """As every setting: ``VOXGATE_TURN_URL`` (space-separated for several),
    ``VOXGATE_TURN_SECRET_FILE``; and the banner says TURN is on."""
    secret = tmp_path / "turn.secret"
    secret.write_text("env-secret\n")
    urls = ["turn:127.0.0.1:3478?transport=udp", "turns:127.0.0.1:5349"]
    vg = make_server(
        env={"VOXGATE_TURN_URL": " ".join(urls), "VOXGATE_TURN_SECRET_FILE": str(secret)}
    ).start()
    api = api_for(vg)
    cred = api.credential()
    servers = api.post(f"/telephony_credentials/{cred['id']}/ice_servers").json()["data"]
    turn = turn_entry(servers["ice_servers"])
    assert turn["urls"] == urls
    assert (turn["username"], turn["credential"]) == turn_credential(
        b"env-secret", f"cred-{cred['id']}", int(turn["username"].split(":")[0])
    )
    assert "media:      TURN on" in vg.log_path.read_text()
