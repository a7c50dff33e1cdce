"""The SIP edge: digest REGISTERs per second through voxgate's Kamailio against the same
Kamailio with a static password table, and what a REGISTER costs over a WebRTC login.

The baseline is voxgate's own generated configuration with the three hook calls replaced by
an in-memory table (Kamailio's htable, filled over its control socket): same transports,
same digest and nonce checks, same location table, no voxgate. What voxgate adds is the hook
(an HTTP request on loopback for the HA1, one for the verdict) and its presence write.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import websockets.sync.client

from bench.figures import Row
from bench.harness import (
    LOAD_CORE,
    Server,
    free_port,
    free_udp_port,
    n,
    pin,
    settle,
    start_voxgate,
)
from bench.machine import WATCH
from bench.stats import interleave
from voxgate.sip.rpc import KamailioRpc

__all__ = ["sip_registers"]

DOMAIN = "bench.voxgate.test"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
KAMAILIO = shutil.which("kamailio", path=os.environ.get("PATH", "") + ":/usr/sbin") or (
    "/usr/sbin/kamailio"
)
REGISTER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register">
  <send retrans="500"><![CDATA[
REGISTER sip:{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@{domain}>;tag=[call_number]
To: <sip:[field0]@{domain}>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
Expires: 600
Content-Length: 0

]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
REGISTER sip:{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@{domain}>;tag=[call_number]
To: <sip:[field0]@{domain}>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:[field0]@[local_ip]:[local_port]>
[field1]
Max-Forwards: 70
Expires: 600
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


def _ports() -> dict[str, int]:
    return {"sip": free_udp_port(), "ws": free_port(), "hook": free_port(), "leg": free_udp_port()}


def _static_config(generated: str, sip_port: int, run: Path) -> str:
    """voxgate's configuration, its hook calls replaced by the ``users`` table."""
    text = re.sub(
        r'^\s*\$var\(rc\) = http_client_query\("[^"]*/sip/auth", .*$',
        "\t$var(rc) = 200;\n\t$var(ha1) = $sht(users=>$au);",
        generated,
        flags=re.M,
    )
    text = re.sub(
        r'^\s*\$var\(rc\) = http_client_query\("[^"]*/sip/(register|auth_failed|invite)", .*$',
        "\t$var(rc) = 200;",
        text,
        flags=re.M,
    )
    text = text.replace(
        'modparam("htable", "htable", "banned',
        'modparam("htable", "htable", "users=>size=12;")\nmodparam("htable", "htable", "banned',
    )
    text = re.sub(r"^listen=udp:([^:]+):\d+$", rf"listen=udp:\1:{sip_port}", text, flags=re.M)
    text = re.sub(r"^listen=tcp:.*$", "", text, flags=re.M)  # UDP is what the load uses
    text = re.sub(r'"dgram_socket", "[^"]*"', f'"dgram_socket", "{run / "rpc.sock"}"', text)
    text = re.sub(r'"db_url", "text://[^"]*"', f'"db_url", "text://{run / "db"}"', text)
    return text


async def _fill_table(socket_path: Path, users: list[tuple[str, str]]) -> None:
    """The static Kamailio's password table, through its control socket (voxgate's client)."""
    rpc = KamailioRpc(socket_path)
    try:
        for user, password in users:
            await rpc.call("htable.sets", "users", user, _ha1(user, password))
    finally:
        rpc.close()


def _ha1(user: str, password: str) -> str:
    return hashlib.md5(f"{user}:{DOMAIN}:{password}".encode(), usedforsecurity=False).hexdigest()


def _sipp_rate(port: int, users: Path, work: Path, count: int) -> float:
    """``count`` first registrations (REGISTER, 401, REGISTER with digest, 200) from sipp on
    the load core, 200 at a time; registrations per second of wall time."""
    scenario = work / "register.xml"
    scenario.write_text(REGISTER.format(domain=DOMAIN))
    started = time.monotonic()
    proc = subprocess.run(
        [SIPP, f"127.0.0.1:{port}", "-sf", str(scenario), "-inf", str(users), "-m", str(count),
         "-r", "100000", "-l", "200", "-i", "127.0.0.1", "-p", str(free_udp_port()), "-nostdin",
         "-timeout", "120", "-timeout_error", "-max_socket", "1"],
        capture_output=True, text=True, preexec_fn=pin(LOAD_CORE), timeout=180,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    done = re.search(r"Successful call\s*\|\s*\d+\s*\|\s*(\d+)", proc.stdout)
    if (
        done is None or int(done.group(1)) < 0.95 * count
    ):  # at saturation sipp loses a few to retransmits
        raise RuntimeError(f"sipp failed: {proc.stdout[-1500:]}")
    return int(done.group(1)) / elapsed


def _register_ms(port: int, user: str, password: str, rounds: int) -> float:
    """p50 of a phone's first registration: REGISTER, 401, REGISTER with digest, 200."""
    times = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        local = s.getsockname()[1]
        for i in range(rounds):
            call = uuid.uuid4().hex
            start = time.perf_counter()
            s.sendto(_request(user, local, call, 1, "").encode(), ("127.0.0.1", port))
            challenge = s.recv(65535).decode()
            nonce = re.search(r'nonce="([^"]+)"', challenge)
            assert nonce, challenge
            ha2 = hashlib.md5(f"REGISTER:sip:{DOMAIN}".encode(), usedforsecurity=False)
            cnonce = f"c{i}"
            said = f"{_ha1(user, password)}:{nonce.group(1)}:00000001:{cnonce}:auth:"
            digest = hashlib.md5(
                (said + ha2.hexdigest()).encode(), usedforsecurity=False
            ).hexdigest()
            auth = (
                f'Authorization: Digest username="{user}", realm="{DOMAIN}", '
                f'nonce="{nonce.group(1)}", uri="sip:{DOMAIN}", response="{digest}", '
                f'algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}"\r\n'
            )
            s.sendto(_request(user, local, call, 2, auth).encode(), ("127.0.0.1", port))
            reply = s.recv(65535).decode()
            assert reply.startswith("SIP/2.0 200"), reply[:200]
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _request(user: str, port: int, call: str, cseq: int, auth: str) -> str:
    return (
        f"REGISTER sip:{DOMAIN} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call}{cseq}\r\n"
        f"From: <sip:{user}@{DOMAIN}>;tag={call}\r\nTo: <sip:{user}@{DOMAIN}>\r\n"
        f"Call-ID: {call}\r\nCSeq: {cseq} REGISTER\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{port}>\r\n{auth}"
        "Max-Forwards: 70\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    )


def _login_ms(rtc: str, token: str, rounds: int) -> float:
    """p50 of a WebRTC token login: connect, login, the reply (same machine, same core)."""
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        with websockets.sync.client.connect(rtc) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": str(i), "method": "login",
                                "params": {"login_token": token}}))  # fmt: skip
            reply = json.loads(ws.recv(5))
            assert "result" in reply, reply
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def sip_registers(work: Path, key: str) -> list[Row]:
    ports = _ports()
    args = ["--sip", "--sip-domain", DOMAIN, "--sip-port", str(ports["sip"]),
            "--sip-ws-port", str(ports["ws"]), "--sip-hook-port", str(ports["hook"]),
            "--sip-leg-port", str(ports["leg"]),
            "--sip-dir", str(work / "sip"), "--sip-flood-limit", "0"]  # fmt: skip
    (work / "sipnode").mkdir(exist_ok=True)
    node, api, rtc = start_voxgate(work / "sipnode", key, args)
    run = work / "static"
    (run / "db").mkdir(parents=True, exist_ok=True)
    for table in ("version", "location", "location_attrs"):
        shutil.copy(Path("/usr/share/kamailio/dbtext/kamailio") / table, run / "db" / table)
    static_port = free_udp_port()
    cfg = run / "kamailio.cfg"
    cfg.write_text(_static_config((work / "sip" / "kamailio.cfg").read_text(), static_port, run))
    argv = [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-m", "64", "-M", "8", "-Y", str(run)]
    static = Server("static kamailio", [*argv, "-P", str(run / "pid")])
    try:
        for _ in range(100):
            if (run / "rpc.sock").exists():
                break
            time.sleep(0.1)
        count = n(3000)
        users = _provision(api, key, n(200))
        csv = work / "users.csv"
        csv.write_text(
            "SEQUENTIAL\n"
            + "".join(f"{u};[authentication username={u} password={p}]\n" for u, p in users)
        )
        asyncio.run(_fill_table(run / "rpc.sock", users))
        WATCH.track("kamailio (voxgate's)", *_children(node.proc.pid))
        settle(node.proc.pid)
        ours, bare = interleave(
            "sip registers",
            lambda: _sipp_rate(static_port, csv, work, count),
            lambda: _sipp_rate(ports["sip"], csv, work, count),
        )
        user, password = users[0]
        rounds = n(300)
        latency, login = interleave(
            "sip register latency",
            lambda: _login_ms(rtc, _token(api, key, user), rounds),
            lambda: _register_ms(ports["sip"], user, password, rounds),
        )
        static_ms = _register_ms(static_port, user, password, rounds)
    finally:
        static.stop()
        node.stop()
    hook_ms = latency.median - static_ms
    return [
        Row(
            "SIP REGISTERs/s (digest, sipp, 200 at a time)",
            ours,
            "/s",
            bare,
            "/s same Kamailio, static table",
            "information",
            None,
            f"{ours.median / bare.median:.0%} of the static table's rate; per REGISTER "
            "voxgate answers two hook requests (HA1, verdict) and writes presence",
        ),
        Row(
            "SIP REGISTER (401 + 200) p50",
            latency,
            "ms p50",
            login,
            "ms p50 WebRTC login",
            "information",
            None,
            f"static-table Kamailio {static_ms:.2f} ms: voxgate's hook adds {hook_ms:.2f} ms "
            "(two loopback HTTP requests to the hook, the presence write)",
        ),
    ]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _provision(api: str, key: str, count: int) -> list[tuple[str, str]]:
    with httpx.Client(base_url=api + "/v2", headers={"Authorization": f"Bearer {key}"}) as http:
        conn = http.post("/credential_connections", json={"connection_name": "sip"}).json()
        users = []
        for _ in range(count):
            body = {"connection_id": conn["data"]["id"], "registration_policy": "ring_all"}
            cred = http.post("/telephony_credentials", json=body).json()["data"]
            users.append((cred["sip_username"], cred["sip_password"]))
        return users


def _token(api: str, key: str, user: str) -> str:
    with httpx.Client(base_url=api + "/v2", headers={"Authorization": f"Bearer {key}"}) as http:
        creds = http.get("/telephony_credentials", params={"filter[sip_username]": user})
        cred_id = creds.json()["data"][0]["id"]
        return http.post(f"/telephony_credentials/{cred_id}/token").text
