"""Calls to phone numbers through the operator's SIP trunk (issue 28): what going out to the
carrier adds to a call's setup, against a call between two WebRTC sessions of the same voxgate,
in the same run.

A WebRTC session (voxgate's Python client) of a connection whose ``outbound.trunk_id`` is a
trunk dials a New York number; voxgate's SIP leg sends the INVITE through its Kamailio to the
trunk's host, where a sipp stands for the carrier, answering each call at once (100, 180, 200
with SDP, no digest challenge), then hearing our BYE. Interleaved with the same session calling
another WebRTC session of the connection (the client, answering on the invite), as ``calls``
does for phones registered to voxgate.

Measured: from the session's ``telnyx_rtc.invite`` to the answer (the call active). Not to the
carrier's 180: voxgate does not relay a phone leg's 180 to the caller as an event of its own
(the session hears ``telnyx_rtc.ringing`` when the call is routed, before the INVITE leaves),
so the first thing the session hears from the carrier is the 200, sent right after the 180.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.calls import _auto_answer, _online, setup_rows, setups_against_webrtc, sip_node_args
from bench.figures import Row
from bench.harness import LOAD_CORE, free_udp_port, n, pin, start_voxgate
from bench.machine import WATCH
from bench.sip import SIPP
from bench.stats import REPEATS

__all__ = ["trunk_calls"]

NUMBER = "+12125551234"  # a valid New York number: in the default whitelist (US, CA)
CALLER_ID = "+12025550143"
WARM_UP = 5  # first calls of each kind, slower, not timed
ROUNDS = 200  # calls per sample at scale 1

# -- the carrier (sipp) ----------------------------------------------------------------------


def _reply(status: str, *, tag: bool = True, sdp: bool = False, retrans: bool = False) -> str:
    body = (
        "v=0\n"
        "o=carrier [call_number] 1 IN IP4 [local_ip]\n"
        "s=-\n"
        "c=IN IP4 [media_ip]\n"
        "t=0 0\n"
        "m=audio [media_port] RTP/AVP 0 101\n"
        "a=rtpmap:0 PCMU/8000\n"
        "a=rtpmap:101 telephone-event/8000\n"
        "a=fmtp:101 0-16\n"
        "a=ptime:20\n"
        "a=sendrecv\n"
        if sdp
        else ""
    )
    lines = (
        f"SIP/2.0 {status}\n"
        "[last_Via:]\n"
        "[last_From:]\n"
        f"[last_To:]{';tag=[pid]carrier[call_number]' if tag else ''}\n"
        "[last_Call-ID:]\n"
        "[last_CSeq:]\n"
        "[last_Record-Route:]\n"
        "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n"
        f"{'Content-Type: application/sdp' + chr(10) if sdp else ''}"
        "Content-Length: [len]\n"
        f"\n{body}"
    )
    attr = ' retrans="500"' if retrans else ""
    return f"  <send{attr}><![CDATA[\n{lines}\n]]></send>\n"


CARRIER = (
    '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="carrier">\n'
    '  <recv request="INVITE"/>\n'
    + _reply("100 Trying", tag=False)
    + _reply("180 Ringing")
    + _reply("200 OK", sdp=True, retrans=True)
    # the caller hangs up at once: our BYE may overtake our ACK (Kamailio's UDP workers)
    + '  <recv request="ACK" optional="true"/>\n'
    + '  <recv request="BYE"/>\n'
    + _reply("200 OK", tag=False)
    + "</scenario>\n"
)


def _carrier(work: Path, address: str, port: int, calls: int) -> subprocess.Popen[str]:
    """sipp answering calls on ``address:port``: ``calls`` at most, 10 minutes at most."""
    scenario, log = work / "carrier.xml", work / "carrier.log"
    scenario.write_text(CARRIER)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [SIPP, "-sf", str(scenario), "-i", address, "-p", str(port), "-mi", address,
             "-m", str(calls), "-nostdin", "-timeout", "600", "-timeout_error"],
            stdout=out, stderr=subprocess.STDOUT, text=True, cwd=work,
            preexec_fn=pin(LOAD_CORE),
        )  # fmt: skip
    WATCH.track("carrier (sipp)", proc.pid)
    try:  # sipp refuses a scenario at once (and says why); one it takes, it runs
        proc.wait(0.5)
    except subprocess.TimeoutExpired:
        return proc
    raise RuntimeError(f"the carrier did not start: {log.read_text()[-1500:]}")


def _carrier_done(carrier: subprocess.Popen[str], log: Path) -> tuple[int, int]:
    """The carrier told to finish its calls and exit (SIGUSR1, within 10 s): the calls it
    completed (BYE answered) and those it failed, from its last statistics screen."""
    carrier.send_signal(signal.SIGUSR1)
    with contextlib.suppress(subprocess.TimeoutExpired):
        carrier.wait(10)
    text = log.read_text(errors="replace")
    counts = [
        re.findall(rf"{name}\s*\|\s*\d+\s*\|\s*(\d+)", text)
        for name in ("Successful call", "Failed call")
    ]
    if not all(counts):
        raise RuntimeError(f"the carrier printed no statistics: {text[-2000:]}")
    return int(counts[0][-1]), int(counts[1][-1])


def _provision(api: str, key: str, address: str, port: int) -> list[dict[str, Any]]:
    """A trunk to the carrier, a connection whose calls to numbers take it (no per-minute
    limit to speak of: the bench dials back to back), two credentials of it with a token."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api + "/v2", headers=headers, timeout=30) as http:
        trunk = http.post(
            "/sip_trunks",
            json={"name": "bench carrier", "host": address, "port": port, "transport": "udp",
                  "username": "benchtrunk", "password": "bench-" + uuid.uuid4().hex[:12],
                  "caller_id": CALLER_ID},
        )  # fmt: skip
        trunk.raise_for_status()
        outbound = {"trunk_id": trunk.json()["data"]["id"], "calls_per_minute": 100_000}
        conn = http.post(
            "/credential_connections", json={"connection_name": "bench-trunk", "outbound": outbound}
        )
        conn.raise_for_status()
        creds = []
        for _ in range(2):
            cred = http.post(
                "/telephony_credentials", json={"connection_id": conn.json()["data"]["id"]}
            ).json()["data"]
            cred["token"] = http.post(f"/telephony_credentials/{cred['id']}/token").text
            creds.append(cred)
        return creds


def trunk_calls(work: Path, key: str) -> list[Row]:
    home = work / "trunknode"
    args, _, _ = sip_node_args(home)
    rounds = n(ROUNDS)
    # the carrier on a loopback address of its own, as a carrier is a host of its own
    address = f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
    carrier_port = free_udp_port()
    node, api, rtc = start_voxgate(home, key, args)
    carrier: subprocess.Popen[str] | None = None
    try:
        expected = WARM_UP + REPEATS * rounds
        carrier = _carrier(home, address, carrier_port, 2 * expected)
        creds = _provision(api, key, address, carrier_port)
        with asyncio.Runner() as runner:
            caller, callee = (runner.run(_online(rtc, c["token"])) for c in creds)
            _auto_answer(callee)
            to_trunk, to_webrtc = setups_against_webrtc(
                runner,
                caller,
                "trunk call setup",
                NUMBER,
                creds[1]["sip_username"],
                rounds=rounds,
                warm_up=WARM_UP,
                pid=node.proc.pid,
            )
            for client in (caller, callee):
                runner.run(client.close())
        completed, failed = _carrier_done(carrier, home / "carrier.log")
    finally:
        if carrier is not None and carrier.poll() is None:
            carrier.kill()
            carrier.wait(10)
        node.stop()
    if completed != expected:  # each call the caller saw answered, hung up at the carrier
        raise RuntimeError(f"the carrier completed {completed} calls of {expected}: not a figure")
    how = (
        f"{rounds} calls per sample, back to back, each hung up by the caller "
        f"({to_trunk.rate:.0f} calls/s to the carrier, {to_webrtc.rate:.0f}/s WebRTC); the "
        "carrier is sipp on a trunk (UDP), answering at once with 100, 180, 200 and no digest "
        "challenge, the WebRTC callee voxgate's Python client answering on the invite; the "
        "carrier completed every call "
        f"(BYE answered){f', and failed {failed} stray ones' if failed else ''}"
    )
    why = (
        "invite to answer, not to the carrier's 180: voxgate does not relay a phone leg's 180 "
        "(the session hears telnyx_rtc.ringing when the call is routed, before the INVITE "
        "leaves), so the first the session hears of the carrier is the 200 sent right after it"
    )
    return setup_rows(
        "call setup WebRTC -> trunk (no challenge), to answer",
        to_trunk,
        to_webrtc,
        f"{why}; {how}. The carrier's call adds the outbound rules (trunk, destination, "
        "calls per minute), voxgate's SIP leg, Kamailio and rtpengine's offer and answer",
        f"invite to answer; {how}",
    )
