"""The Redis bus through Sentinel: it follows the master the Sentinels name, and after a
failover it runs its reconnect hooks (presence back, revocations re-read) and hears events
again. The failover here is the first drill of docs/deployment.md, its commands read from
there (``SENTINEL FAILOVER``): the old master lives on, demoted to a replica, which is the
case a kill does not show."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.sentinel import MASTER_NAME, Sentinels
from tests.store.test_bus import reg
from voxgate.bus.base import BusEvent, Revoked
from voxgate.bus.redis import RedisBus
from voxgate.bus.target import RedisTarget
from voxgate.domain.registrations import TELNYX_RULE

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def drill_commands() -> list[list[str]]:
    """The first bash block under "Failure drills", as the guide gives it."""
    section = GUIDE.read_text().split("### Failure drills", 1)[1]
    block = re.search(r"^```bash\n(.*?)^```", section, re.M | re.S)
    assert block is not None, "docs/deployment.md: no drill block"
    return [shlex.split(line) for line in block[1].splitlines() if line.strip()]


def run_as_documented(command: list[str], sentinels: Sentinels) -> str:
    """The guide's command against this test's Sentinel: its port and master name."""
    assert command[:3] == ["redis-cli", "-p", "26379"], command
    port = str(sentinels.sentinel_ports[0])
    words = [port if w == "26379" else MASTER_NAME if w == "voxgate" else w for w in command]
    env = {**os.environ, "REDISCLI_AUTH": sentinels.sentinel_password}
    done = subprocess.run(words, capture_output=True, text=True, env=env, timeout=10)
    return ":".join(done.stdout.split())


def bus_on(sentinels: Sentinels, node_id: str, prefix: str) -> RedisBus:
    target = RedisTarget(
        sentinels=tuple(("127.0.0.1", port) for port in sentinels.sentinel_ports),
        master_name=MASTER_NAME,
        password=sentinels.password,
        sentinel_password=sentinels.sentinel_password,
    )
    return RedisBus(target, node_id=node_id, prefix=prefix, node_ttl=2.0)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_the_bus_follows_a_sentinel_failover_drill(sentinels: Sentinels) -> None:
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    a, b = bus_on(sentinels, "n1", prefix), bus_on(sentinels, "n2", prefix)
    heard: list[BusEvent] = []

    async def hear(event: BusEvent) -> None:
        heard.append(event)

    b.subscribe(hear)
    await a.start()
    await b.start()
    try:
        await a.register(reg("cred:x", "s1", "n1"), TELNYX_RULE)
        where, failover, where_now = drill_commands()
        assert run_as_documented(where, sentinels) == f"127.0.0.1:{sentinels.master_port}"
        assert run_as_documented(failover, sentinels) == "OK"

        async def failed_over() -> bool:
            now = run_as_documented(where_now, sentinels)
            return now == f"127.0.0.1:{sentinels.replica_port}"

        await until(failed_over)

        async def recovered() -> bool:
            return a.recoveries >= 1 and b.recoveries >= 1

        await until(recovered)
        assert "role:slave" in sentinels.ask(sentinels.master_port, "info", "replication")
        assert [r.session_id for r in await b.registrations("cred:x")] == ["s1"]
        await a.register(reg("cred:y", "s2", "n1"), TELNYX_RULE)  # writes go to the new master
        assert sentinels.ask(sentinels.replica_port, "exists", prefix + "regs:cred:y") == "1"
        event = Revoked(("cred:x",), "after the drill")

        async def heard_it() -> bool:
            await a.publish(event)
            return event in heard

        await until(heard_it, 10)
    finally:
        await a.close()
        await b.close()
