"""The phone network through an operator's trunk: the carrier is a private sipp on a loopback
address of its own, demanding digest auth as real carriers do. Calls to numbers go out only
after the challenge is answered with the trunk's credentials, G.711 towards the carrier, early
media and causes back to the caller; the carrier's calls to our numbers ring their owner; the
toll-fraud rules refuse before anything reaches the carrier. (Audio in a real browser:
tests/conformance/test_media_trunks.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import SECRETS
from tests.rtc.conftest import Api, Receiver
from tests.rtc.test_calls import online
from tests.sip.peers import (
    DOMAIN,
    SIPP,
    SipNode,
    Sipp,
    _scenario,
    _send,
    rpc,
    wait_for,
)
from tests.sip.test_invites import invite_scenario
from tests.sip.test_phone_calls import _hooks
from tests.sip.test_rtpengine import chromium_sdp

NUMBER = "+12125551234"  # what the browser dials: a valid New York number
CALLER_ID = "+12025550143"  # the trunk's number, presented in From
REALM = "carrier.test"

SDP = """\
v=0
o=carrier 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
"""


def _reply(status: str, *, sdp: bool = False, extra: str = "") -> str:
    body = SDP if sdp else ""
    kind = "Content-Type: application/sdp\n" if sdp else ""
    lines = f"""\
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]carrier[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
{extra}{kind}Content-Length: [len]

{body}"""
    return f"  <send><![CDATA[\n{lines}\n]]></send>\n"


KEEP_FROM = '      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>\n'


def carrier_answering(user: str, password: str, *, hang_up: bool, status: int = 401) -> str:
    """A challenge first (``status`` 401 or 407); the INVITE again must carry the trunk's
    digest (sipp checks an ``Authorization``, else 403; it cannot read a
    ``Proxy-Authorization``: the test checks that one); then 183 with SDP (early media), 200;
    then the carrier hangs up (``hang_up``) or waits for our BYE."""
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    challenge = f'{header}: Digest realm="{REALM}", nonce="n0nce[call_number]", qop="auth"\n'
    reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
    keep = KEEP_FROM if hang_up else ""  # sipp refuses a variable nobody reads
    steps = '  <recv request="INVITE"/>\n'
    steps += _reply(f"{status} {reason}", extra=challenge)
    steps += '  <recv request="ACK"/>\n'
    if status == 401:
        steps += f'  <recv request="INVITE" rrs="true">\n    <action>\n{keep}'
        steps += f'      <verifyauth assign_to="ok" username="{user}" password="{password}"/>\n'
        steps += "    </action>\n  </recv>\n"
        steps += '  <nop hide="true" test="ok" next="good"/>\n'
        steps += _reply("403 Forbidden")
        steps += '  <recv request="ACK" next="end"/>\n'
    else:
        steps += f'  <recv request="INVITE" rrs="true">\n    <action>\n{keep}'
        steps += "    </action>\n  </recv>\n"
    steps += '  <label id="good"/>\n'
    steps += _reply("100 Trying") + _reply("183 Session Progress", sdp=True)
    steps += '  <pause milliseconds="500"/>\n'
    steps += _reply("200 OK", sdp=True)
    steps += '  <recv request="ACK"/>\n'
    if hang_up:
        steps += '  <pause milliseconds="500"/>\n'
        steps += _send(BYE, retrans=True) + '  <recv response="200"/>\n'
    else:
        steps += '  <recv request="BYE"/>\n' + _reply("200 OK")
    steps += '  <label id="end"/>\n'
    return _scenario(steps)


def digest_answer(header: str, password: str, uri: str) -> str:
    """RFC 2617's MD5 with qop=auth, written out: what a carrier computes to check us."""
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', header))

    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1, ha2 = md5(f"{p['username']}:{REALM}:{password}"), md5(f"INVITE:{uri}")
    return md5(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")


BYE = """\
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:+12125551234@[local_ip]>;tag=[pid]carrier[call_number]
To: [$caller]
Call-ID: [call_id]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0
"""


@dataclass
class Carrier:
    """A sipp UAS standing for the carrier, on an address and port of its own."""

    workdir: Path
    address: str
    port: int
    proc: subprocess.Popen[str] | None = None

    def answer(self, scenario: str, timeout: int = 30, extra: tuple[str, ...] = ()) -> None:
        path = self.workdir / f"carrier-{uuid.uuid4().hex[:6]}.xml"
        path.write_text(scenario)
        self.log = self.workdir / f"{path.stem}.log"
        self.proc = subprocess.Popen(
            [SIPP, "-sf", str(path), "-i", self.address, "-p", str(self.port), "-mi",
             self.address, "-m", "1", "-timeout", str(timeout), "-timeout_error", "-nostdin",
             "-trace_msg", "-message_file", str(self.log), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def finished(self, timeout: float = 20) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return -1

    def messages(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def received(self, method: str) -> list[str]:
        """The ``method`` requests the carrier received, as logged."""
        blocks = re.split(r"-{10,}.*\n", self.messages())
        return [b for b in blocks if re.search(rf"(?m)^{method} sip:", b)]


def trunk_for(api: Api, carrier: Carrier, **fields: Any) -> tuple[dict[str, Any], str]:
    password = "carrier-" + uuid.uuid4().hex[:12]
    SECRETS.add(password)
    body = {
        "name": "carrier", "host": carrier.address, "port": carrier.port, "transport": "udp",
        "username": "trunkuser", "password": password, "caller_id": CALLER_ID, **fields,
    }  # fmt: skip
    return api.post("/sip_trunks", body).json()["data"], password


def dialler(api: Api, trunk: dict[str, Any], **outbound: Any) -> dict[str, Any]:
    """A credential of a connection whose calls to numbers go out on ``trunk``."""
    conn = api.connection(outbound={"trunk_id": trunk["id"], **outbound})
    return api.credential(conn["id"])


@pytest.mark.parametrize("status", [407, 401])
async def test_a_call_to_a_number_answers_the_carriers_challenge_and_hears_early_media(
    sip_node: SipNode, sip_api: Api, carrier: Carrier, status: int
) -> None:
    trunk, password = trunk_for(sip_api, carrier)
    carrier.answer(carrier_answering("trunkuser", password, hang_up=False, status=status))
    client = await online(sip_api, sip_node.vg.rtc_url, dialler(sip_api, trunk), ua="Agent/1")
    try:
        call = await client.new_call("+1 (212) 555-1234", sdp=chromium_sdp(41000))
        await call.wait_state("early", timeout=15)  # the 183's SDP, made WebRTC
        assert "UDP/TLS/RTP/SAVPF" in (call.remote_sdp or "")
        await call.wait_state("active", timeout=15)
        live = lambda: sip_api.http.get("/calls").json()["data"]  # noqa: E731 - the console's
        shown = lambda: [c for c in live() if c.get("sip_trunk_id") == trunk["id"]]  # noqa: E731
        assert await asyncio.to_thread(wait_for, shown, 10), live()
        assert shown()[0]["to"] == NUMBER and shown()[0]["from"] == CALLER_ID
        await call.hangup()
        assert await asyncio.to_thread(carrier.finished) == 0, carrier.messages()[-3000:]
    finally:
        await client.close()
    first, second = carrier.received("INVITE")
    assert "Authorization" not in first
    uri = f"sip:{NUMBER}@{carrier.address}:{carrier.port};transport=udp"
    assert re.search(r"(?m)^INVITE (\S+)", first).group(1) == uri  # type: ignore[union-attr]
    name = "Proxy-Authorization" if status == 407 else "Authorization"
    auth = re.search(rf"(?m)^{name}: (.*)", second)
    assert auth and 'username="trunkuser"' in auth.group(1) and f'realm="{REALM}"' in auth.group(1)
    response = re.search(r'response="(\w+)"', auth.group(1))
    assert response and response.group(1) == digest_answer(auth.group(1), password, uri)
    assert re.search(rf"From: .*<sip:\{CALLER_ID}@{DOMAIN}>", second), second
    assert f"P-Asserted-Identity: <sip:{CALLER_ID}@{DOMAIN}>" in second
    codecs = set(re.findall(r"a=rtpmap:\d+ ([\w-]+)/", second))
    assert codecs <= {"PCMU", "PCMA", "telephone-event"} and "PCMU" in codecs, second
    assert "X-Voxgate" not in carrier.messages() and password not in carrier.messages()
    log = sip_node.vg.log_path.read_text()
    assert password not in log


async def test_the_carrier_hangs_up_and_the_caller_hears_it(
    sip_node: SipNode, sip_api: Api, carrier: Carrier
) -> None:
    """(The connection's ani_override, where set, is the number the carrier is told.)"""
    trunk, password = trunk_for(sip_api, carrier)
    carrier.answer(carrier_answering("trunkuser", password, hang_up=True))
    cred = dialler(sip_api, trunk, ani_override="+13125550100")
    client = await online(sip_api, sip_node.vg.rtc_url, cred, ua="Agent/2")
    try:
        call = await client.new_call(NUMBER, sdp=chromium_sdp(41002))
        await call.wait_state("active", timeout=15)
        await call.wait_state("hangup", timeout=15)
        assert call.cause == "NORMAL_CLEARING"
        assert await asyncio.to_thread(carrier.finished) == 0, carrier.messages()[-3000:]
    finally:
        await client.close()
    invite = carrier.received("INVITE")[-1]
    assert re.search(rf"From: .*<sip:\+13125550100@{DOMAIN}>", invite), invite
    assert f"P-Asserted-Identity: <sip:+13125550100@{DOMAIN}>" in invite


async def test_wrong_trunk_credentials_are_refused_by_the_carrier_not_retried(
    sip_node: SipNode, sip_api: Api, carrier: Carrier
) -> None:
    trunk, _ = trunk_for(sip_api, carrier)
    carrier.answer(carrier_answering("trunkuser", "another-password", hang_up=False))
    client = await online(sip_api, sip_node.vg.rtc_url, dialler(sip_api, trunk), ua="Agent/3")
    try:
        call = await client.new_call(NUMBER, sdp=chromium_sdp(41004))
        await call.wait_state("hangup", timeout=15)
        assert call.cause == "CALL_REJECTED"  # the carrier's 403
    finally:
        await client.close()
    assert len(carrier.received("INVITE")) == 2  # one answer to its challenge, no more


@pytest.mark.parametrize(
    ("dest", "outbound", "cause"),
    [
        ("+442079460000", {}, "OUTGOING_CALL_BARRED"),  # London: not in the default US, CA
        ("+18765550100", {"whitelisted_destinations": ["US"]}, "OUTGOING_CALL_BARRED"),  # +1 876
        ("+1555", {}, "INVALID_NUMBER_FORMAT"),
        (NUMBER, {"calls_per_minute": 1}, "NORMAL_CIRCUIT_CONGESTION"),
    ],
)
async def test_the_rules_refuse_before_anything_reaches_the_carrier(
    sip_node: SipNode, sip_api: Api, carrier: Carrier, dest: str, outbound: dict[str, Any],
    cause: str,
) -> None:  # fmt: skip
    trunk, _ = trunk_for(sip_api, carrier)
    carrier.answer(_scenario('  <recv request="INVITE"/>\n'), timeout=4)
    client = await online(sip_api, sip_node.vg.rtc_url, dialler(sip_api, trunk, **outbound))
    try:
        if outbound.get("calls_per_minute"):  # the minute's one call is used up first
            first = await client.new_call("+12125550000", sdp=chromium_sdp(41006))
            await first.wait_state("hangup", timeout=15)  # (nobody answers it: 4 s)
        call = await client.new_call(dest, sdp=chromium_sdp(41008))
        await call.wait_state("hangup", timeout=10)
        assert call.cause == cause
    finally:
        await client.close()
    expected = 1 if outbound.get("calls_per_minute") else 0
    assert len(carrier.received("INVITE")) == expected, carrier.messages()[-2000:]


async def test_a_session_of_a_connection_without_a_trunk_reaches_no_number(
    sip_node: SipNode, sip_api: Api
) -> None:
    client = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential())
    try:
        call = await client.new_call(NUMBER, sdp=chromium_sdp(41010))
        await call.wait_state("hangup", timeout=10)
        assert call.cause == "NO_ROUTE_DESTINATION"
    finally:
        await client.close()


async def test_a_carrier_that_never_answers_fails_the_call_fast(
    sip_node: SipNode, sip_api: Api, carrier: Carrier
) -> None:
    trunk, _ = trunk_for(sip_api, carrier)  # nobody listens at the carrier's address
    client = await online(sip_api, sip_node.vg.rtc_url, dialler(sip_api, trunk))
    try:
        call = await client.new_call(NUMBER, sdp=chromium_sdp(41012))
        started = asyncio.get_running_loop().time()
        await call.wait_state("hangup", timeout=15)  # Kamailio's 4 s, not its 30 s default
        assert call.cause == "NO_ANSWER"
        assert asyncio.get_running_loop().time() - started < 12
    finally:
        await client.close()


INBOUND = """\
INVITE sip:{number}@{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@[local_ip]>;tag=[pid]-[call_number]
To: <sip:{number}@{domain}>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

""" + SDP.replace("[local_ip_type]", "4").replace("[media_ip_type]", "4")

ACK = """\
ACK sip:{number}@{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-1]
From: <sip:{caller}@[local_ip]>;tag=[pid]-[call_number]
To: <sip:{number}@{domain}>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
"""


def carrier_calling(number: str, caller: str, expect: int) -> str:
    args = {"number": number, "caller": caller, "domain": DOMAIN}
    steps = _send(INBOUND.format(**args))
    steps += '  <recv response="100" optional="true"/>\n'
    if expect == 200:
        steps += '  <recv response="180" optional="true"/>\n'
    steps += f'  <recv response="{expect}"/>\n'
    steps += _send(ACK.format(**args), retrans=False)
    if expect == 200:
        steps += '  <pause milliseconds="300"/>\n'
    return _scenario(steps)


async def test_the_carrier_calls_one_of_our_numbers_and_its_credential_rings(
    sip_node: SipNode, sip_api: Api, carrier: Carrier
) -> None:
    trunk_for(sip_api, carrier)
    owner = sip_api.credential()
    number = "+1212555" + str(uuid.uuid4().int)[:4]
    sip_api.post("/phone_numbers", {"phone_number": number, "credential_id": owner["id"]})
    callee = await online(sip_api, sip_node.vg.rtc_url, owner, ua="Desk/1")
    caller = "+13125550100"
    sipp = Sipp(carrier.workdir, sip_node.sip_port, address=carrier.address, port=carrier.port)
    try:
        run = asyncio.create_task(asyncio.to_thread(sipp.run, carrier_calling(number, caller, 200)))
        incoming = await callee.wait_for("incoming_call", 10)
        call = incoming.data["call"]
        assert incoming.data["caller_id_number"] == caller  # the SDK's remoteCallerNumber
        await call.answer(sdp=chromium_sdp(41014, answer_to=call.remote_sdp))
        done = await run
        assert done.returncode == 0, sipp.messages()[-3000:]
        await call.hangup()
    finally:
        await callee.close()
    # from another address, the same INVITE is refused; to a number we do not hold, 404
    stranger = Sipp(carrier.workdir, sip_node.sip_port)
    run = await asyncio.to_thread(stranger.run, carrier_calling(number, caller, 403))
    assert run.returncode == 0, stranger.messages()[-2000:]
    unknown = Sipp(carrier.workdir, sip_node.sip_port, address=carrier.address, port=carrier.port)
    run = await asyncio.to_thread(unknown.run, carrier_calling("+12125550199", caller, 404))
    assert run.returncode == 0, unknown.messages()[-2000:]
    # nobody registered: the carrier hears 480
    quiet = Sipp(carrier.workdir, sip_node.sip_port, address=carrier.address, port=carrier.port)
    run = await asyncio.to_thread(quiet.run, carrier_calling(number, caller, 480))
    assert run.returncode == 0, quiet.messages()[-2000:]


def carrier_registrar(user: str, password: str, expires: int) -> str:
    """A carrier that wants our registration: 401, then the digest checked, 200."""
    challenge = f'WWW-Authenticate: Digest realm="{REALM}", nonce="r3g[call_number]", qop="auth"\n'
    steps = '  <recv request="REGISTER"/>\n' + _reply("401 Unauthorized", extra=challenge)
    steps += '  <recv request="REGISTER">\n    <action>\n'
    steps += f'      <verifyauth assign_to="ok" username="{user}" password="{password}"/>\n'
    steps += "    </action>\n  </recv>\n"
    steps += '  <nop hide="true" test="ok" next="good"/>\n' + _reply("403 Forbidden")
    steps += '  <label id="good"/>\n'
    steps += _reply("200 OK", extra=f"[last_Contact:];expires={expires}\nExpires: {expires}\n")
    return _scenario(steps)


def registration_status(api: Api, trunk_id: str) -> str:
    return str(api.http.get(f"/sip_trunks/{trunk_id}").json()["data"]["registration_status"])


async def test_a_carrier_that_wants_registration_gets_one_and_its_loss_fails_calls_fast(
    sip_node: SipNode, sip_api: Api, carrier: Carrier
) -> None:
    carrier.answer(carrier_registrar("trunkuser", "placeholder", 15))  # listening first
    carrier.proc.kill()  # type: ignore[union-attr]
    trunk, password = trunk_for(sip_api, carrier, register=True)
    carrier.answer(carrier_registrar("trunkuser", password, 15))
    assert trunk["registration_status"] == "unknown"
    up = lambda: registration_status(sip_api, trunk["id"]) == "registered"  # noqa: E731
    ok = await asyncio.to_thread(wait_for, up, 30)
    assert ok, (
        rpc(sip_node.sip_dir / "kamailio-rpc.sock", "uac.reg_dump"),
        sip_api.http.get(f"/sip_trunks/{trunk['id']}").json(),
    )
    assert await asyncio.to_thread(carrier.finished) == 0  # it answered its one REGISTER
    first, second = carrier.received("REGISTER")
    assert "Authorization" not in first and 'username="trunkuser"' in second
    assert re.search(r"(?m)^Contact: <sip:vx\w+@127\.0\.0\.1:\d+>", second), second
    # the carrier is gone: the refresh (within the 15 s it granted) goes unanswered
    down = lambda: registration_status(sip_api, trunk["id"]) == "failed"  # noqa: E731
    assert await asyncio.to_thread(wait_for, down, 45)
    client = await online(sip_api, sip_node.vg.rtc_url, dialler(sip_api, trunk))
    try:
        call = await client.new_call(NUMBER, sdp=chromium_sdp(41016))
        await call.wait_state("hangup", timeout=3)  # at once: no INVITE into the void
        assert call.cause == "NETWORK_OUT_OF_ORDER"
    finally:
        await client.close()


async def test_trunk_calls_have_webhooks_with_numbers_and_the_trunk_and_an_audit_trail(
    sip_node: SipNode, sip_api: Api, carrier: Carrier, receiver: Receiver
) -> None:
    trunk, password = trunk_for(sip_api, carrier)
    conn = sip_api.connection(outbound={"trunk_id": trunk["id"]}, webhook_event_url=receiver.url)
    cred = sip_api.credential(conn["id"])
    carrier.answer(carrier_answering("trunkuser", password, hang_up=True))
    client = await online(sip_api, sip_node.vg.rtc_url, cred, ua="Agent/9")
    try:
        call = await client.new_call(NUMBER, sdp=chromium_sdp(41018))
        await call.wait_state("hangup", timeout=20)
        denied = await client.new_call("+442079460000", sdp=chromium_sdp(41020))
        await denied.wait_state("hangup", timeout=10)
    finally:
        await client.close()
    hooks = lambda: _hooks(receiver, conn["id"])  # noqa: E731
    assert await asyncio.to_thread(wait_for, lambda: len(hooks()) >= 4, 10), hooks()
    placed = [h for h in hooks() if h["to"] == NUMBER]
    kinds = [h["type"] for h in placed]
    assert kinds == ["call.initiated", "call.answered", "call.hangup"], kinds
    assert {(h["from"], h["sip_trunk_id"], h["direction"]) for h in placed} == {
        (CALLER_ID, trunk["id"], "outgoing")
    }
    barred = [h for h in hooks() if h["to"] == "+442079460000"]
    assert barred[-1]["hangup_cause"] == "outgoing_call_barred"
    # the carrier calls the credential's number while nobody is registered: why, in webhooks
    number = "+1212555" + str(uuid.uuid4().int)[:4]
    sip_api.post("/phone_numbers", {"phone_number": number, "credential_id": cred["id"]})
    sipp = Sipp(carrier.workdir, sip_node.sip_port, address=carrier.address, port=carrier.port)
    done = await asyncio.to_thread(sipp.run, carrier_calling(number, "+13125550100", 480))
    assert done.returncode == 0, sipp.messages()[-2000:]
    missed = lambda: [h for h in hooks() if h["to"] == number]  # noqa: E731
    assert await asyncio.to_thread(wait_for, lambda: len(missed()) == 2, 10), missed()
    assert missed()[-1]["hangup_cause"] == "subscriber_absent"
    assert missed()[-1]["direction"] == "incoming" and missed()[-1]["from"] == "+13125550100"
    # and the credential's audit trail says it all
    audit = lambda: sip_api.http.get(f"/telephony_credentials/{cred['id']}/audit").json()["data"]  # noqa: E731
    wanted = {"call_to_number", "call_from_number"}
    assert await asyncio.to_thread(wait_for, lambda: wanted <= {e["kind"] for e in audit()}, 10)
    rows = [e for e in audit() if e["kind"] in wanted]
    assert any(
        e["details"] == {"to": NUMBER, "trunk_id": trunk["id"], "refused": None} for e in rows
    ), rows
    assert any(e["details"].get("refused") == "OUTGOING_CALL_BARRED" for e in rows), rows
    assert any(e["details"].get("from") == "+13125550100" for e in rows), rows


async def test_our_phones_reach_our_numbers_but_not_the_phone_network(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    phone, owner = sip_api.credential(), sip_api.credential()
    SECRETS.add(phone["sip_password"])
    number = "+1212555" + str(uuid.uuid4().int)[:4]
    sip_api.post("/phone_numbers", {"phone_number": number, "credential_id": owner["id"]})
    user, password = phone["sip_username"], phone["sip_password"]
    for dialled, expect in ((number, 480), (NUMBER, 403)):  # ours (nobody online); not ours
        sipp = Sipp(tmp_path, sip_node.sip_port)
        run = await asyncio.to_thread(sipp.run, invite_scenario(user, dialled, expect, password))
        assert run.returncode == 0, (dialled, sipp.messages()[-2000:])
    assert "403 Calls to numbers go out from WebRTC sessions only" in sipp.messages()
