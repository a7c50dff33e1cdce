"""A cluster on Redis Sentinel: an API node and two gateway nodes on Postgres, and a Redis
master, its replica and three Sentinels of the test's own (tests/sentinel.py). The master is
killed with SIGKILL; the Sentinels promote the replica and voxgate follows."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.test_cluster import Cluster, online
from tests.harness import Voxgate, create_pg_database, drop_pg_database, serve_refused
from tests.rtc.conftest import api_for
from tests.sentinel import MASTER_NAME, Sentinels
from voxgate.client import Client, ClientError


@pytest.fixture
def cluster(tmp_path: Path, sentinels: Sentinels) -> Iterator[tuple[Cluster, str]]:
    """node1 reads the Sentinels from VOXGATE_REDIS_SENTINEL (space-separated), the others
    from repeated --redis-sentinel options; the passwords come from the environment."""
    db = create_pg_database()
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    env = {"VOXGATE_SECRET_FILE": str(tmp_path / "shared.secret"), **sentinels.node_env()}
    started: list[Voxgate] = []

    def member(name: str, role: str, api_key: str, by_env: bool = False) -> Voxgate:
        args = ["--role", role, "--redis-prefix", prefix, "--node-id", name]
        extra = {"VOXGATE_REDIS_SENTINEL": " ".join(sentinels.addresses)} if by_env else {}
        args += ["--redis-master-name", MASTER_NAME] if by_env else sentinels.node_args()
        vg = Voxgate(
            tmp_path / name, api_key, database_url=db, extra_args=args, env={**env, **extra}
        )
        started.append(vg)
        return vg.start()

    try:
        api = member("api", "api", "KEYtest" + uuid.uuid4().hex)
        node1 = member("node1", "rtc", api.api_key, by_env=True)
        node2 = member("node2", "rtc", api.api_key)
        yield Cluster(api, node1, node2, api_for(api)), prefix
    finally:
        for vg in started:
            vg.stop()
        drop_pg_database(db)


async def login_soon(c: Cluster, vg: Voxgate, cred: dict[str, str], within: float) -> Client:
    """A new login on ``vg``, retried while it is refused (fail closed) until ``within``."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await online(c, vg, cred, reconnect=False)
        except (ClientError, TimeoutError, OSError):
            assert time.monotonic() < deadline, f"no login on {vg.rtc_url} within {within} s"
            await asyncio.sleep(0.25)


async def test_a_failover_keeps_sessions_and_calls_and_the_cluster_works_after_it(
    cluster: tuple[Cluster, str], sentinels: Sentinels
) -> None:
    c, prefix = cluster
    conn = c.rest.connection()
    cred = {n: c.rest.credential(conn["id"]) for n in ("alice", "bob", "carol", "dave", "erin")}
    fresh = {n: c.rest.credential(conn["id"]) for n in ("new1", "new2")}
    alice = await online(c, c.node1, cred["alice"], reconnect=False)
    bob = await online(c, c.node2, cred["bob"], reconnect=False)
    carol = await online(c, c.node2, cred["carol"], reconnect=False)
    dave = await online(c, c.node1, cred["dave"], reconnect=False)
    erin = await online(c, c.node2, cred["erin"], reconnect=False)
    call = await alice.new_call(cred["bob"]["sip_username"], sdp="v=0 offer")
    incoming = (await bob.wait_for("incoming_call", 5)).data["call"]
    await incoming.answer(sdp="v=0 answer")
    await call.wait_state("active")

    # The replica missed the last writes: everyone's registration and the call's session
    # records are gone from it (a writable replica's own deletions are not replicated).
    replica = sentinels.replica_port
    sentinels.ask(replica, "config", "set", "replica-read-only", "no")
    lost = [
        k
        for k in sentinels.ask(replica, "--scan", "--pattern", prefix + "*").split()
        if k.startswith((prefix + "regs:", prefix + "sess:"))
    ]
    assert len(lost) >= 7, lost  # 5 principals, 2 sessions with a call
    sentinels.ask(replica, "del", *lost)

    sentinels.kill(sentinels.master_port)
    new1, new2 = await asyncio.gather(
        login_soon(c, c.node1, fresh["new1"], 15), login_soon(c, c.node2, fresh["new2"], 15)
    )
    assert sentinels.master() == f"127.0.0.1:{replica}"

    # nothing live was torn down: every session answers, the call carries DTMF both ways
    everyone = (alice, bob, carol, dave, erin)
    for client in everyone:
        assert (await client.request("telnyx_rtc.ping", {}))["message"] == "PONG"
    assert call.state == "active" and incoming.state == "active"
    await call.dtmf("5")
    await incoming.dtmf("6")
    for _ in range(100):
        if incoming.received_dtmf and call.received_dtmf:
            break
        await asyncio.sleep(0.05)
    assert incoming.received_dtmf == ["5"] and call.received_dtmf == ["6"]
    assert not [e for cl in everyone for e in cl.events if e.name in ("closed", "call_ended")]
    # the nodes put back what the promoted replica had lost
    for sessid in (alice.sessid, bob.sessid):
        assert sentinels.ask(replica, "exists", f"{prefix}sess:{sessid}") == "1"

    # a call crosses nodes, to a session registered before the failover
    ring = await new1.new_call(cred["erin"]["sip_username"], sdp="v=0 after")
    answered = (await erin.wait_for("incoming_call", 5)).data["call"]
    await answered.answer(sdp="v=0 answer after")
    await ring.wait_state("active")
    await ring.hangup()
    await answered.wait_state("hangup")

    # a revocation through the API node closes the sockets on a gateway node
    c.rest.post(f"/telephony_credentials/{cred['carol']['id']}/actions/deactivate")
    assert (await carol.wait_for("closed", 5)).data["code"] == 4003

    # a displacement crosses nodes: dave again, on node2, displaces dave on node1
    dave_again = await online(c, c.node2, cred["dave"], reconnect=False, user_agent="dave-2")
    notice = await dave.wait_for("displaced", 5)
    assert notice.data["by"]["node_id"] == "node2"

    await incoming.hangup()
    await call.wait_state("hangup")
    for client in (alice, bob, dave, erin, new1, new2, dave_again):
        await client.close()


async def test_a_revocation_made_while_no_master_is_known_takes_effect_once_one_is(
    cluster: tuple[Cluster, str], sentinels: Sentinels
) -> None:
    c, _prefix = cluster
    conn = c.rest.connection()
    keep_cred, doomed_cred, later_cred = (c.rest.credential(conn["id"]) for _ in range(3))
    keep = await online(c, c.node1, keep_cred, reconnect=False)
    doomed = await online(c, c.node2, doomed_cred, reconnect=False)

    sentinels.freeze(sentinels.replica_port, True)  # no replica to promote: no master at all
    try:
        sentinels.kill(sentinels.master_port)
        deadline = time.monotonic() + 15
        while True:  # logins fail closed, with the same error as a lost --redis-url
            try:
                probe = await online(c, c.node2, later_cred, reconnect=False)
                await probe.close()
            except ClientError as refused:
                assert refused.code == -32001 and "unavailable" in refused.message
                break
            assert time.monotonic() < deadline, "logins were not refused without a master"
            await asyncio.sleep(0.25)
        c.rest.post(f"/telephony_credentials/{doomed_cred['id']}/actions/deactivate")
        assert (await keep.request("telnyx_rtc.ping", {}))["message"] == "PONG"
        await asyncio.sleep(1)
        assert not [e for e in doomed.events if e.name == "closed"]  # nobody could tell it
    finally:
        sentinels.freeze(sentinels.replica_port, False)
    closed = await doomed.wait_for("closed", 30)  # once the replica is promoted
    assert closed.data["code"] == 4003
    later = await login_soon(c, c.node2, later_cred, 30)
    assert (await keep.request("telnyx_rtc.ping", {}))["message"] == "PONG"
    await later.close()
    await keep.close()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["--redis-url", "redis://127.0.0.1:6379/0", "--redis-sentinel", "127.0.0.1:26379"],
            "--redis-url and --redis-sentinel: give one",
        ),
        (["--redis-sentinel", "127.0.0.1"], "expected HOST:PORT"),
        (["--redis-sentinel", "127.0.0.1:0"], "expected HOST:PORT"),
    ],
)
def test_redis_options_that_name_no_single_redis_are_refused(
    tmp_path: Path, args: list[str], said: str
) -> None:
    serve_refused(tmp_path, args, said)
