"""Audio between the real ``@telnyx/webrtc`` SDK in Chromium and the phone network through an
operator's trunk: the carrier is a private sipp inside the test's loopback-only namespace,
demanding digest auth, playing a tone (``rtp_stream``, G.711) and echoing what it hears
(``-rtp_echo``). The page dials ``+1…`` and hears the carrier's early media before the answer,
then its own audio back through the carrier once answered (so it went both ways); the
carrier's call to one of our numbers rings both devices of a ``ring_all`` credential."""

from __future__ import annotations

import math
import threading
import time
import uuid
import wave
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conformance.test_browser import start, wait_event
from tests.conformance.test_media_sip import OpenPage, _received, _states, _wait_count
from tests.rtc.conftest import Api
from tests.sip.peers import SipNode, Sipp, _scenario, free_udp_port, loopback_address
from tests.sip.test_trunks import (
    NUMBER,
    Carrier,
    _reply,
    carrier_calling,
    dialler,
    trunk_for,
)

pytestmark = pytest.mark.media


def ulaw(sample: int) -> int:
    """One 16-bit sample as G.711 u-law (ITU-T G.711's segment encoding)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(0, magnitude.bit_length() - 8)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def tone(path: Path, seconds: float = 20.0) -> Path:
    """A 440 Hz tone as G.711 u-law at 8 kHz, the bytes sipp's ``rtp_stream`` sends as they
    are (it skips the wav header and reads no format from it)."""
    samples = (
        int(8000 * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(int(8000 * seconds))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(ulaw(s) for s in samples))
    return path


def carrier_with_media(user: str, password: str, sound: Path) -> str:
    """407, then: 183 + the tone for 4 s (early media), 200, then only the echo of what the
    page sends; our BYE ends it."""
    steps = '  <recv request="INVITE"/>\n'
    challenge = 'Proxy-Authenticate: Digest realm="carrier.test", nonce="n0nce", qop="auth"\n'
    steps += _reply("407 Proxy Authentication Required", extra=challenge)
    steps += '  <recv request="ACK"/>\n  <recv request="INVITE"/>\n'
    steps += _reply("100 Trying") + _reply("183 Session Progress", sdp=True)
    steps += f'  <nop><action><exec rtp_stream="{sound},-1,0"/></action></nop>\n'
    steps += '  <pause milliseconds="4000"/>\n'
    steps += '  <nop><action><exec rtp_stream="pause"/></action></nop>\n'
    steps += _reply("200 OK", sdp=True) + '  <recv request="ACK"/>\n'
    steps += '  <recv request="BYE"/>\n' + _reply("200 OK")
    return _scenario(steps)


def _page(node: SipNode, open_page: OpenPage, token: str, agent: str) -> Page:
    page = open_page(node.vg, user_agent=agent)
    start(page, node.vg, login_token=token)
    wait_event(page, "telnyx.ready")
    return page


def _grows(page: Page, by: int, seconds: float = 3.0) -> tuple[int, int]:
    before = _received(page)
    time.sleep(seconds)
    after = _received(page)
    assert after - before > by, (before, after)
    return before, after


def _arriving(page: Page) -> int:
    """Bytes the page's selected ICE pair received: the echo of the page's own audio comes
    back with the page's own SSRC, which the browser drops as its own (RFC 3550 8.2), so it
    never reaches the inbound-rtp counters; it is counted where it arrives."""
    return int(
        page.evaluate(
            """async () => {
                const pc = window.vxPCs[window.vxPCs.length - 1];
                let received = 0;
                (await pc.getStats()).forEach((r) => {
                    if (r.type === 'candidate-pair' && r.nominated) received += r.bytesReceived;
                });
                return received;
            }"""
        )
    )


def _echoed(page: Page, by: int, seconds: float = 3.0) -> None:
    """The carrier's tone has stopped (its scenario paused it): what still arrives (more than
    RTCP and ICE consent checks, a few hundred bytes a second) is its echo of the page."""
    before = _arriving(page)
    time.sleep(seconds)
    assert _arriving(page) - before > by, (before, _arriving(page))


def test_the_sdk_dials_a_number_hears_early_media_then_its_audio_through_the_carrier(
    sip_node: SipNode, sip_api: Api, open_page: OpenPage, tmp_path: Path
) -> None:
    carrier = Carrier(tmp_path, loopback_address(), free_udp_port())
    trunk, password = trunk_for(sip_api, carrier)
    sound = tone(tmp_path / "tone.wav")
    carrier.answer(carrier_with_media("trunkuser", password, sound), extra=("-rtp_echo",))
    cred = dialler(sip_api, trunk)
    page = _page(sip_node, open_page, sip_api.token(cred["id"]), "Trunk/page")
    try:
        page.evaluate("dest => window.vxDial(dest)", NUMBER)
        _wait_count(page, "early", 1)  # the 183's SDP: the SDK's own early state
        assert not [s for s in _states(page) if s["state"] == "active"]
        _grows(page, 8000, 2.0)  # the carrier's tone, before any answer (2 s of PCMU: 16 kB)
        _wait_count(page, "active", 1)
        time.sleep(1.0)
        _echoed(page, 8000, 3.0)  # the tone stopped at the answer: this is the page's echo
        page.evaluate("() => window.vxHangup()")
        _wait_count(page, "hangup", 1)
        assert carrier.finished() == 0, carrier.messages()[-3000:]
    finally:
        if carrier.proc is not None and carrier.proc.poll() is None:
            carrier.proc.kill()
    assert len(carrier.received("INVITE")) == 2


def test_the_carrier_calls_our_number_and_both_devices_of_a_ring_all_credential_ring(
    sip_node: SipNode, sip_api: Api, open_page: OpenPage, tmp_path: Path
) -> None:
    carrier = Carrier(tmp_path, loopback_address(), free_udp_port())
    trunk_for(sip_api, carrier)
    owner = sip_api.credential(registration_policy="ring_all")
    number = "+1212555" + str(uuid.uuid4().int)[:4]
    sip_api.post("/phone_numbers", {"phone_number": number, "credential_id": owner["id"]})
    desk = _page(sip_node, open_page, sip_api.token(owner["id"]), "Trunk/desk")
    laptop = _page(sip_node, open_page, sip_api.token(owner["id"]), "Trunk/laptop")
    caller = "+13125550100"
    sipp = Sipp(tmp_path, sip_node.sip_port, address=carrier.address, port=carrier.port)
    scenario = carrier_calling(number, caller, 200).replace(
        '  <pause milliseconds="300"/>\n',
        f'  <nop><action><exec rtp_stream="{tone(tmp_path / "in.wav")},-1,0"/></action></nop>\n'
        '  <pause milliseconds="3000"/>\n'
        '  <nop><action><exec rtp_stream="pause"/></action></nop>\n'
        '  <pause milliseconds="10000"/>\n',
    )
    result: list[int] = []
    run = threading.Thread(
        target=lambda: result.append(
            sipp.run(scenario, timeout=30, extra=("-mi", carrier.address, "-rtp_echo")).returncode
        )
    )
    run.start()
    try:
        for page in (desk, laptop):
            _wait_count(page, "ringing", 1)
            ringing = [s for s in _states(page) if s["state"] == "ringing"][-1]
            assert ringing["direction"] == "inbound"
        number_seen = desk.evaluate(
            "() => Object.values(window.vxCalls).map(c => c.options.remoteCallerNumber)"
        )
        assert caller in number_seen, number_seen
        desk.evaluate(
            "() => Object.values(window.vxCalls).find(c => c.state === 'ringing').answer()"
        )
        _wait_count(desk, "active", 1)
        _wait_count(laptop, "hangup", 1)  # the other device stops ringing
        _grows(desk, 8000, 2.0)  # the carrier's tone in the page that answered
        time.sleep(2.0)
        _echoed(desk, 8000, 3.0)  # the tone stopped: the page's own audio, echoed back
    finally:
        run.join(40)
    assert result == [0], sipp.messages()[-3000:]
    assert "SIP/2.0 200 OK" in sipp.messages()
