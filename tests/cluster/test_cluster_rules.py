"""Rules that hold on every node: token reuse seen across nodes, a call report taken by a node
that does not hold its session, a killed node's session records swept, a revoked token refused
everywhere. An API node and two gateway nodes on Postgres + Redis, as in ``test_cluster.py``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import telnyx
import websockets

from tests.cluster.test_cluster import REDIS, Cluster, online, start_cluster
from tests.harness import Voxgate, drop_pg_database
from tests.rtc.conftest import Receiver
from tests.rtc.test_call_reports import report
from tests.rtc.test_gateway import raw_login
from tests.rtc.test_registrations import ask, gone

# Every gateway node's extra options, in one place.
ALLOW_RECEIVER = ("--webhook-allow", "127.0.0.0/8")  # the test's webhook receiver, on loopback
NODE_ARGS: tuple[str, ...] = ("--reattach-window", "2", *ALLOW_RECEIVER)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Cluster]:
    c, db = start_cluster(tmp_path, REDIS, *NODE_ARGS, api_args=ALLOW_RECEIVER)
    yield c
    for vg in (c.node1, c.node2, c.api):
        vg.stop()
    drop_pg_database(db)


def prefix_of(vg: Voxgate) -> str:
    return vg.extra_args[vg.extra_args.index("--redis-prefix") + 1]


async def test_one_token_on_two_nodes_from_two_addresses_is_revoked_everywhere(
    nodes: Cluster, receiver: Receiver
) -> None:
    """The same token from 127.0.0.1 on node 1 and 127.0.0.2 on node 2 (each node sees one
    session only): both sessions end, the reuse and the revocation are audited, the webhook
    is sent, and the token is refused on both nodes from then on."""
    c = nodes
    conn = c.rest.connection(on_token_reuse="revoke_token", webhook_event_url=receiver.url)
    cred = c.rest.credential(conn["id"])
    token = c.rest.token(cred["id"])
    login = {"login_token": token}
    a, ra = await raw_login(c.node1.rtc_url, login, local_addr=("127.0.0.1", 0))
    b, rb = await raw_login(c.node2.rtc_url, login, local_addr=("127.0.0.2", 0))
    assert "result" in ra and "result" in rb
    for ws in (a, b):
        frames = await gone(ws, timeout=10)
        assert frames[-1]["method"] == "telnyx_rtc.punt"
        assert ws.close_code == 4003
    kinds = c.rest.wait_audit(cred["id"], "token_revoked")
    assert "token_reuse" in kinds
    for vg in (c.node1, c.node2):
        _, again = await raw_login(vg.rtc_url, login)
        assert again["error"]["code"] == -32001 and "revoked" in again["error"]["message"]
    fresh = await online(c, c.node2, cred, reconnect=False)  # a new token of it still works
    await fresh.close()
    for _ in range(200):
        if receiver.events:
            break
        await asyncio.sleep(0.05)
    body, headers = receiver.events[0]
    public_key = c.api.cli("keys", "webhook-public-key").stdout.strip()
    client = telnyx.Telnyx(api_key="unused", public_key=public_key, base_url=c.api.base_url)
    event = client.webhooks.unwrap(body.decode(), headers=headers).to_dict()["data"]
    assert event["event_type"] == "credential.token_reuse_detected"
    assert sorted(event["payload"]["addresses"]) == ["127.0.0.1", "127.0.0.2"]
    assert len(receiver.events) == 1  # detected once, by the node that saw the second login


async def test_a_refresh_on_one_node_is_not_reuse_of_a_token_held_on_the_other(
    nodes: Cluster,
) -> None:
    """A session refreshes with a new token: it no longer holds the old one, so that token
    from another address on the other node is nobody's reuse; the new one from there is."""
    c = nodes
    conn = c.rest.connection(on_token_reuse="audit")
    cred = c.rest.credential(conn["id"])
    old, new = c.rest.token(cred["id"]), c.rest.token(cred["id"])
    a, _ = await raw_login(c.node1.rtc_url, {"login_token": old}, local_addr=("127.0.0.3", 0))
    assert "result" in await ask(a, "login", {"login_token": new})  # a refresh
    b, rb = await raw_login(c.node2.rtc_url, {"login_token": old}, local_addr=("127.0.0.4", 0))
    assert "result" in rb
    await asyncio.sleep(1.0)  # what an audit of the old token's reuse would have taken
    assert "token_reuse" not in c.rest.audit_kinds(cred["id"])
    d, rd = await raw_login(c.node2.rtc_url, {"login_token": new}, local_addr=("127.0.0.5", 0))
    assert "result" in rd
    c.rest.wait_audit(cred["id"], "token_reuse")
    for ws in (a, b, d):
        await ws.close()


def post_report(vg: Voxgate, report_id: str, call_id: str, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/json", "x-call-report-id": report_id}
    return httpx.post(
        f"http://127.0.0.1:{vg.rtc_port}/call_report",
        content=body,
        headers={**headers, "x-call-id": call_id},
    )


async def test_a_call_report_posted_to_the_other_node_is_kept(nodes: Cluster) -> None:
    """Alice is on node 1; her SDK's uploads reach node 2 (a load balancer): during the call
    and after it ended, they are taken and kept; another session's call is still refused."""
    c = nodes
    conn = c.rest.connection()
    alice, bob_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
    bob = await online(c, c.node2, bob_cred, reconnect=False)
    ws = await websockets.connect(c.node1.rtc_url)
    assert "result" in await ask(ws, "login", {"login_token": c.rest.token(alice["id"])})
    reged = (await ask(ws, "telnyx_rtc.gatewayState", {}))["result"]["params"]
    rid, call_id = reged["call_report_id"], "c-cross-node-1"
    invite = {
        "sdp": "v=0",
        "dialogParams": {"callID": call_id, "destination_number": bob_cred["sip_username"]},
    }
    await ask(ws, "telnyx_rtc.invite", invite)
    incoming = (await bob.wait_for("incoming_call", 5)).data["call"]
    during = post_report(c.node2, rid, call_id, report(call_id, final=False))
    assert during.status_code == 201, during.text
    theirs = post_report(c.node2, rid, incoming.id, report(incoming.id, final=True))
    assert theirs.status_code == 403
    await ws.close()  # the call ends with Alice's session; her final report comes after
    await incoming.wait_state("hangup")
    final = post_report(c.node2, rid, call_id, report(call_id, final=True))
    assert final.status_code == 201, final.text
    listed = c.rest.http.get("/call_reports", params={"filter[call_id]": call_id}).json()
    assert sorted(r["final"] for r in listed["data"]) == [False, True]
    assert {r["credential_id"] for r in listed["data"]} == {alice["id"]}
    await bob.close()


async def test_a_killed_node_leaves_no_session_record_once_its_presence_expired(
    nodes: Cluster,
) -> None:
    """Alice (node 1) is in a call with Bob (node 2), so her session is kept in Redis for a
    reconnect (for up to a day). Node 1 is killed and Alice never comes back: once node 1's
    heartbeat is gone, the record is left the reattach window (2 s here), then dropped."""
    c = nodes
    conn = c.rest.connection()
    alice_cred, bob_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
    alice = await online(c, c.node1, alice_cred, reconnect=False)
    bob = await online(c, c.node2, bob_cred, reconnect=False)
    out = await alice.new_call(bob_cred["sip_username"], sdp="v=0 offer")
    incoming = (await bob.wait_for("incoming_call", 5)).data["call"]
    await incoming.answer(sdp="v=0 answer")
    await out.wait_state("active")
    r = redis.Redis.from_url(REDIS, decode_responses=True)
    key = f"{prefix_of(c.node1)}sess:{alice.sessid}"
    try:
        for _ in range(100):
            if r.exists(key):
                break
            await asyncio.sleep(0.05)
        record: dict[str, Any] = json.loads(r.get(key) or "{}")
        assert record["node"] == "node1" and r.pttl(key) > 3_600_000  # kept for a day
        c.node1.stop(kill=True)
        deadline = time.monotonic() + 30  # heartbeat (5 s) + a sweep (5 s) + the window (2 s)
        while r.exists(key):
            assert time.monotonic() < deadline, "the dead node's session record outlived it"
            await asyncio.sleep(0.25)
        assert not r.exists(f"{prefix_of(c.node1)}sessions:node1")
    finally:
        r.close()
    await bob.close()
