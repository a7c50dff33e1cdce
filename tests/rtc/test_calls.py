"""Calls through the live gateway: routing, causes, latest-wins ringing, relays, webhooks."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import telnyx

from tests.harness import Voxgate
from tests.rtc.conftest import Api, Receiver, api_for
from voxgate.client import Call, Client


async def online(api: Api, url: str, cred: dict[str, Any], ua: str = "py") -> Client:
    c = Client(url, login_token=api.token(cred["id"]), user_agent=ua, reconnect=False)
    await c.connect()
    return c


async def ring(callee: Client) -> Call:
    ev = await callee.wait_for("incoming_call", 5)
    call: Call = ev.data["call"]
    return call


async def test_client_to_client_call_with_hold_dtmf_and_hangup(api: Api, server: Voxgate) -> None:
    conn = api.connection()
    alice_cred, bob_cred = (
        api.credential(conn["id"], name="alice"),
        api.credential(conn["id"], name="bob"),
    )
    alice, bob = (
        await online(api, server.rtc_url, alice_cred),
        await online(api, server.rtc_url, bob_cred),
    )
    out = await alice.new_call(
        bob_cred["sip_username"], sdp="v=0 offer-from-alice", caller_name="Alice"
    )
    incoming = await ring(bob)
    assert incoming.remote_sdp == "v=0 offer-from-alice"
    ev = bob.events[-1].data
    assert ev["caller_id_name"] == "Alice" and ev["callee_id_number"] == bob_cred["sip_username"]
    await out.wait_state("ringing")
    await incoming.answer(sdp="v=0 answer-from-bob")
    await out.wait_state("active")
    assert out.remote_sdp == "v=0 answer-from-bob"
    assert await out.hold() == "held"
    assert await out.unhold() == "active"
    await out.dtmf("1")
    for _ in range(50):
        if incoming.received_dtmf:
            break
        await asyncio.sleep(0.05)
    assert incoming.received_dtmf == ["1"]
    await incoming.hangup()
    await out.wait_state("hangup")
    assert out.cause == "NORMAL_CLEARING" and out.cause_code == 16
    await alice.close()
    await bob.close()


async def test_call_to_a_name_and_failures_carry_causes(api: Api, server: Voxgate) -> None:
    conn = api.connection()
    alice_cred = api.credential(conn["id"])
    offline = api.credential(conn["id"], name="offline-" + conn["id"])
    alice = await online(api, server.rtc_url, alice_cred)
    unknown = await alice.new_call("nobody-here")
    await unknown.wait_state("hangup")
    assert (unknown.cause, unknown.cause_code) == ("UNALLOCATED_NUMBER", 1)
    absent = await alice.new_call(offline["name"])
    await absent.wait_state("hangup")
    assert absent.cause == "SUBSCRIBER_ABSENT"
    await alice.close()


async def test_busy_reject_and_ring_timeout(api: Api, server: Voxgate) -> None:
    conn = api.connection(inbound={"timeout_2xx_secs": 1})
    a, b, c = (api.credential(conn["id"]) for _ in range(3))
    alice, bob, carol = [await online(api, server.rtc_url, x) for x in (a, b, c)]
    first = await alice.new_call(b["sip_username"])
    await ring(bob)
    busy = await carol.new_call(b["sip_username"])
    await busy.wait_state("hangup")
    assert busy.cause == "USER_BUSY" and busy.cause_code == 17
    await first.wait_state("hangup", 5)  # nobody answers within timeout_2xx_secs
    assert first.cause == "NO_ANSWER"
    ended = await bob.wait_for("call_ended", 5)
    assert ended.data["cause"] == "NO_ANSWER"
    second = await alice.new_call(b["sip_username"])
    rung = await ring(bob)
    await rung.hangup("USER_BUSY", 17)  # what the SDK sends when the user rejects
    await second.wait_state("hangup")
    assert second.cause == "USER_BUSY"
    for x in (alice, bob, carol):
        await x.close()


async def test_only_the_latest_registration_rings(api: Api, server: Voxgate) -> None:
    conn = api.connection()
    caller_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    old = await online(api, server.rtc_url, bob_cred, "old")
    new = await online(api, server.rtc_url, bob_cred, "new")
    caller = await online(api, server.rtc_url, caller_cred)
    await caller.new_call(bob_cred["sip_username"])
    await ring(new)
    with pytest.raises(TimeoutError):
        await old.wait_for("incoming_call", 1)
    for x in (old, new, caller):
        await x.close()


async def test_revocation_and_socket_loss_end_the_other_leg(api: Api, server: Voxgate) -> None:
    conn = api.connection()
    a, b = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = await online(api, server.rtc_url, a), await online(api, server.rtc_url, b)
    out = await alice.new_call(b["sip_username"])
    await (await ring(bob)).answer(sdp="v=0 x")
    await out.wait_state("active")
    api.post(f"/telephony_credentials/{b['id']}/actions/deactivate")
    await out.wait_state("hangup", 5)  # bob's revocation sent alice a bye first
    assert out.cause == "NORMAL_CLEARING"
    carol_cred = api.credential(conn["id"])
    carol = await online(api, server.rtc_url, carol_cred)
    again = await alice.new_call(carol_cred["sip_username"])
    await ring(carol)
    await carol.close()  # the socket just goes away
    await again.wait_state("hangup", 5)
    await alice.close()


async def test_anonymous_may_only_call_its_assistant(api: Api, server: Voxgate) -> None:
    bot = api.post("/ai/assistants", {"name": "echo"}).json()["data"]
    anon = Client(
        server.rtc_url,
        anonymous_login={"target_type": "ai_assistant", "target_id": bot["id"]},
        reconnect=False,
    )
    await anon.connect()
    someone = api.credential()
    refused = await anon.new_call(someone["sip_username"])
    await refused.wait_state("hangup")
    assert refused.cause == "CALL_REJECTED" and refused.cause_code == 21
    await anon.close()


async def test_assistant_call_with_real_media_and_conversation(api: Api, server: Voxgate) -> None:
    bot = api.post("/ai/assistants", {"name": "echo", "kind": "echo"}).json()["data"]
    anon = Client(
        server.rtc_url,
        anonymous_login={
            "target_type": "ai_assistant",
            "target_id": bot["id"],
            "target_params": {"conversation_id": "conv-py"},
        },
        reconnect=False,
    )
    await anon.connect()
    call = await anon.new_call("", media=True)
    await call.wait_state("active", 15)
    for _ in range(100):
        if call.received_frames > 20:
            break
        await asyncio.sleep(0.1)
    assert call.received_frames > 20  # our tone came back from the echo assistant
    await call.send_message("hello bot")
    reply = await anon.wait_for("ai_conversation", 5)
    assert reply.data["item"]["content"][0]["text"] == "hello bot"
    await call.hangup()
    await anon.close()


async def test_webhooks_are_signed_and_verify_with_the_official_sdk(
    api: Api, server: Voxgate, receiver: Receiver
) -> None:
    conn = api.connection(webhook_event_url=receiver.url)
    a, b = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = await online(api, server.rtc_url, a), await online(api, server.rtc_url, b)
    out = await alice.new_call(b["sip_username"])
    incoming = await ring(bob)
    await incoming.answer(sdp="v=0 y")
    await out.wait_state("active")
    await out.hangup()
    for _ in range(100):
        kinds = {json.loads(body)["data"]["event_type"] for body, _ in receiver.events}
        hangup_count = sum(b"call.hangup" in body for body, _ in receiver.events)
        if {"call.initiated", "call.answered", "call.hangup"} <= kinds and hangup_count >= 2:
            break
        await asyncio.sleep(0.05)
    public_key = server.cli("keys", "webhook-public-key").stdout.strip()
    client = telnyx.Telnyx(api_key="unused", public_key=public_key, base_url=server.base_url)
    seen = set()
    for body, headers in receiver.events:
        event = client.webhooks.unwrap(body.decode(), headers=headers).to_dict()
        seen.add(event["data"]["event_type"])
        assert event["data"]["payload"]["connection_id"] == conn["id"]
    assert {"call.initiated", "call.answered", "call.hangup"} <= seen
    hangups = [
        json.loads(body)["data"]["payload"] for body, _ in receiver.events if b"call.hangup" in body
    ]
    assert hangups[0]["hangup_cause"] == "normal_clearing"
    # the ids the SDK reads from invite/ringing/answer frames are the webhooks' ids
    by_direction = {h["direction"]: h for h in hangups}
    for call, direction in ((out, "outgoing"), (incoming, "incoming")):
        hook = by_direction[direction]
        assert call.telnyx_ids == {
            "call_control_id": hook["call_control_id"],
            "call_session_id": hook["call_session_id"],
            "call_leg_id": hook["call_leg_id"],
        }
    tampered, headers = receiver.events[0]
    with pytest.raises(ValueError, match="Signature verification failed"):
        client.webhooks.unwrap(tampered.decode().replace("call", "cell"), headers=headers)
    await alice.close()
    await bob.close()


async def test_expiry_grace_lets_a_call_finish(make_server: type[Voxgate]) -> None:
    vg = make_server(extra_args=["--expiry-grace", "30", "--expiry-notice", "1"]).start()
    api = api_for(vg)
    conn = api.connection()
    short = api.credential(
        conn["id"], expires_at=(datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    )
    other = api.credential(conn["id"])
    alice, bob = await online(api, vg.rtc_url, short), await online(api, vg.rtc_url, other)
    out = await alice.new_call(other["sip_username"])
    incoming = await ring(bob)
    await incoming.answer(sdp="v=0 z")
    await out.wait_state("active")
    await asyncio.sleep(4)  # past the token's exp: the call keeps going
    assert (
        out.state == "active" and (await alice.request("telnyx_rtc.ping", {}))["message"] == "PONG"
    )
    await incoming.hangup()
    closed = await alice.wait_for("closed", 5)  # the call ended, so the expired session does too
    assert closed.data["code"] == 4002
    await bob.close()


async def test_the_live_endpoints_show_sessions_calls_and_counts(api: Api, server: Voxgate) -> None:
    """What the console polls: GET /v2/sessions, /v2/calls and /v2/stats, from node reports."""
    conn = api.connection()
    a, b = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = await online(api, server.rtc_url, a), await online(api, server.rtc_url, b)
    out = await alice.new_call(b["sip_username"], sdp="v=0 x")
    incoming = await ring(bob)
    await incoming.answer(sdp="v=0 y")
    await out.wait_state("active")
    calls: list[dict[str, Any]] = []
    for _ in range(50):  # nodes report every 2 s
        calls = [
            c
            for c in api.http.get("/calls").json()["data"]
            if c["to"] == b["sip_username"] and c["state"] == "active"
        ]
        if calls:
            break
        await asyncio.sleep(0.2)
    assert len(calls) == 1 and calls[0]["caller_node"] == calls[0]["callee_node"]
    sessions = api.http.get("/sessions").json()
    assert sessions["meta"]["total_sessions"] >= 2 and sessions["data"][0]["calls"] >= 1
    minutes = api.http.get("/stats").json()["data"]
    assert sum(m["logins_ok"] for m in minutes) >= 2 and minutes[-1]["sessions"] >= 2
    mine = api.http.get("/registrations", params={"filter[connection_id]": conn["id"]}).json()
    assert {r["credential_id"] for r in mine["data"]} == {a["id"], b["id"]}
    await out.hangup()
    await alice.close()
    await bob.close()
