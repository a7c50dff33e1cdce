"""Postgres failover: a primary and a streaming standby started with docs/deployment.md's own
commands (this test's directory and ports), an API node and a gateway node on the multi-host
URL from the same page, REST writes and logins while the primary stops and the standby is
promoted. Every write answered 2xx is in the promoted database, every other one was a clear
503, logins come back, and the audit trail of every acknowledged mint and login is complete."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.cluster.test_cluster import REDIS, member_args
from tests.harness import SECRETS, Voxgate, free_port
from voxgate.client import Client, ClientError

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "deployment.md"
PG = "/usr/lib/postgresql/15/bin"
DOC_DIR, DOC_PRIMARY, DOC_STANDBY = "/var/lib/voxgate-pg", "5433", "5434"


def guide_block(tag: str) -> str:
    """The guide's ```bash <tag> block, verbatim."""
    found = re.search(rf"^```bash {tag}\n(.*?)^```", GUIDE.read_text(), re.M | re.S)
    assert found, f"docs/deployment.md has no `bash {tag}` block"
    return found[1]


@dataclass
class PgPair:
    """A primary and its standby as the guide starts them, in a directory of the postgres user's
    (initdb refuses root), on free loopback ports; the machine's own Postgres is not touched."""

    root: Path = field(default_factory=lambda: Path(f"/tmp/vgpg-{uuid.uuid4().hex[:10]}"))
    primary: int = field(default_factory=free_port)
    standby: int = field(default_factory=free_port)

    def here(self, text: str) -> str:
        return (
            text.replace(DOC_DIR, str(self.root))
            .replace(DOC_PRIMARY, str(self.primary))
            .replace(DOC_STANDBY, str(self.standby))
        )

    def bash(self, script: str) -> None:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            cwd="/",
        )
        assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"

    def url(self) -> str:
        export = shlex.split(self.here(guide_block("pg-url")))
        return export[1].split("=", 1)[1]

    def rows(self, sql: str) -> list[str]:
        out = subprocess.run(
            [f"{PG}/psql", "-h", "127.0.0.1", "-p", str(self.standby), "-U", "postgres",
             "-d", "voxgate", "-AtXc", sql],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        return out.stdout.splitlines()

    def stop(self) -> None:
        for data in ("primary", "standby"):
            if (self.root / data / "postmaster.pid").exists():
                subprocess.run(
                    ["runuser", "-u", "postgres", "--", f"{PG}/pg_ctl",
                     f"--pgdata={self.root / data}", "--mode=immediate", "--wait", "stop"],
                    capture_output=True, timeout=60,
                )  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def pg_pair() -> Iterator[PgPair]:
    pair = PgPair()
    try:
        pair.bash(pair.here(guide_block("pg-standby")))
        yield pair
    finally:
        pair.stop()


@dataclass
class Tally:
    """What the load saw: acknowledged writes, and how every other one was answered."""

    credentials: dict[str, str] = field(default_factory=dict)  # id -> name, answered 201
    names_acked: list[str] = field(default_factory=list)  # PATCHed connection names, in order
    names_unsure: list[str] = field(default_factory=list)  # PATCHes answered 503 after the last ack
    minted: list[str] = field(default_factory=list)  # jtis of tokens answered 201
    logins: list[str] = field(default_factory=list)  # jtis of logins answered "logged in"
    refused: list[str] = field(default_factory=list)  # -32001 messages
    failures: list[tuple[int, str, str | None]] = field(
        default_factory=list
    )  # status, title, retry
    logins_after: int = 0  # successful logins after the promotion


def jti(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])


async def writes(http: httpx.AsyncClient, conn_id: str, tally: Tally, stop: asyncio.Event) -> None:
    """Creates credentials and renames the connection, one request at a time, until told."""
    for i in range(100_000):
        if stop.is_set():
            return
        name = f"w{i}-{uuid.uuid4().hex[:6]}"
        if i % 2:
            r = await http.post(
                "/telephony_credentials", json={"connection_id": conn_id, "name": name}
            )
            if r.status_code == 201:
                tally.credentials[r.json()["data"]["id"]] = name
        else:
            r = await http.patch(
                f"/credential_connections/{conn_id}", json={"connection_name": name}
            )
            if r.status_code == 200:
                tally.names_acked.append(name)
                tally.names_unsure.clear()
            else:
                tally.names_unsure.append(name)
        if r.status_code >= 300:
            error = r.json()["errors"][0]
            tally.failures.append((r.status_code, error["title"], r.headers.get("retry-after")))
            await asyncio.sleep(0.05)


async def logins(
    http: httpx.AsyncClient, rtc_url: str, cred_id: str, tally: Tally, promoted: asyncio.Event,
    stop: asyncio.Event,
) -> None:  # fmt: skip
    """Mints a token and logs in with it, again and again; the mint is a write (its audit)."""
    token: str | None = None
    for _ in range(100_000):
        if stop.is_set():
            return
        r = await http.post(f"/telephony_credentials/{cred_id}/token")
        if r.status_code == 201:
            token = r.text
            SECRETS.add(token)
            tally.minted.append(jti(token))
        else:
            error = r.json()["errors"][0]
            tally.failures.append((r.status_code, error["title"], r.headers.get("retry-after")))
        if token is None:
            continue
        client = Client(rtc_url, login_token=token, reconnect=False)
        try:
            await client.connect(timeout=15)
            tally.logins.append(jti(token))
            tally.logins_after += promoted.is_set()
        except ClientError as exc:
            tally.refused.append(f"{exc.code}: {exc.message}")
            await asyncio.sleep(0.1)
        finally:
            await client.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_switchover_loses_no_acknowledged_write_and_logins_resume(
    pg_pair: PgPair, tmp_path: Path, mode: str
) -> None:
    """``fast`` is the guide's switchover; ``immediate`` stops the primary without a word to the
    standby, which is a crash as far as the data knows (synchronous replication covers it)."""
    url = pg_pair.url()
    prefix = f"vxtest:{uuid.uuid4().hex[:10]}:"
    env = {"VOXGATE_SECRET_FILE": str(tmp_path / "shared.secret")}
    api = Voxgate(tmp_path / "api", database_url=url, env=env,
                  extra_args=member_args("api", REDIS, prefix, "api"))  # fmt: skip
    node = Voxgate(tmp_path / "node", database_url=url, env=env, api_key=api.api_key,
                   extra_args=member_args("rtc", REDIS, prefix, "node"))  # fmt: skip
    try:
        api.start()
        node.start()
        await run_switchover(pg_pair, api, node, mode)
    finally:
        node.stop()
        api.stop()
    for vg in (api, node):  # stopped cleanly: their queues were written, nothing dropped
        assert "audit events dropped" not in vg.log_path.read_text()


async def run_switchover(pair: PgPair, api: Voxgate, node: Voxgate, mode: str) -> None:
    headers = {"Authorization": f"Bearer {api.api_key}"}
    async with httpx.AsyncClient(base_url=api.base_url, headers=headers, timeout=30) as http:
        r = await http.post("/credential_connections", json={"connection_name": "failover"})
        conn_id = r.json()["data"]["id"]
        cred_id = (
            await http.post("/telephony_credentials", json={"connection_id": conn_id})
        ).json()["data"]["id"]
        token = (await http.post(f"/telephony_credentials/{cred_id}/token")).text
        SECRETS.add(token)
        live = Client(node.rtc_url, login_token=token, reconnect=False)
        await live.connect()

        tally, promoted, stop = Tally(), asyncio.Event(), asyncio.Event()
        load = [
            asyncio.create_task(writes(http, conn_id, tally, stop)),
            asyncio.create_task(logins(http, node.rtc_url, cred_id, tally, promoted, stop)),
        ]
        try:
            await until(lambda: len(tally.credentials) >= 5 and len(tally.logins) >= 3, 30)
            lines = pair.here(guide_block("pg-switchover")).replace("--mode=fast", f"--mode={mode}")
            define, stop_primary, promote = lines.strip().splitlines()
            await asyncio.to_thread(pair.bash, f"{define}\n{stop_primary}")
            # The standby is promoted once the load has met the outage on both paths: a write
            # answered 503 and a login refused (the login cache is 2 s old at most).
            await until(lambda: bool(tally.failures) and bool(tally.refused), 30)
            await asyncio.to_thread(pair.bash, f"{define}\n{promote}")
            promoted.set()
            acked_before = len(tally.credentials)
            await until(
                lambda: tally.logins_after >= 3 and len(tally.credentials) >= acked_before + 5, 60
            )
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*load), 60)
        assert (await live.request("telnyx_rtc.ping", {}))["message"] == "PONG"  # went on
        await live.close()
        metrics = (await http.get(api.api_url + "/metrics")).text
        assert 'voxgate_audit_events{state="dropped"} 0.0' in metrics  # queued, none dropped

    # every failure was a clear 503, never a 500, and every refused login said why
    assert {(status, title) for status, title, _ in tally.failures} == {
        (503, "Service unavailable")
    }, tally.failures
    assert all(retry is not None and int(retry) >= 1 for _, _, retry in tally.failures)
    assert all("unavailable" in message for message in tally.refused), tally.refused
    # every acknowledged write is in the promoted database
    stored = dict(
        line.split("|", 1) for line in pair.rows("SELECT id, name FROM telephony_credentials")
    )
    assert {i: stored.get(i) for i in tally.credentials} == tally.credentials
    (name,) = pair.rows(
        f"SELECT connection_name FROM credential_connections WHERE id = '{conn_id}'"
    )
    assert name in [tally.names_acked[-1], *tally.names_unsure]
    # and so is the audit trail of every acknowledged mint and login, retried across the outage
    wanted = {("token_minted", j) for j in tally.minted} | {("login_ok", j) for j in tally.logins}
    query = f"SELECT kind, details FROM audit_events WHERE credential_id = '{cred_id}'"
    written: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 30
    while not wanted <= written and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        written = {
            (kind, json.loads(details).get("jti", ""))
            for kind, details in (line.split("|", 1) for line in pair.rows(query))
        }
    assert wanted <= written, sorted(wanted - written)[:5]


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the load did not get there in time"
        await asyncio.sleep(0.05)
