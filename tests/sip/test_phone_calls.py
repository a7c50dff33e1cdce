"""Calls from WebRTC sessions to SIP phones through voxgate's SIP leg, Kamailio and rtpengine:
the browser's offer reaches the phone as RTP/AVP, the phone's answer reaches the browser as
ICE + DTLS-SRTP, hang-ups cross both ways, and the phone's refusals become the SDK's causes.
(Audio in a real browser: tests/conformance, with the media tests.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness import SECRETS
from tests.rtc.conftest import Api, Receiver
from tests.rtc.test_calls import online
from tests.sip.peers import (
    SIPP,
    Baresip,
    SipNode,
    Sipp,
    _scenario,
    _send,
    register_scenario,
    wait_for,
)
from tests.sip.test_invites import BUSY
from tests.sip.test_rtpengine import chromium_sdp, phone_sdp, rtpengines
from voxgate.client import Client
from voxgate.config import Settings
from voxgate.sip.ng import NgClient


def _phone(
    api: Api, node: SipNode, tmp_path: Path, name: str = "phone"
) -> tuple[dict[str, Any], Baresip]:
    cred = api.credential()
    SECRETS.add(cred["sip_password"])
    phone = Baresip(tmp_path / name, node.sip_port, cred["sip_username"], cred["sip_password"])
    phone.start()
    assert wait_for(lambda: node.contacts(cred["sip_username"])), phone.log()
    return cred, phone


async def test_a_webrtc_session_calls_a_phone_and_either_side_hangs_up(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee, phone = _phone(sip_api, sip_node, tmp_path)
    caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Page/1")
    try:
        call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40000))
        await call.wait_state("active", timeout=15)
        answer = call.remote_sdp or ""
        # the phone answered RTP/AVP; rtpengine made it an answer a browser takes
        assert "UDP/TLS/RTP/SAVPF" in answer and "a=fingerprint:" in answer
        assert "a=ice-ufrag:" in answer and "a=candidate:" in answer
        assert "RTP/AVP" not in answer.replace("UDP/TLS/RTP/SAVPF", "")
        assert await asyncio.to_thread(wait_for, lambda: "Call established" in phone.log())
        await call.hangup()  # baresip says a remote BYE is "session closed"
        assert await asyncio.to_thread(wait_for, lambda: "session closed" in phone.log(), 10)
        # and the other way: the phone hangs up
        again = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40002))
        await again.wait_state("active", timeout=15)
        phone.stop()  # baresip quits: BYE
        await again.wait_state("hangup", timeout=10)
        assert again.cause == "NORMAL_CLEARING"
    finally:
        phone.stop()
        await caller.close()


def _phone_that_answers(
    node: SipNode, callee: dict[str, Any], tmp_path: Path, name: str, steps: str
) -> subprocess.Popen[str]:
    """sipp registered as ``callee``, then answering one INVITE as ``steps`` say."""
    reg = Sipp(tmp_path, node.sip_port)
    assert (
        reg.run(register_scenario(callee["sip_username"], callee["sip_password"])).returncode == 0
    )
    path = tmp_path / f"{name}.xml"
    path.write_text(_scenario(steps))
    return subprocess.Popen(
        [SIPP, "-sf", str(path), "-i", reg.address, "-p", str(reg.port), "-m", "1",
         "-timeout", "20", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


async def test_the_phones_keypad_reaches_the_webrtc_caller_as_digits(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee, phone = _phone(sip_api, sip_node, tmp_path)
    caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Page/5")
    try:
        call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40006))
        await call.wait_state("active", timeout=15)
        phone.press("7#")  # RFC 4733 events, which rtpengine reports to the SIP leg
        assert await asyncio.to_thread(wait_for, lambda: len(call.received_dtmf) == 2, 10), (
            call.received_dtmf,
            phone.log()[-2000:],
        )
        assert call.received_dtmf == ["7", "#"]
        await call.hangup()
    finally:
        phone.stop()
        await caller.close()


async def test_a_busy_phone_is_user_busy_and_an_absent_one_is_not_left_ringing(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee = sip_api.credential()
    SECRETS.add(callee["sip_password"])
    uas = _phone_that_answers(sip_node, callee, tmp_path, "busy", BUSY)
    caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Page/2")
    try:
        call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40004))
        await call.wait_state("hangup", timeout=15)
        assert call.cause == "USER_BUSY", call.cause
        out, _ = await asyncio.to_thread(uas.communicate, None, 10)
        assert uas.returncode == 0, out
    finally:
        if uas.poll() is None:
            uas.kill()
        await caller.close()
    # no rtpengine session outlives the calls
    client = _relay(sip_node)
    try:
        assert await client.list_calls() == []
    finally:
        client.close()


RING_FOREVER = """\
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]ring[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]ring[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]ring[call_number]
[last_Call-ID:]
CSeq: [cseq] INVITE
Content-Length: 0

]]></send>
  <recv request="ACK"/>
"""


async def test_a_phone_nobody_answers_is_no_answer_after_the_connections_timeout(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    connection = sip_api.connection(inbound={"timeout_2xx_secs": 2})
    callee = sip_api.credential(connection["id"])
    SECRETS.add(callee["sip_password"])
    uas = _phone_that_answers(sip_node, callee, tmp_path, "ring", RING_FOREVER)
    caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Page/8")
    try:
        call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40014))
        await call.wait_state("ringing", timeout=10)
        await call.wait_state("hangup", timeout=10)
        assert (call.cause, call.cause_code) == ("NO_ANSWER", 19)
        out, _ = await asyncio.to_thread(uas.communicate, None, 10)  # CANCEL, 487, ACK
        assert uas.returncode == 0, out
    finally:
        if uas.poll() is None:
            uas.kill()
        await caller.close()


CALL_IN = """\
INVITE sip:{callee}@voxgate.test SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@voxgate.test>;tag=[pid]-[call_number]
To: <sip:{callee}@voxgate.test>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
{auth}Content-Type: application/sdp
Content-Length: [len]

{sdp}"""
ACK_IN = """\
ACK sip:{callee}@voxgate.test SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch{branch}]
From: <sip:{caller}@voxgate.test>;tag=[pid]-[call_number]
To: <sip:{callee}@voxgate.test>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0
"""


IN_DIALOG = """\
{method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@voxgate.test>;tag=[pid]-[call_number]
To: <sip:{callee}@voxgate.test>[peer_tag_param]
Call-ID: [call_id]
[routes]
CSeq: {cseq} {method}
Max-Forwards: 70
Content-Length: 0
"""


def call_in_scenario(caller: str, password: str, callee: str, sdp: str, expect: int) -> str:
    """A phone calls ``callee``: INVITE with SDP, the 407 answered, then ``expect``; a 200 is
    ACKed (in the dialog, through Kamailio's route set) and hung up by the phone."""
    args = {"caller": caller, "callee": callee, "sdp": sdp}
    steps = _send(CALL_IN.format(**args, cseq=1, auth=""))
    steps += '  <recv response="100" optional="true"/>\n'
    steps += '  <recv response="407" auth="true"/>\n'
    steps += _send(ACK_IN.format(**args, cseq=1, branch="-1"), retrans=False)
    auth = f"[authentication username={caller} password={password}]\n"
    steps += _send(CALL_IN.format(**args, cseq=2, auth=auth))
    steps += '  <recv response="100" optional="true"/>\n'
    steps += '  <recv response="180" optional="true"/>\n'
    if expect != 200:
        steps += f'  <recv response="{expect}"/>\n'
        return _scenario(steps + _send(ACK_IN.format(**args, cseq=2, branch="-1"), retrans=False))
    steps += '  <recv response="200" rrs="true"/>\n'
    steps += _send(IN_DIALOG.format(**args, method="ACK", cseq=2), retrans=False)
    steps += '  <pause milliseconds="500"/>\n'
    steps += _send(IN_DIALOG.format(**args, method="BYE", cseq=3))
    steps += '  <recv response="200"/>\n'
    return _scenario(steps)


INVITE_BRANCH = "z9hG4bK-[pid]-[call_number]-4"
CANCEL_IN = """\
CANCEL sip:{callee}@voxgate.test SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-3]
From: <sip:{caller}@voxgate.test>;tag=[pid]-[call_number]
To: <sip:{callee}@voxgate.test>
Call-ID: [call_id]
CSeq: 2 CANCEL
Max-Forwards: 70
Content-Length: 0
"""


def cancel_in_scenario(caller: str, password: str, callee: str, sdp: str) -> str:
    """A phone calls ``callee``, hears it ring, and gives up: CANCEL (the authenticated
    INVITE's branch, three messages back), 200 for it, 487 for the INVITE, ACK."""
    args = {"caller": caller, "callee": callee, "sdp": sdp}
    steps = _send(CALL_IN.format(**args, cseq=1, auth=""))  # 0
    steps += '  <recv response="100" optional="true"/>\n'  # 1
    steps += '  <recv response="407" auth="true"/>\n'  # 2
    steps += _send(ACK_IN.format(**args, cseq=1, branch="-1"), retrans=False)  # 3
    auth = f"[authentication username={caller} password={password}]\n"
    steps += _send(CALL_IN.format(**args, cseq=2, auth=auth))  # 4
    steps += '  <recv response="100" optional="true"/>\n'  # 5
    steps += '  <recv response="180"/>\n'  # 6
    steps += _send(CANCEL_IN.format(**args))  # 7
    # Kamailio's own 200 for the CANCEL and the 487 it relays from voxgate race: either
    # may come first. The ACK names the INVITE's branch (message 4) outright.
    ack = _send(
        ACK_IN.format(**args, cseq=2, branch="").replace("[branch]", INVITE_BRANCH), retrans=False
    )
    steps += '  <recv response="200" optional="true" next="cancelled"/>\n'
    steps += '  <recv response="487"/>\n' + ack
    steps += '  <recv response="200" next="done"/>\n'
    steps += '  <label id="cancelled"/>\n  <recv response="487"/>\n' + ack
    return _scenario(steps + '  <label id="done"/>\n')


async def _a_phone_calls_a_page(
    node: SipNode,
    api: Api,
    tmp_path: Path,
    ua: str,
    scenario: Callable[..., str],
    media_port: int,
    *more: int,
) -> tuple[Client, dict[str, Any], Sipp, asyncio.Task[subprocess.CompletedProcess[str]]]:
    """A page online as a new credential, and sipp calling it as another one through
    Kamailio, in the background: ``scenario(caller, password, callee, sdp, *more)``."""
    page_cred, phone_cred = api.credential(), api.credential()
    SECRETS.add(phone_cred["sip_password"])
    page = await online(api, node.vg.rtc_url, page_cred, ua=ua)
    phone = Sipp(tmp_path, node.sip_port)
    caller, password = phone_cred["sip_username"], phone_cred["sip_password"]
    text = scenario(caller, password, page_cred["sip_username"], phone_sdp(media_port), *more)
    running = asyncio.create_task(asyncio.to_thread(phone.run, text, timeout=20))
    return page, phone_cred, phone, running


async def test_a_phone_that_gives_up_stops_the_ring_of_the_webrtc_session(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    page, _, phone, running = await _a_phone_calls_a_page(
        sip_node, sip_api, tmp_path, "Page/9", cancel_in_scenario, 41006
    )
    try:
        incoming = await page.wait_for("incoming_call", 10)
        call = incoming.data["call"]
        await call.wait_state("hangup", timeout=10)  # never answered: the phone cancelled
        assert (call.cause, call.cause_code) == ("ORIGINATOR_CANCEL", 487)
        res = await running
        assert res.returncode == 0, res.stdout[-1500:] + phone.messages()[-3000:]
    finally:
        await page.close()


async def test_a_phone_calls_a_webrtc_session_which_answers_and_the_phone_hangs_up(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    page, phone_cred, phone, running = await _a_phone_calls_a_page(
        sip_node, sip_api, tmp_path, "Page/3", call_in_scenario, 41000, 200
    )
    try:
        incoming = await page.wait_for("incoming_call", 10)
        call = incoming.data["call"]
        offer = call.remote_sdp or ""
        # the phone's RTP offer, made one a browser takes
        assert "UDP/TLS/RTP/SAVPF" in offer and "a=fingerprint:" in offer, offer
        assert incoming.data["caller_id_number"] == phone_cred["sip_username"]
        await call.answer(sdp=chromium_sdp(41002, answer_to=offer))
        res = await running
        assert res.returncode == 0, res.stdout[-1500:] + phone.messages()[-3000:]
        answer = phone.messages().split("SIP/2.0 200 OK", 1)[1].split("\nACK ", 1)[0]
        assert "RTP/AVP" in answer and "SAVPF" not in answer and "fingerprint" not in answer
        await call.wait_state("hangup", timeout=10)  # the phone hung up
    finally:
        await page.close()


async def test_a_webrtc_session_that_declines_a_phone_call_is_busy_to_the_phone(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    page, _, phone, running = await _a_phone_calls_a_page(
        sip_node, sip_api, tmp_path, "Page/4", call_in_scenario, 41004, 486
    )
    try:
        incoming = await page.wait_for("incoming_call", 10)
        await incoming.data["call"].hangup(cause="USER_BUSY", cause_code=17)  # at once
        res = await running
        assert res.returncode == 0, res.stdout[-1500:] + phone.messages()[-3000:]
    finally:
        await page.close()


CHECKS = Settings().housekeeping_interval  # how often voxgate asks rtpengine for its calls


def _relay(node: SipNode) -> NgClient:
    args = node.vg.extra_args
    return NgClient.at(args[args.index("--rtpengine-ng") + 1])


async def test_a_blip_of_rtpengine_leaves_live_calls_alone(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee, phone = _phone(sip_api, sip_node, tmp_path)
    caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Page/6")
    relay = _relay(sip_node)
    (pid,) = rtpengines(relay.address)
    try:
        call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40008))
        await call.wait_state("active", timeout=15)
        os.kill(pid, signal.SIGSTOP)  # its control socket answers nothing for a while
        try:
            await asyncio.sleep(CHECKS * 3 + 0.5)  # media checks come and go
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.sleep(CHECKS * 2)
        assert call.state == "active"
        assert "session closed" not in phone.log()
        await call.hangup()
        assert await asyncio.to_thread(wait_for, lambda: "session closed" in phone.log(), 10)
    finally:
        phone.stop()
        relay.close()
        await caller.close()


async def test_rtpengine_killed_mid_call_ends_it_on_both_sides_and_the_next_call_works(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee, phone = _phone(sip_api, sip_node, tmp_path)
    caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Page/7")
    relay = _relay(sip_node)
    try:
        call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40010))
        await call.wait_state("active", timeout=15)
        (pid,) = rtpengines(relay.address)
        os.kill(pid, signal.SIGKILL)  # every session it held is gone with it
        await call.wait_state("hangup", timeout=15)
        assert (call.cause, call.cause_code) == ("NETWORK_OUT_OF_ORDER", 38)
        assert await asyncio.to_thread(wait_for, lambda: "session closed" in phone.log(), 10)
        log = sip_node.vg.log_path.read_text()
        assert '"engine": "rtpengine"' in log and "engine exited; restarting" in log
        assert "media relay lost a call; ending it" in log
        # restarted by voxgate: the next call has media again
        again = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(40012))
        await again.wait_state("active", timeout=15)
        assert len(rtpengines(relay.address)) == 1
        assert await relay.list_calls() != []
        await again.hangup()
        await again.wait_state("hangup", timeout=10)
        assert await asyncio.to_thread(
            wait_for, lambda: phone.log().count("session closed") >= 2, 10
        )
        assert await relay.list_calls() == []
    finally:
        phone.stop()
        relay.close()
        await caller.close()


def _hooks(receiver: Receiver, connection_id: str) -> list[dict[str, Any]]:
    """The call webhooks one connection received, in order (type and payload)."""
    found = []
    for body, _ in list(receiver.events):
        data = json.loads(body)["data"]
        if data["payload"].get("connection_id") == connection_id:
            found.append({"type": data["event_type"], **data["payload"]})
    return found


async def test_calls_with_phones_have_ids_and_webhooks_like_webrtc_legs(
    sip_node: SipNode, sip_api: Api, tmp_path: Path, receiver: Receiver
) -> None:
    page_conn = sip_api.connection(webhook_event_url=receiver.url)
    phone_conn = sip_api.connection(webhook_event_url=receiver.url)
    page_cred = sip_api.credential(page_conn["id"])
    phone_cred = sip_api.credential(phone_conn["id"])
    SECRETS.add(phone_cred["sip_password"])
    phone = Baresip(
        tmp_path / "phone", sip_node.sip_port, phone_cred["sip_username"],
        phone_cred["sip_password"],
    ).start()  # fmt: skip
    page = await online(sip_api, sip_node.vg.rtc_url, page_cred, ua="Page/10")
    kinds = ["call.initiated", "call.answered", "call.hangup"]
    try:
        assert wait_for(lambda: sip_node.contacts(phone_cred["sip_username"]))
        # 1. the page calls the phone
        call = await page.new_call(phone_cred["sip_username"], sdp=chromium_sdp(40016))
        await call.wait_state("active", timeout=15)
        assert set(call.telnyx_ids) == {"call_control_id", "call_session_id", "call_leg_id"}
        await call.hangup()
        for conn in (page_conn, phone_conn):
            assert await asyncio.to_thread(
                wait_for, lambda c=conn: len(_hooks(receiver, c["id"])) >= 3, 10
            ), receiver.events
        out, into = _hooks(receiver, page_conn["id"]), _hooks(receiver, phone_conn["id"])
        assert [h["type"] for h in out] == kinds and [h["type"] for h in into] == kinds
        assert {h["direction"] for h in out} == {"outgoing"}
        assert {h["direction"] for h in into} == {"incoming"}
        assert out[0]["call_leg_id"] == call.telnyx_ids["call_leg_id"]
        assert into[0]["call_leg_id"] != out[0]["call_leg_id"]
        assert {h["call_session_id"] for h in out + into} == {call.telnyx_ids["call_session_id"]}
        assert into[-1]["hangup_cause"] == "normal_clearing"
        phone.stop()
        receiver.events.clear()

        # 2. a phone (authenticated by its digest) calls the page
        sipp = Sipp(tmp_path, sip_node.sip_port)
        scenario = call_in_scenario(
            phone_cred["sip_username"], phone_cred["sip_password"], page_cred["sip_username"],
            phone_sdp(41008), 200,
        )  # fmt: skip
        running = asyncio.create_task(asyncio.to_thread(sipp.run, scenario, timeout=20))
        incoming = (await page.wait_for("incoming_call", 10)).data["call"]
        assert set(incoming.telnyx_ids) == {"call_control_id", "call_session_id", "call_leg_id"}
        await incoming.answer(sdp=chromium_sdp(41010, answer_to=incoming.remote_sdp or ""))
        res = await running
        assert res.returncode == 0, res.stdout[-1500:] + sipp.messages()[-3000:]
        await incoming.wait_state("hangup", timeout=10)
        for conn in (page_conn, phone_conn):
            assert await asyncio.to_thread(
                wait_for, lambda c=conn: len(_hooks(receiver, c["id"])) >= 3, 10
            ), receiver.events
        into, out = _hooks(receiver, page_conn["id"]), _hooks(receiver, phone_conn["id"])
        assert [h["type"] for h in out] == kinds and [h["type"] for h in into] == kinds
        assert {h["direction"] for h in out} == {"outgoing"}  # the phone's own connection
        assert {h["direction"] for h in into} == {"incoming"}
        assert into[0]["call_leg_id"] == incoming.telnyx_ids["call_leg_id"]
        assert out[0]["from"] == phone_cred["sip_username"]
    finally:
        phone.stop()
        await page.close()
