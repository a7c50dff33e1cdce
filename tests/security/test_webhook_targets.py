"""Webhook targets (SSRF) on live servers: an internal URL is refused when it is written (the
official SDK reads the 422), accepted with ``--webhook-allow``, and refused again at delivery,
also when a name's DNS answer changes between the write and the delivery (rebinding).

The rebinding test runs the server in a mount namespace of its own whose /etc/resolv.conf
names a DNS server of the test's (what ``ip netns exec`` does for a namespace's resolv.conf),
so voxgate resolves through the system resolver, as in production, and gets scripted answers.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import httpx
import pytest
import telnyx

from tests.harness import SECRETS, Voxgate
from tests.rtc.conftest import Api, Receiver, api_for
from tests.rtc.test_calls import online, ring

EVENTS_PER_CALL = 6  # call.initiated, call.answered, call.hangup for each of the two legs


def refused_count(vg: Voxgate) -> int:
    for line in httpx.get(vg.api_url + "/metrics").text.splitlines():
        if line.startswith("voxgate_webhooks_refused_total "):
            return int(float(line.split()[1]))
    raise AssertionError("no voxgate_webhooks_refused_total in /metrics")


async def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    for _ in range(int(timeout / 0.1)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def call_once(api: Api, vg: Voxgate, conn_id: str) -> None:
    """An answered, hung-up call between two credentials of the connection."""
    a, b = api.credential(conn_id), api.credential(conn_id)
    alice, bob = await online(api, vg.rtc_url, a), await online(api, vg.rtc_url, b)
    out = await alice.new_call(b["sip_username"])
    incoming = await ring(bob)
    await incoming.answer(sdp="v=0 y")
    await out.wait_state("active")
    await out.hangup()
    await incoming.wait_state("hangup")
    for client in (alice, bob):
        await client.close()


def sdk_error(call: Callable[[], object]) -> dict[str, object]:
    with pytest.raises(telnyx.UnprocessableEntityError) as caught:
        call()
    error: dict[str, object] = caught.value.body["errors"][0]  # type: ignore[index]
    return error


async def test_internal_urls_refused_when_written_allowed_by_option_refused_at_delivery(
    tmp_path: Path, receiver: Receiver
) -> None:
    workdir = tmp_path / "vg"
    strict = Voxgate(workdir).start()
    try:
        sdk = telnyx.Telnyx(api_key=strict.api_key, base_url=strict.base_url, max_retries=0)
        user = {"user_name": "s" + uuid.uuid4().hex[:10], "password": "password123"}
        for url, why in (
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://10.0.0.1:8080/hooks", "private"),
            ("http://[::ffff:127.0.0.1]/hooks", "loopback"),
        ):
            error = sdk_error(
                lambda url=url: sdk.credential_connections.create(
                    connection_name="ssrf", webhook_event_url=url, **user
                )
            )
            assert error["code"] == "10015"
            assert error["source"] == {"pointer": "/webhook_event_url"}
            assert why in str(error["detail"]) and "--webhook-allow" in str(error["detail"])
        conn = sdk.credential_connections.create(connection_name="ssrf", **user).data
        assert conn is not None
        error = sdk_error(
            lambda: sdk.credential_connections.update(conn.id, webhook_event_url=receiver.url)
        )
        assert "127.0.0.1 is a loopback address" in str(error["detail"])
    finally:
        strict.stop()

    allowing = Voxgate(
        workdir, api_key=strict.api_key, extra_args=["--webhook-allow", "127.0.0.0/8"]
    ).start()
    try:
        api = api_for(allowing)
        patched = api.http.patch(
            f"/credential_connections/{conn.id}", json={"webhook_event_url": receiver.url}
        )
        assert patched.status_code == 200, patched.text
        await call_once(api, allowing, conn.id)
        await wait_until(lambda: len(receiver.events) >= EVENTS_PER_CALL, "the deliveries")
        assert refused_count(allowing) == 0
    finally:
        allowing.stop()

    # The same stored URL, a server without the option: every event is refused, none retried.
    again = Voxgate(workdir, api_key=strict.api_key).start()
    try:
        delivered = len(receiver.events)
        await call_once(api_for(again), again, conn.id)
        await wait_until(lambda: refused_count(again) >= EVENTS_PER_CALL, "the refusals")
        await asyncio.sleep(1.5)  # a retry would come after 1 s
        assert refused_count(again) == EVENTS_PER_CALL
        assert len(receiver.events) == delivered
        log = again.log_path.read_text()
        assert "webhook refused" in log and "127.0.0.1 is a loopback address" in log
    finally:
        again.stop()


class ScriptedDns:
    """A DNS server on ``address``:53 (UDP) whose A answers come from ``names``: the answer
    to a name's n-th A query (from 0) is ``names[name](n)``, with TTL 0; AAAA queries get no
    address, other names NXDOMAIN. ``queries`` counts the A queries per name."""

    def __init__(self, address: str) -> None:
        self.names: dict[str, Callable[[int], str]] = {}
        self.queries: Counter[str] = Counter()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            reply = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            if name not in self.names:
                reply.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A:
                answer = self.names[name](self.queries[name])
                self.queries[name] += 1
                reply.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", answer))
            self.sock.sendto(reply.to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@contextmanager
def receivers_on_one_port() -> Iterator[tuple[Receiver, Receiver]]:
    """A receiver on 127.0.0.2 (the one allowed) and one on 127.0.0.1 at the same port, so
    one URL reaches either, by the address its name resolves to."""
    for _ in range(20):
        allowed = Receiver("127.0.0.2")
        try:
            internal = Receiver("127.0.0.1", allowed.httpd.server_address[1])
        except OSError:
            allowed.httpd.shutdown()
            continue
        try:
            yield allowed, internal
        finally:
            allowed.httpd.shutdown()
            internal.httpd.shutdown()
        return
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2")


def own_resolver(resolv_conf: Path) -> list[str]:
    """Runs a command with ``resolv_conf`` as its /etc/resolv.conf (a private mount)."""
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return [
        shutil.which("unshare") or "unshare",
        "--mount",
        "--",
        "sh",
        "-c",
        script,
        str(resolv_conf),
    ]


async def test_a_name_rebound_to_loopback_is_refused_at_delivery(tmp_path: Path) -> None:
    dns_address = f"127.53.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(f"nameserver {dns_address}\noptions timeout:1 attempts:3\n")
    dns_server = ScriptedDns(dns_address)
    # A public-looking answer, then loopback, then again...: an implementation that checks
    # one answer and connects by another reaches the internal receiver on some delivery.
    dns_server.names["hooks.rebind.test"] = lambda n: "127.0.0.1" if n % 2 else "127.0.0.2"
    dns_server.names["internal.rebind.test"] = lambda n: "10.9.8.7"
    vg = Voxgate(
        tmp_path / "vg",
        extra_args=["--webhook-allow", "127.0.0.2/32"],
        wrapper=own_resolver(resolv_conf),
    )
    try:
        with receivers_on_one_port() as (allowed, internal):
            vg.start()
            api = api_for(vg)
            port = allowed.httpd.server_address[1]
            refused = api.http.post(
                "/credential_connections",
                json={
                    "connection_name": "rebind",
                    "webhook_event_url": f"http://internal.rebind.test:{port}/hooks",
                },
            )
            assert refused.status_code == 422
            detail = refused.json()["errors"][0]["detail"]
            assert "10.9.8.7 is a private address (internal.rebind.test resolves to it)" in detail
            literal = api.http.post(
                "/credential_connections",
                json={"connection_name": "rebind", "webhook_event_url": internal.url},
            )
            assert literal.status_code == 422  # 127.0.0.2/32 allows that address only

            secret = "key" + uuid.uuid4().hex
            SECRETS.add(secret)
            url = f"http://hooks.rebind.test:{port}/hooks?key={secret}"
            conn = api.connection(webhook_event_url=url)  # answered 127.0.0.2: accepted
            assert dns_server.queries["hooks.rebind.test"] == 1
            await call_once(api, vg, conn["id"])

            def settled() -> bool:
                return len(allowed.events) + refused_count(vg) >= EVENTS_PER_CALL

            await wait_until(settled, "the deliveries and refusals")
            await asyncio.sleep(1.5)  # a retry would come after 1 s
            assert internal.events == []
            delivered, refusals = len(allowed.events), refused_count(vg)
            assert delivered + refusals == EVENTS_PER_CALL
            assert delivered >= 1 and refusals >= 1
            # once per delivery: the write's query, then one for each event
            assert dns_server.queries["hooks.rebind.test"] == 1 + EVENTS_PER_CALL
            log = vg.log_path.read_text()
            assert "127.0.0.1 is a loopback address (hooks.rebind.test resolves to it)" in log
            assert secret not in log
    finally:
        vg.stop()
        dns_server.close()
