"""The SIP edge in a cluster: an API node and two gateway nodes, each with its own Kamailio, on
Postgres + Redis. One presence across nodes and protocols: a SIP REGISTER on one node displaces
a WebRTC session on the other and the other way round, and a deactivation through the API node
removes the credential's SIP contacts from every node's Kamailio."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.test_cluster import member_args
from tests.harness import SECRETS, Voxgate, create_pg_database, drop_pg_database, free_port
from tests.rtc.conftest import Api, api_for
from tests.rtc.test_calls import online
from tests.sip.peers import (
    DOMAIN,
    SipNode,
    Sipp,
    free_udp_port,
    register_scenario,
    registrations,
    sip_args,
    wait_for,
)

REDIS = "redis://127.0.0.1:6379/0"

pytestmark = pytest.mark.timeout(120)


@dataclass
class SipCluster:
    api: Voxgate
    node1: SipNode
    node2: SipNode
    rest: Api
    db: str

    @property
    def processes(self) -> list[Voxgate]:
        return [self.node1.vg, self.node2.vg, self.api]


def start_sip_cluster(tmp: Path, redis_url: str = REDIS) -> SipCluster:
    """As tests/cluster/test_cluster.py's ``start_cluster``, with a SIP edge on each gateway
    node (its own SIP/WS/hook ports and --sip-dir) and one SIP domain on all three processes.
    Whatever started is stopped, and the database dropped, if a later step fails."""
    db = create_pg_database()
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    secret = str(tmp / "shared.secret")
    started: list[Voxgate] = []
    try:
        api = Voxgate(
            tmp / "api",
            database_url=db,
            extra_args=[*member_args("api", redis_url, prefix, "api"), "--sip-domain", DOMAIN],
            env={"VOXGATE_SECRET_FILE": secret},
        )
        started.append(api)
        api.start()
        nodes: list[SipNode] = []
        for name in ("node1", "node2"):
            sip_port, ws_port, hook_port = free_udp_port(), free_port(), free_port()
            vg = Voxgate(tmp / name, database_url=db, api_key=api.api_key)
            vg.env = {"VOXGATE_SECRET_FILE": secret}
            vg.extra_args = [
                *member_args("rtc", redis_url, prefix, name),
                *sip_args(sip_port, ws_port, hook_port, vg.workdir),
            ]
            started.append(vg)
            nodes.append(SipNode(vg, sip_port, ws_port, hook_port).start())
    except BaseException:
        for vg in reversed(started):
            vg.stop()
        drop_pg_database(db)
        raise
    return SipCluster(api, nodes[0], nodes[1], api_for(api), db)


def stop_sip_cluster(c: SipCluster) -> None:
    c.rest.http.close()
    for vg in c.processes:
        vg.stop()
    drop_pg_database(c.db)


@pytest.fixture(scope="module")
def sip_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipCluster]:
    """One cluster for the module's tests (each works on credentials of its own)."""
    c = start_sip_cluster(tmp_path_factory.mktemp("sipcluster"))
    yield c
    stop_sip_cluster(c)


def _credential(c: SipCluster, **fields: Any) -> dict[str, Any]:
    cred = c.rest.credential(None, **fields)
    SECRETS.add(cred["sip_password"])
    return cred


def _regs(c: SipCluster, cred: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /v2/registrations`` on the API node, for one credential."""
    return registrations(c.api, c.api.api_key, credential_id=cred["id"])


def _unregistered(c: SipCluster, cred: dict[str, Any], count: int) -> list[str]:
    """The reasons of the credential's ``sip_unregistered`` audit rows, once ``count`` are in
    (each node writes its own, off the signaling path)."""
    reasons: list[str] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = c.rest.http.get(
            f"/telephony_credentials/{cred['id']}/audit", params={"page[size]": 250}
        )
        r.raise_for_status()
        reasons = sorted(
            e["details"]["reason"] for e in r.json()["data"] if e["kind"] == "sip_unregistered"
        )
        if len(reasons) >= count:
            break
        time.sleep(0.1)
    return reasons


def _diagnostics(c: SipCluster) -> str:
    """The tails of every node's voxgate.log and kamailio.log, for an assertion's message."""
    parts = []
    for node in (c.node1, c.node2):
        for path in (node.vg.log_path, node.sip_dir / "kamailio.log"):
            text = path.read_text(errors="replace") if path.exists() else "(none)"
            parts.append(f"--- {path}\n{text[-3000:]}")
    return "\n".join(parts)


async def _register(
    c: SipCluster, node: SipNode, tmp: Path, cred: dict[str, Any], **kw: Any
) -> Sipp:
    tmp.mkdir(parents=True, exist_ok=True)
    sipp = Sipp(tmp, node.sip_port)
    scenario = register_scenario(cred["sip_username"], cred["sip_password"], **kw)
    res = await asyncio.to_thread(sipp.run, scenario)
    assert res.returncode == 0, f"{res.stdout}\n{sipp.messages()}\n{_diagnostics(c)}"
    return sipp


async def test_a_sip_register_on_node1_displaces_webrtc_on_node2_and_back(
    sip_cluster: SipCluster, tmp_path: Path
) -> None:
    c = sip_cluster
    cred = _credential(c)  # latest_wins, the default
    user = cred["sip_username"]
    page = await online(c.rest, c.node2.vg.rtc_url, cred, ua="WebPage/1")
    again = None
    try:
        assert [(r["node_id"], r["transport"]) for r in _regs(c, cred)] == [("node2", "WSS")]

        # a SIP phone registers through node1's Kamailio: the page on node2 is displaced
        await _register(c, c.node1, tmp_path, cred)
        notice = await page.wait_for("displaced", 10)
        by = notice.data["by"]
        assert by["node_id"] == "node1" and by["user_agent"] == f"sipp-{user}", by
        assert len(c.node1.contacts(user)) == 1
        assert c.node2.contacts(user) == []
        regs = _regs(c, cred)
        assert [(r["node_id"], r["transport"], r["user_agent"]) for r in regs] == [
            ("node1", "udp", f"sipp-{user}")
        ], regs

        # the page logs in again on node2: latest wins, node1 removes the phone's contact
        again = await online(c.rest, c.node2.vg.rtc_url, cred, ua="WebPage/2")
        gone = await asyncio.to_thread(wait_for, lambda: c.node1.contacts(user) == [], 10)
        assert gone, f"{c.node1.table()}\n{_diagnostics(c)}"
        regs = _regs(c, cred)
        assert [(r["node_id"], r["transport"], r["user_agent"]) for r in regs] == [
            ("node2", "WSS", "WebPage/2")
        ], regs
        assert await asyncio.to_thread(_unregistered, c, cred, 1) == ["displaced"]
        assert "sip_registered" in c.rest.audit_kinds(cred["id"])
        assert not [e for e in again.events if e.name == "displaced"]
    finally:
        if again is not None:
            await again.close()
        await page.close()


async def test_a_deactivation_on_the_api_node_removes_the_contacts_on_both_nodes(
    sip_cluster: SipCluster, tmp_path: Path
) -> None:
    c = sip_cluster
    cred = _credential(c, registration_policy="ring_all")
    user = cred["sip_username"]
    phone1 = await _register(c, c.node1, tmp_path / "n1", cred)
    phone2 = await _register(c, c.node2, tmp_path / "n2", cred)
    page = await online(c.rest, c.node1.vg.rtc_url, cred, ua="Tab/1")
    try:
        assert len(c.node1.contacts(user)) == 1 and len(c.node2.contacts(user)) == 1

        # the API node lists both nodes' SIP registrations (and the page), from one presence
        regs = _regs(c, cred)
        sip = sorted(
            (r["node_id"], r["transport"], r["ip_address"]) for r in regs if r["transport"] != "WSS"
        )
        assert sip == [("node1", "udp", phone1.address), ("node2", "udp", phone2.address)], regs
        assert [r["node_id"] for r in regs if r["transport"] == "WSS"] == ["node1"], regs
        assert {r["registration_policy"] for r in regs} == {"ring_all"}
        assert not [e for e in page.events if e.name == "displaced"]

        # one deactivation through the API node: every node's Kamailio lets the contact go
        started = time.monotonic()
        c.rest.post(f"/telephony_credentials/{cred['id']}/actions/deactivate")

        def both_gone() -> bool:
            return c.node1.contacts(user) == [] and c.node2.contacts(user) == []

        assert await asyncio.to_thread(wait_for, both_gone, 10), (
            f"{c.node1.table()}\n{c.node2.table()}\n{_diagnostics(c)}"
        )
        elapsed = time.monotonic() - started
        assert elapsed < 5, elapsed
        closed = await page.wait_for("closed", 5)
        assert closed.data["code"] == 4003
        assert await asyncio.to_thread(wait_for, lambda: not _regs(c, cred), 5), _regs(c, cred)
        assert await asyncio.to_thread(_unregistered, c, cred, 2) == ["revoked", "revoked"]
        # and the password no longer registers on either node
        for node, where in ((c.node1, "n1b"), (c.node2, "n2b")):
            await _register(c, node, tmp_path / where, cred, expect=403)
        assert c.node1.contacts(user) == [] and c.node2.contacts(user) == []
    finally:
        await page.close()
