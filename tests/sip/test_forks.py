"""ring_all across SIP and WebRTC: a credential with a phone and a WebRTC session rings both,
whoever calls it (a phone, through Kamailio's forking; a session, through the router's), and
the first answer wins; the others hear LOSE_RACE, or a CANCEL that says the call was answered
elsewhere (RFC 3326), so the phone shows no missed call."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from tests.harness import SECRETS
from tests.rtc.conftest import Api
from tests.rtc.test_calls import online
from tests.sip.peers import Baresip, SipNode, Sipp, wait_for
from tests.sip.test_phone_calls import RING_FOREVER, _phone_that_answers, call_in_scenario
from tests.sip.test_rtpengine import chromium_sdp, phone_sdp
from voxgate.client import Call, Client

ELSEWHERE = """\
  <recv request="CANCEL">
    <action>
      <ereg regexp="SIP;cause=200" search_in="hdr" header="Reason:" check_it="true"
            assign_to="1"/>
    </action>
  </recv>
  <Reference variables="1"/>
"""
RING_TILL_ANSWERED_ELSEWHERE = RING_FOREVER.replace('  <recv request="CANCEL"/>\n', ELSEWHERE)


def _ring_all(api: Api) -> dict[str, Any]:
    cred = api.credential(registration_policy="ring_all")
    SECRETS.add(cred["sip_password"])
    return cred


def _desk(node: SipNode, callee: dict[str, Any], tmp_path: Path) -> Baresip:
    """baresip registered as ``callee``: it answers every call at once."""
    desk = Baresip(tmp_path / "desk", node.sip_port, callee["sip_username"],
                   callee["sip_password"]).start()  # fmt: skip
    if not wait_for(lambda: node.contacts(callee["sip_username"])):
        desk.stop()
        raise AssertionError(desk.log())
    return desk


async def _ringing(page: Client) -> Call:
    incoming = await page.wait_for("incoming_call", 10)
    call: Call = incoming.data["call"]
    return call


def _a_phone_calls(
    node: SipNode, api: Api, tmp_path: Path, callee: dict[str, Any], port: int
) -> tuple[Sipp, asyncio.Task[subprocess.CompletedProcess[str]]]:
    """sipp, as a credential of its own, calls ``callee`` and hangs up once answered."""
    cred = api.credential()
    SECRETS.add(cred["sip_password"])
    phone = Sipp(tmp_path, node.sip_port)
    text = call_in_scenario(
        cred["sip_username"], cred["sip_password"], callee["sip_username"], phone_sdp(port), 200
    )
    return phone, asyncio.create_task(asyncio.to_thread(phone.run, text, timeout=20))


async def test_a_phone_calls_a_phone_and_a_session_and_the_session_answers(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee = _ring_all(sip_api)
    desk = _phone_that_answers(sip_node, callee, tmp_path, "desk", RING_TILL_ANSWERED_ELSEWHERE)
    page = await online(sip_api, sip_node.vg.rtc_url, callee, ua="Fork/1")
    caller, running = _a_phone_calls(sip_node, sip_api, tmp_path, callee, 41100)
    try:
        call = await _ringing(page)  # the desk phone rings as well (Kamailio forked)
        await call.answer(sdp=chromium_sdp(41102, answer_to=call.remote_sdp))
        res = await running  # answered; the caller hangs up
        assert res.returncode == 0, res.stdout[-1500:] + caller.messages()[-3000:]
        await call.wait_state("hangup", timeout=10)
        out, _ = await asyncio.to_thread(desk.communicate, None, 10)
        assert desk.returncode == 0, out  # CANCEL with Reason: SIP;cause=200, 487, ACK
    finally:
        if desk.poll() is None:
            desk.kill()
        await page.close()


async def test_a_phone_calls_a_phone_and_a_session_and_the_phone_answers(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee = _ring_all(sip_api)
    desk = _desk(sip_node, callee, tmp_path)
    page = None
    try:
        page = await online(sip_api, sip_node.vg.rtc_url, callee, ua="Fork/2")
        caller, running = _a_phone_calls(sip_node, sip_api, tmp_path, callee, 41104)
        call = await _ringing(page)
        await call.wait_state("hangup", timeout=10)  # baresip answers at once
        assert (call.cause, call.cause_code) == ("LOSE_RACE", 502)
        res = await running
        assert res.returncode == 0, res.stdout[-1500:] + caller.messages()[-3000:]
        assert "Call established" in desk.log()
    finally:
        desk.stop()
        if page is not None:
            await page.close()


async def test_a_session_calls_a_phone_and_a_session_and_the_session_answers(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee = _ring_all(sip_api)
    desk = _phone_that_answers(sip_node, callee, tmp_path, "desk", RING_TILL_ANSWERED_ELSEWHERE)
    page = await online(sip_api, sip_node.vg.rtc_url, callee, ua="Fork/3")
    caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Fork/4")
    try:
        out_call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(41106))
        call = await _ringing(page)
        await call.answer(sdp=chromium_sdp(41108, answer_to=call.remote_sdp))
        await out_call.wait_state("active", timeout=10)
        out, _ = await asyncio.to_thread(desk.communicate, None, 10)
        assert desk.returncode == 0, out  # our CANCEL said: answered elsewhere
        await out_call.hangup()
        await call.wait_state("hangup", timeout=10)
    finally:
        if desk.poll() is None:
            desk.kill()
        await page.close()
        await caller.close()


async def test_a_session_calls_a_phone_and_a_session_and_the_phone_answers(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee = _ring_all(sip_api)
    desk = _desk(sip_node, callee, tmp_path)
    clients: list[Client] = []
    try:
        page = await online(sip_api, sip_node.vg.rtc_url, callee, ua="Fork/5")
        caller = await online(sip_api, sip_node.vg.rtc_url, sip_api.credential(), ua="Fork/6")
        clients += [page, caller]
        out_call = await caller.new_call(callee["sip_username"], sdp=chromium_sdp(41110))
        call = await _ringing(page)
        await out_call.wait_state("active", timeout=15)  # baresip answered
        assert "RTP/AVP" not in (out_call.remote_sdp or "").replace("UDP/TLS/RTP/SAVPF", "")
        await call.wait_state("hangup", timeout=10)
        assert (call.cause, call.cause_code) == ("LOSE_RACE", 502)
        await out_call.hangup()
        assert await asyncio.to_thread(wait_for, lambda: "session closed" in desk.log(), 10)
    finally:
        desk.stop()
        for c in clients:
            await c.close()
