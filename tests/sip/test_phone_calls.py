"""Calls from WebRTC sessions to SIP phones through voxgate's SIP leg, Kamailio and rtpengine:
the browser's offer reaches the phone as RTP/AVP, the phone's answer reaches the browser as
ICE + DTLS-SRTP, hang-ups cross both ways, and the phone's refusals become the SDK's causes.
(Audio in a real browser: tests/conformance, with the media tests.)"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from tests.harness import SECRETS
from tests.rtc.conftest import Api
from tests.rtc.test_calls import online
from tests.sip.peers import SIPP, Baresip, SipNode, Sipp, _scenario, register_scenario, wait_for
from tests.sip.test_invites import BUSY
from tests.sip.test_rtpengine import chromium_sdp


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


async def test_a_busy_phone_is_user_busy_and_an_absent_one_is_not_left_ringing(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    callee = sip_api.credential()
    SECRETS.add(callee["sip_password"])
    reg = Sipp(tmp_path, sip_node.sip_port)
    assert (
        reg.run(register_scenario(callee["sip_username"], callee["sip_password"])).returncode == 0
    )
    path = tmp_path / "busy.xml"
    path.write_text(_scenario(BUSY))
    uas = subprocess.Popen(
        [SIPP, "-sf", str(path), "-i", reg.address, "-p", str(reg.port), "-m", "1",
         "-timeout", "20", "-timeout_error", "-nostdin"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
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
    args = sip_node.vg.extra_args
    ng = args[args.index("--rtpengine-ng") + 1]
    from voxgate.sip.ng import NgClient

    client = NgClient.at(ng)
    try:
        assert await client.list_calls() == []
    finally:
        client.close()
