"""Many devices, one identity: registration policies, the cap, forked calls, token reuse.

Each test sets the policy over REST (the way an operator would) and checks what the gateway
does with real sockets: who is refused, who rings, who gets the call, who hears LOSE_RACE.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import telnyx
import websockets

from tests.harness import Voxgate
from tests.rtc.conftest import Api, Receiver
from tests.rtc.test_calls import online, ring
from tests.rtc.test_gateway import raw_login
from voxgate.client import Call, Client


def patch(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.http.patch(path, json=body)
    r.raise_for_status()
    data: dict[str, Any] = r.json()["data"]
    return data


async def gone(ws: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every frame the server sends until it closes the socket."""
    frames = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return frames


async def ask(ws: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A request on a raw socket, and its reply (frames the server says meanwhile skipped)."""
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "q", "method": method, "params": params}))
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame.get("id") == "q" and "method" not in frame:
            return frame


def test_policies_are_set_over_rest_validated_and_read_by_the_official_sdk(
    api: Api, server: Voxgate
) -> None:
    conn = api.connection()
    assert (conn["registration_policy"], conn["max_registrations"], conn["on_token_reuse"]) == (
        "latest_wins",
        None,
        "audit",
    )
    cred = api.credential(conn["id"])
    assert cred["registration_policy"] is None and cred["max_registrations"] is None
    path = f"/telephony_credentials/{cred['id']}"
    changed = patch(api, path, {"registration_policy": "ring_all", "max_registrations": 3})
    assert (changed["registration_policy"], changed["max_registrations"]) == ("ring_all", 3)
    bad = api.http.patch(path, json={"registration_policy": "everyone"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["source"]["pointer"] == "/registration_policy"
    bad = api.http.patch(path, json={"max_registrations": 0})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["source"]["pointer"] == "/max_registrations"
    bad = api.http.patch(f"/credential_connections/{conn['id']}", json={"on_token_reuse": "x"})
    assert bad.status_code == 422
    client = telnyx.Telnyx(api_key=server.api_key, base_url=server.base_url, max_retries=0)
    read = client.telephony_credentials.retrieve(cred["id"]).data
    assert read is not None and read.id == cred["id"]
    assert read.to_dict()["registration_policy"] == "ring_all"
    connection = client.credential_connections.retrieve(conn["id"]).data
    assert connection is not None and connection.to_dict()["on_token_reuse"] == "audit"
    reverted = patch(api, path, {"registration_policy": None})
    assert reverted["registration_policy"] is None  # back to the connection's


async def test_first_wins_refuses_a_second_device_once_and_the_first_keeps_ringing(
    api: Api, server: Voxgate
) -> None:
    conn = api.connection(registration_policy="first_wins")
    cred, caller_cred = api.credential(conn["id"]), api.credential(conn["id"])
    first = await online(api, server.rtc_url, cred, ua="DeskPhone/1")
    ws, reply = await raw_login(server.rtc_url, {"login_token": api.token(cred["id"])})
    assert reply["error"]["code"] == -32001
    assert "DeskPhone/1" in reply["error"]["message"]
    assert "first_wins" in reply["error"]["message"]
    after = await gone(ws)
    assert [f.get("method") for f in after] == ["telnyx_rtc.punt"]  # the SDK stops there
    assert ws.close_code == 4007
    api.wait_audit(cred["id"], "login_failed")
    assert api.registration(conn["id"])["user_agent"] == "DeskPhone/1"
    caller = await online(api, server.rtc_url, caller_cred)
    out = await caller.new_call(cred["sip_username"], sdp="v=0 offer")
    incoming = await ring(first)
    await incoming.answer(sdp="v=0 answer")
    await out.wait_state("active")
    await out.hangup()
    await first.close()
    # once the first device is gone, the next one gets in
    again = await online(api, server.rtc_url, cred, ua="Laptop/2")
    await again.close()
    await caller.close()


async def test_a_cap_displaces_the_oldest_under_latest_wins(api: Api, server: Voxgate) -> None:
    cred = api.credential()
    patch(api, f"/telephony_credentials/{cred['id']}", {"max_registrations": 2})
    one = await online(api, server.rtc_url, cred, ua="one")
    two = await online(api, server.rtc_url, cred, ua="two")
    assert not [e for e in one.events if e.name == "displaced"]  # two fit under the cap
    three = await online(api, server.rtc_url, cred, ua="three")
    notice = await one.wait_for("displaced", 5)
    assert notice.data["by"]["user_agent"] == "three"
    assert not [e for e in two.events if e.name == "displaced"]
    for c in (one, two, three):
        await c.close()


async def ring_all(api: Api, server: Voxgate, webhook: str | None = None) -> tuple[Any, ...]:
    fields = {"webhook_event_url": webhook} if webhook else {}
    conn = api.connection(**fields)
    cred = api.credential(conn["id"], registration_policy="ring_all")
    caller_cred = api.credential(conn["id"])
    devices = [await online(api, server.rtc_url, cred, ua=f"tab{i}") for i in range(3)]
    caller = await online(api, server.rtc_url, caller_cred, ua="caller")
    return cred, devices, caller


async def test_ring_all_rings_every_device_and_the_first_answer_takes_the_call(
    api: Api, server: Voxgate, receiver: Receiver
) -> None:
    _cred, devices, caller = await ring_all(api, server, receiver.url)
    out = await caller.new_call(_cred["sip_username"], sdp="v=0 offer")
    calls: list[Call] = [await ring(d) for d in devices]
    assert {c.remote_sdp for c in calls} == {"v=0 offer"}
    assert len({c.id for c in calls}) == 3  # one leg per device
    await calls[1].answer(sdp="v=0 answer-from-tab1")
    await out.wait_state("active")
    assert out.remote_sdp == "v=0 answer-from-tab1"
    for lost in (calls[0], calls[2]):
        await lost.wait_state("hangup")
        assert (lost.cause, lost.cause_code) == ("LOSE_RACE", 502)
    await out.dtmf("5")  # the call runs between the caller and the device that answered
    for _ in range(50):
        if calls[1].received_dtmf:
            break
        await asyncio.sleep(0.05)
    assert calls[1].received_dtmf == ["5"]
    await out.hangup()
    await calls[1].wait_state("hangup")
    for _ in range(100):
        kinds = [json.loads(b)["data"]["event_type"] for b, _ in receiver.events]
        if kinds.count("call.hangup") >= 2:
            break
        await asyncio.sleep(0.05)
    # one call, one answered leg: each event once per direction (the connection is on both)
    seen = [
        (json.loads(b)["data"]["event_type"], json.loads(b)["data"]["payload"]["direction"])
        for b, _ in receiver.events
    ]
    assert sorted(seen) == sorted(
        (kind, d)
        for kind in ("call.initiated", "call.answered", "call.hangup")
        for d in ("incoming", "outgoing")
    )
    for c in (*devices, caller):
        await c.close()


async def test_ring_all_ends_the_call_when_every_device_declines(api: Api, server: Voxgate) -> None:
    cred, devices, caller = await ring_all(api, server)
    out = await caller.new_call(cred["sip_username"], sdp="v=0 offer")
    calls = [await ring(d) for d in devices]
    await calls[0].hangup()
    await calls[1].hangup()
    await asyncio.sleep(0.3)
    assert out.state == "ringing"  # one device still rings
    await calls[2].hangup()
    await out.wait_state("hangup")
    assert out.cause == "NORMAL_CLEARING"
    for c in (*devices, caller):
        await c.close()


async def test_a_caller_that_gives_up_stops_every_device_ringing(api: Api, server: Voxgate) -> None:
    cred, devices, caller = await ring_all(api, server)
    out = await caller.new_call(cred["sip_username"], sdp="v=0 offer")
    calls = [await ring(d) for d in devices]
    await out.hangup()
    for c in calls:
        await c.wait_state("hangup")
    for c in (*devices, caller):
        await c.close()


async def test_connection_logins_ring_every_device(api: Api, server: Voxgate) -> None:
    conn = api.connection()
    caller_cred = api.credential(conn["id"])
    phones = [
        Client(server.rtc_url, login=conn["user_name"], password=conn["password"], reconnect=False)
        for _ in range(2)
    ]
    for p in phones:
        await p.connect()
    caller = await online(api, server.rtc_url, caller_cred)
    out = await caller.new_call(conn["user_name"], sdp="v=0 offer")
    calls = [await ring(p) for p in phones]
    await calls[0].answer(sdp="v=0 answer")
    await out.wait_state("active")
    await calls[1].wait_state("hangup")
    assert calls[1].cause == "LOSE_RACE"
    await out.hangup()
    for c in (*phones, caller):
        await c.close()


async def test_token_reuse_revokes_the_token_and_both_sessions(
    api: Api, server: Voxgate, receiver: Receiver
) -> None:
    conn = api.connection(on_token_reuse="revoke_token", webhook_event_url=receiver.url)
    cred = api.credential(conn["id"])
    token = api.token(cred["id"])
    a, ra = await raw_login(server.rtc_url, {"login_token": token}, local_addr=("127.0.0.1", 0))
    b, rb = await raw_login(server.rtc_url, {"login_token": token}, local_addr=("127.0.0.2", 0))
    assert "result" in ra and "result" in rb
    for ws in (a, b):
        frames = await gone(ws)
        assert frames[-1]["method"] == "telnyx_rtc.punt"
        assert ws.close_code == 4003
    _, again = await raw_login(server.rtc_url, {"login_token": token})
    assert again["error"]["code"] == -32001 and "revoked" in again["error"]["message"]
    fresh = await online(api, server.rtc_url, cred)  # a new token of the credential works
    await fresh.close()
    kinds = api.wait_audit(cred["id"], "token_revoked")
    assert "token_reuse" in kinds
    for _ in range(100):
        if receiver.events:
            break
        await asyncio.sleep(0.05)
    body, headers = receiver.events[0]
    public_key = server.cli("keys", "webhook-public-key").stdout.strip()
    client = telnyx.Telnyx(api_key="unused", public_key=public_key, base_url=server.base_url)
    event = client.webhooks.unwrap(body.decode(), headers=headers).to_dict()["data"]
    assert event["event_type"] == "credential.token_reuse_detected"
    payload = event["payload"]
    assert payload["credential_id"] == cred["id"] and payload["action"] == "revoke_token"
    assert sorted(payload["addresses"]) == ["127.0.0.1", "127.0.0.2"]
    assert token not in body.decode()


async def test_deactivate_credential_on_reuse_cuts_the_credential_off(
    api: Api, server: Voxgate
) -> None:
    conn = api.connection(on_token_reuse="deactivate_credential")
    cred = api.credential(conn["id"])
    token = api.token(cred["id"])
    a, _ = await raw_login(server.rtc_url, {"login_token": token}, local_addr=("127.0.0.3", 0))
    b, _ = await raw_login(server.rtc_url, {"login_token": token}, local_addr=("127.0.0.4", 0))
    await gone(a)
    await gone(b)
    status = api.http.get(f"/telephony_credentials/{cred['id']}").json()["data"]["status"]
    assert status == "inactive"


async def test_a_refresh_and_a_reattach_from_a_new_address_are_not_reuse(
    api: Api, server: Voxgate
) -> None:
    conn = api.connection(on_token_reuse="revoke_token")
    cred = api.credential(conn["id"])
    token = api.token(cred["id"])
    ws, reply = await raw_login(server.rtc_url, {"login_token": token}, local_addr=("127.0.0.7", 0))
    sessid = reply["result"]["sessid"]
    assert "result" in await ask(ws, "login", {"login_token": token})  # a refresh
    callee_cred = api.credential(conn["id"])  # a call up: only a session with one reattaches
    callee = await online(api, server.rtc_url, callee_cred)
    dialog = {"callID": "c-reuse", "destination_number": callee_cred["sip_username"]}
    await ask(ws, "telnyx_rtc.invite", {"sdp": "v=0", "dialogParams": dialog})
    await ring(callee)
    ws.transport.abort()  # the network drops: no close frame, the session detaches
    resumed = {"login_token": token, "reconnection": True, "sessid": sessid}
    back, again = await raw_login(server.rtc_url, resumed, local_addr=("127.0.0.8", 0))
    assert again["result"]["sessid"] == sessid  # reattached from another address
    api.wait_audit(cred["id"], "reattached")
    await asyncio.sleep(0.5)
    assert (await ask(back, "telnyx_rtc.ping", {}))["result"]["message"] == "PONG"  # still open
    kinds = api.audit_kinds(cred["id"])
    assert "token_reuse" not in kinds and "token_revoked" not in kinds
    await back.close()
    await callee.close()


def test_the_cli_sets_and_clears_the_policies(api: Api, server: Voxgate) -> None:
    conn = api.connection()
    cred = api.credential(conn["id"])
    out = server.cli(
        "credentials",
        "update",
        cred["id"],
        "--registration-policy",
        "ring_all",
        "--max-registrations",
        "4",
    )
    shown = json.loads(out.stdout)
    assert (shown["registration_policy"], shown["max_registrations"]) == ("ring_all", 4)
    read = api.http.get(f"/telephony_credentials/{cred['id']}").json()["data"]
    assert (read["registration_policy"], read["max_registrations"]) == ("ring_all", 4)
    cleared = server.cli(
        "credentials", "update", cred["id"], "--registration-policy", "default"
    ).stdout
    assert json.loads(cleared)["registration_policy"] is None
    conn_out = server.cli(
        "connections", "update", conn["id"], "--on-token-reuse", "revoke_token"
    ).stdout
    assert json.loads(conn_out)["on_token_reuse"] == "revoke_token"
    bad = server.cli(
        "credentials", "update", cred["id"], "--registration-policy", "nobody", check=False
    )
    assert bad.returncode == 1 and "registration_policy" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
