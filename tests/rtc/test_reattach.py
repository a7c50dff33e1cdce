"""Calls survive real networks: a dropped socket detaches its session, the client reattaches.

A TCP relay the test controls sits between the client and the gateway (tests/relay.py): a cut
resets the connection with no close frame, a freeze forwards nothing while the socket stays
open. The other party is a plain client on its own socket.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

from tests.harness import Voxgate
from tests.relay import Relay
from tests.rtc.conftest import Api, api_for
from tests.rtc.test_calls import online, ring
from voxgate.client import Call, Client


async def call_up(api: Api, url: str, callee_url: str) -> tuple[Client, Client, Call, Call, dict]:
    """Alice (at ``url``, reconnecting) calls Bob (at ``callee_url``); both are active."""
    conn = api.connection()
    a, b = api.credential(conn["id"]), api.credential(conn["id"])
    alice = Client(url, login_token=api.token(a["id"]), user_agent="alice", reconnect=True)
    await alice.connect()
    bob = await online(api, callee_url, b, ua="bob")
    out = await alice.new_call(b["sip_username"], sdp="v=0 offer")
    incoming = await ring(bob)
    await incoming.answer(sdp="v=0 answer")
    await out.wait_state("active")
    return alice, bob, out, incoming, a


async def test_a_cut_mid_call_reattaches_the_session_and_keeps_the_call(
    api: Api, server: Voxgate
) -> None:
    with Relay(server.rtc_port) as relay:
        alice, bob, out, incoming, cred = await call_up(api, relay.url, server.rtc_url)
        sessid = alice.sessid
        relay.cut()
        back = await alice.wait_for("reattached", 15)
        assert back.data["calls"] == [out.id] and alice.sessid == sessid
        assert out.state == "active" and incoming.state == "active"
        assert not [e for e in bob.events if e.name == "call_ended"]  # Bob heard no bye
        await out.dtmf("7")  # the call goes on over the new socket
        for _ in range(100):
            if incoming.received_dtmf:
                break
            await asyncio.sleep(0.05)
        assert incoming.received_dtmf == ["7"]
        await incoming.hangup()
        await out.wait_state("hangup")
        kinds = api.wait_audit(cred["id"], "reattached")
        assert "detached" in kinds and relay.accepted == 2
        await alice.close()
        await bob.close()


async def test_the_other_side_hears_why_when_nobody_comes_back(
    make_server: type[Voxgate],
) -> None:
    vg = make_server(extra_args=["--reattach-window", "1"]).start()
    api = api_for(vg)
    with Relay(vg.rtc_port) as relay:
        alice, bob, _out, incoming, cred = await call_up(api, relay.url, vg.rtc_url)
        relay.refuse()
        relay.cut()
        ended = await bob.wait_for("call_ended", 10)
        assert ended.data["cause"] == "RECOVERY_ON_TIMER_EXPIRE" and ended.data["causeCode"] == 102
        assert incoming.state == "hangup"
        api.wait_audit(cred["id"], "detach_expired")
        alice.reconnect = False
        await alice.close()
        await bob.close()


async def test_a_call_hung_up_during_the_window_is_not_reattached_and_its_bye_arrives(
    api: Api, server: Voxgate
) -> None:
    with Relay(server.rtc_port) as relay:
        alice, bob, out, incoming, _ = await call_up(api, relay.url, server.rtc_url)
        relay.refuse()
        relay.cut()
        await asyncio.sleep(0.3)  # the gateway noticed the drop
        await incoming.hangup(cause="USER_BUSY", cause_code=17)
        relay.heal()
        back = await alice.wait_for("reattached", 15)
        assert back.data["calls"] == []
        assert out.state == "hangup" and out.cause == "USER_BUSY"  # the held bye, not a guess
        await alice.close()
        await bob.close()


async def _raw_login(url: str, params: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    ws = await websockets.connect(url, compression=None)
    await ws.send(json.dumps({"jsonrpc": "2.0", "id": "L", "method": "login", "params": params}))
    frames = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
    return ws, frames


async def test_a_newer_socket_takes_over_a_session_whose_old_socket_looks_alive(
    api: Api, server: Voxgate
) -> None:
    """The server has not noticed the drop yet (a frozen path): the reconnecting client's
    new socket takes the session over, and the old socket is closed with 4006."""
    with Relay(server.rtc_port) as relay:
        alice, bob, out, incoming, cred = await call_up(api, relay.url, server.rtc_url)
        alice.reconnect = False
        relay.freeze()
        params = {"login_token": api.token(cred["id"]), "reconnection": True}
        ws, (reply, ready) = await _raw_login(server.rtc_url, {**params, "sessid": alice.sessid})
        assert reply["result"]["sessid"] == alice.sessid
        assert ready["method"] == "telnyx_rtc.clientReady"
        assert ready["params"]["reattached_sessions"] == [out.id]
        await incoming.hangup()
        bye = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert bye["method"] == "telnyx_rtc.bye" and bye["params"]["callID"] == out.id
        relay.heal()
        closed = await alice.wait_for("closed", 10)
        assert closed.data["code"] == 4006
        await ws.close()
        await bob.close()


async def test_another_identity_cannot_resume_a_session(api: Api, server: Voxgate) -> None:
    with Relay(server.rtc_port) as relay:
        alice, bob, _out, incoming, _ = await call_up(api, relay.url, server.rtc_url)
        alice.reconnect = False
        relay.refuse()
        relay.cut()
        await asyncio.sleep(0.3)
        stranger = api.credential()
        params = {"login_token": api.token(stranger["id"]), "reconnection": True}
        ws, (reply, ready) = await _raw_login(server.rtc_url, {**params, "sessid": alice.sessid})
        assert reply["result"]["sessid"] != alice.sessid  # a fresh session of its own
        assert ready["params"]["reattached_sessions"] == []
        assert incoming.state == "active"  # Alice's call still waits for Alice
        await ws.close()
        await incoming.hangup()
        await bob.close()


async def test_a_revoked_credential_cannot_reattach_and_its_calls_end(
    api: Api, server: Voxgate
) -> None:
    with Relay(server.rtc_port) as relay:
        alice, bob, _out, _incoming, cred = await call_up(api, relay.url, server.rtc_url)
        relay.refuse()
        relay.cut()
        await asyncio.sleep(0.3)
        api.post(f"/telephony_credentials/{cred['id']}/actions/revoke_tokens")
        await bob.wait_for("call_ended", 5)  # at once, not after the window
        relay.heal()
        err = await alice.wait_for("error", 15)
        assert err.data["code"] == -32001  # the old token no longer logs in
        alice.reconnect = False
        await alice.close()
        await bob.close()


async def test_a_frozen_peer_is_dropped_and_stops_taking_calls(
    make_server: type[Voxgate],
) -> None:
    vg = make_server(extra_args=["--ping-interval", "0.5", "--idle-timeout", "1.5"]).start()
    api = api_for(vg)
    conn = api.connection()
    a, b = api.credential(conn["id"]), api.credential(conn["id"])
    with Relay(vg.rtc_port) as relay:
        alice = Client(relay.url, login_token=api.token(a["id"]), reconnect=False)
        await alice.connect()
        await asyncio.sleep(1.2)  # pings flow while the path is healthy
        assert any(e.name == "ready" for e in alice.events) and alice.ready.is_set()
        relay.freeze()
        # ping interval + idle timeout; without a call it has nothing to reattach: it ends
        api.wait_audit(a["id"], "dropped", timeout=5)
        bob = await online(api, vg.rtc_url, b)
        out = await bob.new_call(a["sip_username"], sdp="v=0")
        ended = await bob.wait_for("call_ended", 3)  # not 90 s of ringing
        assert ended.data["cause"] == "SUBSCRIBER_ABSENT" and out.state == "hangup"
        relay.heal()
        await alice.close()
        await bob.close()


async def test_calls_carry_telnyx_ids_on_both_legs(api: Api, server: Voxgate) -> None:
    alice, bob, out, incoming, _ = await call_up(api, server.rtc_url, server.rtc_url)
    session_id = incoming.telnyx_ids["call_session_id"]
    assert incoming.telnyx_ids == {
        "call_control_id": f"v3:{session_id}:incoming",
        "call_session_id": session_id,
        "call_leg_id": f"{session_id}:incoming",
    }
    assert out.telnyx_ids["call_session_id"] == session_id
    assert out.telnyx_ids["call_control_id"] == f"v3:{session_id}:outgoing"
    await out.hangup()
    alice.reconnect = False
    await alice.close()
    await bob.close()
