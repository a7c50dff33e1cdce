"""Several processes, one state: an API node and two gateway nodes on Postgres + Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Voxgate, create_pg_database, drop_pg_database
from tests.relay import Relay
from tests.rtc.conftest import Api, api_for
from voxgate.client import Client, ClientError

REDIS = "redis://127.0.0.1:6379/0"


@dataclass
class Cluster:
    api: Voxgate
    node1: Voxgate
    node2: Voxgate
    rest: Api


def member_args(role: str, redis_url: str, prefix: str, node_id: str) -> list[str]:
    """A cluster member's options: its role, the shared Redis and key prefix, its name."""
    return [
        "--role",
        role,
        "--redis-url",
        redis_url,
        "--redis-prefix",
        prefix,
        "--node-id",
        node_id,
    ]


def start_cluster(
    tmp: Path, redis_url: str, *node_args: str, api_args: tuple[str, ...] = ()
) -> tuple[Cluster, str]:
    db = create_pg_database()
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    secret = str(tmp / "shared.secret")
    api = Voxgate(
        tmp / "api",
        database_url=db,
        extra_args=[*member_args("api", redis_url, prefix, "api"), *api_args],
        env={"VOXGATE_SECRET_FILE": secret},
    ).start()
    nodes = []
    for name in ("node1", "node2"):
        vg = Voxgate(
            tmp / name,
            database_url=db,
            extra_args=[*member_args("rtc", redis_url, prefix, name), *node_args],
            env={"VOXGATE_SECRET_FILE": secret},
            api_key=api.api_key,
        )
        nodes.append(vg.start())
    return Cluster(api, nodes[0], nodes[1], api_for(api)), db


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c, db = start_cluster(tmp_path, REDIS)
    yield c
    for vg in (c.node1, c.node2, c.api):
        vg.stop()
    drop_pg_database(db)


async def online(c: Cluster, vg: Voxgate, cred: dict[str, str], **kw: object) -> Client:
    client = Client(vg.rtc_url, login_token=c.rest.token(cred["id"]), **kw)  # type: ignore[arg-type]
    await client.connect()
    return client


async def test_call_across_nodes_latest_wins_and_revocation(cluster: Cluster) -> None:
    c = cluster
    conn = c.rest.connection()
    alice_cred, bob_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
    alice = await online(c, c.node1, alice_cred, reconnect=False)
    bob = await online(c, c.node2, bob_cred, reconnect=False, user_agent="bob-on-node2")
    call = await alice.new_call(bob_cred["sip_username"], sdp="v=0 cross-node offer")
    incoming = (await bob.wait_for("incoming_call", 5)).data["call"]
    assert incoming.remote_sdp == "v=0 cross-node offer"
    await incoming.answer(sdp="v=0 cross-node answer")
    await call.wait_state("active")
    assert call.remote_sdp == "v=0 cross-node answer"
    await call.dtmf("7")
    for _ in range(50):
        if incoming.received_dtmf:
            break
        await asyncio.sleep(0.05)
    assert incoming.received_dtmf == ["7"]
    await incoming.hangup()
    await call.wait_state("hangup")

    # latest wins across nodes: bob again, on node1
    bob_again = await online(c, c.node1, bob_cred, reconnect=False, user_agent="bob-on-node1")
    notice = await bob.wait_for("displaced", 5)
    assert (
        notice.data["by"]["node_id"] == "node1"
        and notice.data["by"]["user_agent"] == "bob-on-node1"
    )
    status = c.rest.registration(conn["id"])
    assert status["node_id"] == "node1" and status["user_agent"] == "bob-on-node1"
    ring = await alice.new_call(bob_cred["sip_username"])
    await bob_again.wait_for("incoming_call", 5)
    await ring.hangup()

    # revocation through the API node closes the credential's sessions on both nodes
    c.rest.post(f"/telephony_credentials/{bob_cred['id']}/actions/deactivate")
    closed = await asyncio.gather(bob.wait_for("closed", 5), bob_again.wait_for("closed", 5))
    assert all(ev.data["code"] == 4003 for ev in closed)
    await alice.close()


async def test_kill9_node_vanishes_and_clients_move(cluster: Cluster) -> None:
    c = cluster
    conn = c.rest.connection()
    cred = c.rest.credential(conn["id"])
    client = Client(
        c.node2.rtc_url,
        login_token=c.rest.token(cred["id"]),
        fallback_urls=[c.node1.rtc_url],
        max_backoff=0.5,
    )
    await client.connect()
    assert c.rest.registration(conn["id"])["node_id"] == "node2"
    os.kill(c.node2.pid, signal.SIGKILL)
    killed = time.monotonic()
    await client.wait_for("closed", 5)
    await client.wait_for("ready", 15)  # logged in again, on node1
    assert client.url == c.node1.rtc_url
    status = c.rest.registration(conn["id"])
    assert status["node_id"] == "node1"
    # and without a client coming back, a dead node's registration expires with its heartbeat
    other = c.rest.credential(conn["id"])
    c.node2.start()
    lonely = Client(c.node2.rtc_url, login_token=c.rest.token(other["id"]), reconnect=False)
    await lonely.connect()
    os.kill(c.node2.pid, signal.SIGKILL)
    killed = time.monotonic()
    while True:
        regs = [
            r for r in [c.rest.registration(conn["id"])] if r.get("credential_id") == other["id"]
        ]
        if not regs:
            break
        assert time.monotonic() - killed < 8, "the dead node's registration outlived its heartbeat"
        await asyncio.sleep(0.25)
    await client.close()


async def test_sigterm_drains_with_1001(cluster: Cluster) -> None:
    c = cluster
    cred = c.rest.credential()
    client = Client(
        c.node1.rtc_url,
        login_token=c.rest.token(cred["id"]),
        fallback_urls=[c.node2.rtc_url],
        max_backoff=0.5,
    )
    await client.connect()
    c.node1.stop()  # SIGTERM
    closed = await client.wait_for("closed", 10)
    assert closed.data["code"] == 1001
    await client.wait_for("ready", 15)
    assert client.url == c.node2.rtc_url
    await client.close()


async def test_redis_restart_fails_closed_then_recovers(
    tmp_path: Path, private_redis: tuple[str, tuple]
) -> None:  # type: ignore[type-arg]
    url, (start_redis, stop_redis) = private_redis
    c, db = start_cluster(tmp_path, url)
    try:
        conn = c.rest.connection()
        live_cred, new_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
        live = await online(c, c.node1, live_cred, reconnect=False)
        doomed_cred = c.rest.credential(conn["id"])
        doomed = await online(c, c.node2, doomed_cred, reconnect=False)
        stop_redis()
        await asyncio.sleep(2.5)  # nodes notice the loss
        with pytest.raises(ClientError) as refused:
            await Client(
                c.node1.rtc_url, login_token=c.rest.token(new_cred["id"]), reconnect=False
            ).connect()
        assert refused.value.code == -32001 and "unavailable" in refused.value.message
        assert (await live.request("telnyx_rtc.ping", {}))[
            "message"
        ] == "PONG"  # live sessions go on
        c.rest.post(f"/telephony_credentials/{doomed_cred['id']}/actions/deactivate")  # event lost
        start_redis()
        closed = await doomed.wait_for("closed", 15)  # the node re-checked its sessions
        assert closed.data["code"] == 4003
        deadline = time.monotonic() + 15
        while True:  # nodes reconnect and take their registrations back
            try:
                fresh = await online(c, c.node2, new_cred, reconnect=False)
                break
            except ClientError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.5)
        regs = {c.rest.registration(conn["id"])["credential_id"]}
        assert regs & {live_cred["id"], new_cred["id"]}
        await fresh.close()
        await live.close()
    finally:
        for vg in (c.node1, c.node2, c.api):
            vg.stop()
        drop_pg_database(db)


async def _call_across(
    c: Cluster, alice: Client, bob_cred: dict[str, str]
) -> tuple[Any, Any, Client]:
    bob = await online(c, c.node2, bob_cred, reconnect=False)
    out = await alice.new_call(bob_cred["sip_username"], sdp="v=0 offer")
    incoming = (await bob.wait_for("incoming_call", 5)).data["call"]
    await incoming.answer(sdp="v=0 answer")
    await out.wait_state("active")
    return out, incoming, bob


async def _still_connected(out: Any, incoming: Any) -> None:
    await out.dtmf("5")
    for _ in range(100):
        if incoming.received_dtmf:
            break
        await asyncio.sleep(0.05)
    assert incoming.received_dtmf == ["5"]
    await incoming.hangup()
    await out.wait_state("hangup")


async def test_a_call_survives_the_kill_of_the_callers_node(cluster: Cluster) -> None:
    """Alice (node1) calls Bob (node2); node1 is killed with SIGKILL. Alice's client comes
    back on node2 with its sessid; node2 adopts the session from Redis, lists the call, and
    the call goes on: DTMF and the hang-up cross between the two as before."""
    c = cluster
    conn = c.rest.connection()
    alice_cred, bob_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
    alice = Client(
        c.node1.rtc_url,
        login_token=c.rest.token(alice_cred["id"]),
        fallback_urls=[c.node2.rtc_url],
        max_backoff=0.5,
    )
    await alice.connect()
    sessid = alice.sessid
    out, incoming, bob = await _call_across(c, alice, bob_cred)
    c.node1.stop(kill=True)
    back = await alice.wait_for("reattached", 20)
    assert (
        back.data["calls"] == [out.id] and alice.sessid == sessid and alice.url == c.node2.rtc_url
    )
    assert incoming.state == "active" and out.state == "active"
    await _still_connected(out, incoming)
    await alice.close()
    await bob.close()


async def test_a_client_moved_to_another_node_takes_its_calls_along(cluster: Cluster) -> None:
    """A load balancer sends Alice's reconnect to node2 while node1 is alive: node2 adopts
    the session and node1 lets it go without a bye to anyone."""
    c = cluster
    conn = c.rest.connection()
    alice_cred, bob_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
    with Relay(c.node1.rtc_port) as lb:
        alice = Client(lb.url, login_token=c.rest.token(alice_cred["id"]), max_backoff=0.5)
        await alice.connect()
        out, incoming, bob = await _call_across(c, alice, bob_cred)
        lb.retarget(c.node2.rtc_port)
        lb.cut()
        back = await alice.wait_for("reattached", 20)
        assert back.data["calls"] == [out.id]
        assert not [e for e in bob.events if e.name == "call_ended"]
        await _still_connected(out, incoming)
        await alice.close()
        await bob.close()


async def test_the_other_party_hears_why_when_a_dead_node_s_caller_never_returns(
    tmp_path: Path,
) -> None:
    """Alice's node is killed and Alice never comes back: nobody holds her leg's timer, so
    Bob's node notices the dead node and, after the reattach window, ends Bob's call with
    RECOVERY_ON_TIMER_EXPIRE instead of leaving him on a silent line."""
    c, db = start_cluster(tmp_path, REDIS, "--reattach-window", "2")
    try:
        conn = c.rest.connection()
        alice_cred, bob_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
        alice = await online(c, c.node1, alice_cred, reconnect=False)
        _out, incoming, bob = await _call_across(c, alice, bob_cred)
        c.node1.stop(kill=True)
        ended = await bob.wait_for("call_ended", 20)  # presence TTL (5 s) + the window (2 s)
        assert ended.data["cause"] == "RECOVERY_ON_TIMER_EXPIRE" and incoming.state == "hangup"
        await bob.close()
    finally:
        for vg in (c.node1, c.node2, c.api):
            vg.stop()
        drop_pg_database(db)


async def test_a_policy_change_takes_effect_on_the_next_login_on_every_node(
    cluster: Cluster,
) -> None:
    """Both nodes have just read the credential (latest_wins) when the API node switches it
    to ring_all: the next logins, on either node, are admitted under ring_all at once, and a
    call forks across the nodes."""
    c = cluster
    conn = c.rest.connection()
    cred, caller_cred = c.rest.credential(conn["id"]), c.rest.credential(conn["id"])
    for vg in (c.node1, c.node2):  # each node caches the credential as it is now
        warm = await online(c, vg, cred, reconnect=False)
        await warm.close()
    r = c.rest.http.patch(
        f"/telephony_credentials/{cred['id']}", json={"registration_policy": "ring_all"}
    )
    r.raise_for_status()
    desk = await online(c, c.node1, cred, reconnect=False, user_agent="desk")
    laptop = await online(c, c.node2, cred, reconnect=False, user_agent="laptop")
    caller = await online(c, c.node1, caller_cred, reconnect=False)
    call = await caller.new_call(cred["sip_username"], sdp="v=0 offer")
    on_desk = (await desk.wait_for("incoming_call", 5)).data["call"]
    on_laptop = (await laptop.wait_for("incoming_call", 5)).data["call"]
    assert not [e for e in desk.events if e.name == "displaced"]
    await on_laptop.answer(sdp="v=0 from the laptop")
    await call.wait_state("active")
    assert call.remote_sdp == "v=0 from the laptop"
    await on_desk.wait_state("hangup")
    assert on_desk.cause == "LOSE_RACE"
    await call.hangup()
    await on_laptop.wait_state("hangup")
    for client in (desk, laptop, caller):
        await client.close()
