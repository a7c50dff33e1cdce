"""The gateway live, over real sockets, with tokens minted through REST."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.harness import Voxgate
from tests.rtc.conftest import Api, api_for
from voxgate.client import Client, ClientError


async def raw_login(
    url: str, params: dict[str, Any], method: str = "login", **kw: Any
) -> tuple[Any, dict[str, Any]]:
    ws = await websockets.connect(url, **kw)
    await ws.send(
        json.dumps({"jsonrpc": "2.0", "id": "login-1", "method": method, "params": params})
    )
    return ws, json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_token_login_ready_handshake_matches_golden_shapes(api: Api, server: Voxgate) -> None:
    cred = api.credential()
    ws, reply = await raw_login(
        server.rtc_url,
        {
            "login_token": api.token(cred["id"]),
            "userVariables": {},
            "reconnection": False,
            "loginParams": {"early_sdp_answer": False},
            "User-Agent": {"sdkVersion": "2.27.10", "data": "golden"},
        },
    )
    golden = _golden()
    assert set(reply) == set(golden["login_result"]) and set(reply["result"]) == {
        "message",
        "sessid",
    }
    assert reply["result"]["message"] == "logged in"
    ready = json.loads(await ws.recv())
    assert (
        ready["method"] == "telnyx_rtc.clientReady"
        and ready["params"] == golden["client_ready"]["params"]
    )
    assert isinstance(ready["id"], int) and "voice_sdk_id" in ready
    await ws.send(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": "gw",
                "method": "telnyx_rtc.gatewayState",
                "voice_sdk_id": ready["voice_sdk_id"],
                "params": {},
            }
        )
    )
    state = json.loads(await ws.recv())
    params = state["result"]["params"]
    assert golden["reged"]["result"]["params"].items() <= params.items()  # {"state": "REGED"}
    # and what Telnyx's own proxy adds, that the SDK reads: where its call reports go
    assert set(params) == {"state", "call_report_id", "dc", "region"}
    assert params["call_report_id"].startswith(reply["result"]["sessid"] + ".")
    assert state["result"]["sessid"] == reply["result"]["sessid"]
    await ws.close()


def _golden() -> dict[str, Any]:
    """Server frames the real SDK accepted in Chromium (copied from the shared reference)."""
    path = Path(__file__).resolve().parents[1] / "golden" / "captured-frames.json"
    frames = json.loads(path.read_text())["frames"]
    server = [f["frame"] for f in frames if f["dir"] == "S->C" and f["peer"] == "alice"]
    return {"login_result": server[0], "client_ready": server[1], "reged": server[2]}


async def test_password_logins_for_credential_and_connection(api: Api, server: Voxgate) -> None:
    conn = api.connection(
        user_name="pw" + str(int(time.time() * 1000))[-8:], password="password123"
    )
    cred = api.credential(conn["id"])
    c1 = Client(
        server.rtc_url, login=cred["sip_username"], password=cred["sip_password"], reconnect=False
    )
    await c1.connect()
    c2 = Client(server.rtc_url, login=conn["user_name"], password="password123", reconnect=False)
    await c2.connect()
    with pytest.raises(ClientError) as bad:
        await Client(
            server.rtc_url, login=cred["sip_username"], password="wrong-password", reconnect=False
        ).connect()
    assert bad.value.code == -32001 and "wrong-password" not in bad.value.message
    await c1.close()
    await c2.close()


async def test_anonymous_login_needs_an_existing_assistant(api: Api, server: Voxgate) -> None:
    assistant = api.post("/ai/assistants", {"name": "echo bot", "kind": "echo"}).json()["data"]
    c = Client(
        server.rtc_url,
        anonymous_login={
            "target_type": "ai_assistant",
            "target_id": assistant["id"],
            "target_params": {"conversation_id": "conv-1"},
        },
        reconnect=False,
    )
    await c.connect()
    await c.close()
    with pytest.raises(ClientError) as unknown:
        await Client(
            server.rtc_url,
            anonymous_login={"target_type": "ai_assistant", "target_id": "assistant-nope"},
            reconnect=False,
        ).connect()
    assert unknown.value.code == -32001


async def test_refresh_in_place_same_sessid_and_foreign_token_refused(
    api: Api, server: Voxgate
) -> None:
    cred, other = api.credential(), api.credential()
    c = Client(server.rtc_url, login_token=api.token(cred["id"]), reconnect=False)
    sid = await c.connect()
    await c.update_token(api.token(cred["id"]))
    assert c.sessid == sid and c.connections == 1
    with pytest.raises(ClientError) as refused:
        await c.update_token(api.token(other["id"]))
    assert refused.value.code == -32001
    assert (await c.request("telnyx_rtc.ping", {}))["sessid"] == sid  # still alive, unchanged
    await c.close()
    api.wait_audit(cred["id"], "refreshed")


async def test_bad_login_gets_exactly_one_32001_and_no_flood(server: Voxgate) -> None:
    ws, reply = await raw_login(server.rtc_url, {"login_token": "garbage.token.value"})
    assert reply["error"]["code"] == -32001
    assert "garbage" not in reply["error"]["message"]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), 1.0)
    await ws.close()


async def test_unauthenticated_requests_get_32000(server: Voxgate) -> None:
    async with websockets.connect(server.rtc_url + "/any/path?voice_sdk_id=x") as ws:
        await ws.send(
            json.dumps({"jsonrpc": "2.0", "id": "i", "method": "telnyx_rtc.invite", "params": {}})
        )
        assert json.loads(await ws.recv())["error"]["code"] == -32000


async def test_latest_registration_wins_and_older_is_told(api: Api, server: Voxgate) -> None:
    cred = api.credential()
    old = Client(
        server.rtc_url, login_token=api.token(cred["id"]), user_agent="OldTab/1", reconnect=False
    )
    await old.connect()
    assert api.registration(cred["connection_id"])["user_agent"] == "OldTab/1"
    new = Client(
        server.rtc_url, login_token=api.token(cred["id"]), user_agent="NewTab/2", reconnect=False
    )
    await new.connect()
    notice = await old.wait_for("displaced", 5)
    assert (
        notice.data["by"]["user_agent"] == "NewTab/2"
        and notice.data["by"]["address"] == "127.0.0.1"
    )
    status = api.registration(cred["connection_id"])
    assert status["status"] == "Registered" and status["user_agent"] == "NewTab/2"
    assert (await old.request("telnyx_rtc.ping", {}))["message"] == "PONG"  # still connected
    await new.close()
    await old.close()
    api.wait_audit(cred["id"], "displaced")


@pytest.mark.parametrize(
    "how", ["deactivate", "delete", "revoke_tokens", "connection_deactivate", "connection_delete"]
)
async def test_revocation_closes_live_sessions_and_old_tokens_stay_dead(
    api: Api, server: Voxgate, how: str
) -> None:
    cred = api.credential()
    token = api.token(cred["id"])
    c = Client(server.rtc_url, login_token=token)  # reconnect on: a punt must still stop it
    await c.connect()
    if how == "delete":
        api.http.delete(f"/telephony_credentials/{cred['id']}").raise_for_status()
    elif how == "connection_deactivate":
        api.http.patch(
            f"/credential_connections/{cred['connection_id']}", json={"active": False}
        ).raise_for_status()
    elif how == "connection_delete":
        api.http.delete(f"/credential_connections/{cred['connection_id']}").raise_for_status()
    else:
        api.post(f"/telephony_credentials/{cred['id']}/actions/{how}")
    closed = await c.wait_for("closed", 5)  # pushed: nothing polls (a token lives 24 h)
    assert closed.data["punted"] and closed.data["code"] == 4003
    assert (await c.wait_for("revoked", 1)).data["reason"]
    await asyncio.sleep(0.3)
    assert c.connections == 1  # punted: no reconnect
    _, again = await raw_login(server.rtc_url, {"login_token": token})
    assert again["error"]["code"] == -32001
    if how == "deactivate":
        api.post(f"/telephony_credentials/{cred['id']}/actions/activate")
        _, still = await raw_login(server.rtc_url, {"login_token": token})
        assert still["error"]["code"] == -32001  # re-activation does not revive old tokens


async def test_expiry_notice_then_punt_at_exp(make_server: type[Voxgate]) -> None:
    vg = make_server(extra_args=["--expiry-notice", "2"]).start()
    api = api_for(vg)
    expires = datetime.now(UTC) + timedelta(seconds=4)
    cred = api.credential(expires_at=expires.isoformat())
    c = Client(vg.rtc_url, login_token=api.token(cred["id"]))
    await c.connect()
    notice = await c.wait_for("token_expiring_soon", 5)
    assert notice.data["code"] == 34001
    assert 0 < notice.data["expires_in"] <= 2.5
    assert abs(notice.data["server_time"] - time.time()) < 2
    closed = await c.wait_for("closed", 6)
    assert closed.data["code"] == 4002 and closed.data["punted"]
    assert (await c.wait_for("expired", 1)).name == "expired"
    api.wait_audit(cred["id"], "expired")


async def test_refresh_moves_the_server_side_expiry(make_server: type[Voxgate]) -> None:
    vg = make_server(extra_args=["--expiry-notice", "1"]).start()
    api = api_for(vg)
    cred = api.credential()
    # a token that ends soon: the credential's expiry caps it, then we extend the credential
    api.http.patch(
        f"/telephony_credentials/{cred['id']}",
        json={"expires_at": (datetime.now(UTC) + timedelta(seconds=3)).isoformat()},
    ).raise_for_status()
    c = Client(vg.rtc_url, login_token=api.token(cred["id"]))
    await c.connect()
    api.http.patch(
        f"/telephony_credentials/{cred['id']}",
        json={"expires_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()},
    ).raise_for_status()
    await c.update_token(api.token(cred["id"]))
    await asyncio.sleep(4)
    assert (await c.request("telnyx_rtc.ping", {}))["message"] == "PONG"  # outlived the first token
    await c.close()


async def test_bad_frames_limits_and_isolation(server: Voxgate, api: Api) -> None:
    bystander = Client(
        server.rtc_url, login_token=api.token(api.credential()["id"]), reconnect=False
    )
    await bystander.connect()
    async with websockets.connect(server.rtc_url) as ws:
        await ws.send("this is not json")
        assert json.loads(await ws.recv())["error"]["code"] == -32700
        await ws.send(json.dumps([1, 2, 3]))
        assert json.loads(await ws.recv())["error"]["code"] == -32600
    big = websockets.connect(server.rtc_url, max_size=None)
    async with big as ws:
        await ws.send("x" * (70 * 1024))
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1009
    async with websockets.connect(server.rtc_url) as ws:
        ping = json.dumps({"jsonrpc": "2.0", "id": "p", "method": "telnyx_rtc.ping"})
        with pytest.raises(websockets.ConnectionClosed):
            for _ in range(1000):
                await ws.send(ping)
            while True:
                await ws.recv()
        assert ws.close_code == 1008
    assert (await bystander.request("telnyx_rtc.ping", {}))["message"] == "PONG"
    await bystander.close()


async def test_password_throttle_without_user_enumeration(
    api: Api, make_server: type[Voxgate]
) -> None:
    cred = api.credential()
    replies = []
    for login in (cred["sip_username"], "gencredDoesNotExist"):
        _, reply = await raw_login(
            api.vg.rtc_url,
            {"login": login, "passwd": "wrong-password"},
            local_addr=("127.0.0.3", 0),
        )
        replies.append(reply["error"])
    assert replies[0] == replies[1]  # unknown user and wrong password look the same
    for _ in range(10):
        _, reply = await raw_login(
            api.vg.rtc_url,
            {"login": cred["sip_username"], "passwd": "wrong-password"},
            local_addr=("127.0.0.3", 0),
        )
    assert "Too many" in reply["error"]["message"] and reply["error"]["code"] == -32001
    _, locked = await raw_login(
        api.vg.rtc_url,
        {"login": cred["sip_username"], "passwd": cred["sip_password"]},
        local_addr=("127.0.0.4", 0),
    )
    assert locked["error"]["code"] == -32001  # the username is locked, whatever the address
    _, other = await raw_login(
        api.vg.rtc_url,
        {"login": api.credential()["sip_username"], "passwd": "x"},
        local_addr=("127.0.0.3", 0),
    )
    assert "Too many" in other["error"]["message"]  # the address is locked too


async def test_same_token_from_two_addresses_is_flagged(api: Api, server: Voxgate) -> None:
    cred = api.credential()
    token = api.token(cred["id"])
    a, ra = await raw_login(server.rtc_url, {"login_token": token}, local_addr=("127.0.0.5", 0))
    b, rb = await raw_login(server.rtc_url, {"login_token": token}, local_addr=("127.0.0.6", 0))
    assert "result" in ra and "result" in rb
    api.wait_audit(cred["id"], "token_reuse", timeout=3)
    await a.close()
    await b.close()


async def test_client_reconnects_with_the_newest_token(make_server: type[Voxgate]) -> None:
    vg = make_server().start()
    api = api_for(vg)
    cred = api.credential()
    c2 = Client(vg.rtc_url, login_token=api.token(cred["id"]), max_backoff=0.5)
    await c2.connect()
    newer = api.token(cred["id"])
    await c2.update_token(newer)
    vg.stop()
    await c2.wait_for("closed", 5)
    vg.start()
    await c2.wait_for("ready", 15)
    assert c2.connections == 2 and c2.login_token == newer
    await c2.close()


async def test_gateway_metrics(server: Voxgate, api: Api) -> None:
    c = Client(server.rtc_url, login_token=api.token(api.credential()["id"]), reconnect=False)
    await c.connect()
    text = httpx.get(server.api_url + "/metrics").text
    assert 'voxgate_logins_total{method="token",result="ok"}' in text
    assert 'voxgate_sessions{kind="token"}' in text
    await c.close()
