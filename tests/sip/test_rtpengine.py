"""rtpengine, the SIP edge's media relay, driven over its ng protocol: a private instance of
Debian's daemon (userspace forwarding) on loopback with a private media port range, started
through ``Engine`` and its warden like Kamailio. Offers and answers between plain RTP and
WebRTC, real media relayed, hold and DTMF, clear errors, retries, and a kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import random
import re
import signal
import socket
import struct
import time
import typing
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError, ServiceUnavailable
from voxgate.serve_command import serve
from voxgate.sip.engines import Engine, find_binary
from voxgate.sip.ng import NgClient, NgError, NgNoAnswer, frame, unframe
from voxgate.sip.phonecall import TO_BROWSER, TO_PHONE, TO_TRUNK
from voxgate.sip.phones import Phones
from voxgate.sip.rtpengine import RTPENGINE_PACKAGES, Rtpengine, answers, free_udp_port

CALLER, CALLEE = "caller-tag", "callee-tag"
TELEPHONE_EVENT = 101


# -- a private rtpengine ---------------------------------------------------------------------


@dataclass
class Relay:
    config: Rtpengine
    engine: Engine
    ng: NgClient
    probe: NgClient
    reports: socket.socket  # where it reports digits (voxgate's SIP leg port)

    @property
    def ports(self) -> range:
        return range(self.config.port_min, self.config.port_max + 1)


def rtpengines(ng_address: str) -> list[int]:
    """Every rtpengine process listening on this ng address (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[0].endswith(b"rtpengine") and f"--listen-ng={ng_address}".encode() in cmd:
            found.append(int(entry))
    return found


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return value


async def start_relay(directory: Path) -> Relay:
    low = random.randrange(20000, 31000, 2)  # below the ephemeral ports; 200 of our own
    reports = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    reports.bind(("127.0.0.1", 0))
    reports.setblocking(False)
    settings = Settings(
        host="127.0.0.1",
        media_ports=f"{low}-{low + 199}",
        sip_dir=directory,
        sip_leg_port=port(reports),
    )
    config = Rtpengine.of(settings)
    probe = config.client(timeout=0.25, attempts=1)
    binary = find_binary("rtpengine", RTPENGINE_PACKAGES)
    engine = Engine("rtpengine", config.argv(binary), config.log, lambda: answers(probe))
    await engine.start()
    return Relay(config, engine, config.client(timeout=0.5, attempts=3), probe, reports)


async def stop_relay(relay: Relay) -> None:
    await relay.engine.stop()
    relay.ng.close()
    relay.probe.close()
    relay.reports.close()
    assert await eventually(lambda: not rtpengines(relay.config.ng_address), timeout=5)


@pytest.fixture(scope="module")
async def relay(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Relay]:
    r = await start_relay(tmp_path_factory.mktemp("rtpengine"))
    yield r
    await stop_relay(r)


@pytest.fixture
def udp() -> Iterator[Callable[[], socket.socket]]:
    """Bound non-blocking UDP sockets on 127.0.0.1 (a phone's or browser's media port)."""
    made: list[socket.socket] = []

    def make() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def port(s: socket.socket) -> int:
    return int(s.getsockname()[1])


# -- SDP -------------------------------------------------------------------------------------


def phone_sdp(media_port: int) -> str:
    """A SIP phone's offer or answer: plain RTP, PCMU and RFC 4733 events."""
    return "\r\n".join(
        [
            "v=0",
            f"o=phone {media_port} 1 IN IP4 127.0.0.1",
            "s=-",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            f"m=audio {media_port} RTP/AVP 0 {TELEPHONE_EVENT}",
            "a=rtpmap:0 PCMU/8000",
            f"a=rtpmap:{TELEPHONE_EVENT} telephone-event/8000",
            f"a=fmtp:{TELEPHONE_EVENT} 0-16",
            "a=ptime:20",
            "a=sendrecv",
            "",
        ]
    )


def chromium_sdp(media_port: int, *, answer_to: str | None = None) -> str:
    """What Chromium sends once ICE gathering is done (as @telnyx/webrtc waits for): one
    audio m-line, BUNDLE, DTLS fingerprint, a host candidate, rtcp-mux. An answer takes the
    offer's mid and payload types."""
    mid = re.search(r"a=mid:(\S+)", answer_to).group(1) if answer_to else "0"  # type: ignore[union-attr]
    codecs = (
        [
            ("0", "PCMU/8000", None),
            (str(TELEPHONE_EVENT), "telephone-event/8000", "0-15"),
        ]
        if answer_to
        else [
            ("111", "opus/48000/2", "minptime=10;useinbandfec=1"),
            ("63", "red/48000/2", "111/111"),
            ("9", "G722/8000", None),
            ("0", "PCMU/8000", None),
            ("8", "PCMA/8000", None),
            ("13", "CN/8000", None),
            ("110", "telephone-event/48000", None),
            ("126", "telephone-event/8000", None),
        ]
    )
    stream = "6a1f0a4e-0d2c-4a4c-9a55-5b1f3b9c2d11 3b2e8d0c-9f4e-4c1a-8a57-2c7d9e0f1a23"
    lines = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {mid}",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS 6a1f0a4e-0d2c-4a4c-9a55-5b1f3b9c2d11",
        f"m=audio {media_port} UDP/TLS/RTP/SAVPF {' '.join(pt for pt, _, _ in codecs)}",
        "c=IN IP4 127.0.0.1",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=candidate:2999745851 1 udp 2122260223 127.0.0.1 {media_port} typ host "
        "generation 0 network-id 1",
        "a=ice-ufrag:Fm0H",
        "a=ice-pwd:4ZnJXO8dBqbfMUNUtiKxfyoI",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:"
        "24:C2:43:F0:A1:58:D0:A1:2C:19:08",
        f"a=setup:{'active' if answer_to else 'actpass'}",
        f"a=mid:{mid}",
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        "a=sendrecv",
        f"a=msid:{stream}",
        "a=rtcp-mux",
    ]
    for pt, name, fmtp in codecs:
        lines.append(f"a=rtpmap:{pt} {name}")
        if pt == "111":
            lines.append("a=rtcp-fb:111 transport-cc")
        if fmtp:
            lines.append(f"a=fmtp:{pt} {fmtp}")
    lines += [
        "a=ssrc:3456789012 cname:w2Yq3Yy1r4mOvW0C",
        f"a=ssrc:3456789012 msid:{stream}",
        "",
    ]
    return "\r\n".join(lines)


# WebRTC -> SIP: what a phone can take (the answer back is made WebRTC again by rtpengine)
TO_RTP: dict[str, Any] = {
    "transport_protocol": "RTP/AVP",
    "ICE": "remove",
    "DTLS": "off",
    "SDES": ["off"],
    "rtcp_mux": ["demux"],
    "strip_extmap": True,
}
# SIP -> WebRTC: what a browser requires (ICE, DTLS-SRTP, rtcp-mux, a mid)
TO_WEBRTC: dict[str, Any] = {
    "transport_protocol": "UDP/TLS/RTP/SAVPF",
    "ICE": "force",
    "DTLS": "passive",
    "SDES": ["off"],
    "rtcp_mux": ["offer"],
    "generate_mid": True,
}


def media_line(sdp: str) -> tuple[int, str, list[str]]:
    found = re.search(r"^m=audio (\d+) (\S+) ([\d ]+)\r?$", sdp, re.M)
    assert found, sdp
    return int(found.group(1)), found.group(2), found.group(3).split()


def attributes(sdp: str, name: str) -> list[str]:
    return re.findall(rf"^a={name}(?::(.*?))?\r?$", sdp, re.M)


def rtp(seq: int, payload_type: int = 0, ssrc: int = 0x1234ABCD) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq, seq * 160, ssrc) + b"\xff" * 160


async def received(s: socket.socket, within: float) -> list[bytes]:
    """Every datagram ``s`` gets within ``within`` seconds."""
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    deadline = loop.time() + within
    while (left := deadline - loop.time()) > 0:
        with contextlib.suppress(TimeoutError):
            got.append(await asyncio.wait_for(loop.sock_recv(s, 4096), left))
    return got


# -- the command line ------------------------------------------------------------------------


def test_settings_become_rtpengine_flags_and_serve_options(tmp_path: Path) -> None:
    s = Settings(
        media_address="10.0.0.5!203.0.113.7",
        media_ports="30000-40000",
        rtpengine_ng="127.0.0.1:2223",
        sip_dir=tmp_path,
    )
    assert Rtpengine.of(s).argv("/usr/bin/rtpengine") == [
        "/usr/bin/rtpengine",
        "--config-file=none",
        "--foreground",
        "--log-stderr",
        "--table=-1",
        "--interface=10.0.0.5!203.0.113.7",
        "--listen-ng=127.0.0.1:2223",
        "--port-min=30000",
        "--port-max=40000",
        "--delete-delay=0",
        "--dtmf-log-dest=127.0.0.1:5070",  # the SIP leg's port: a phone's digits
    ]
    assert Rtpengine.of(Settings(host="::1", rtpengine_ng="[::1]:2223")).argv("r")[5:7] == [
        "--interface=::1",
        "--listen-ng=[::1]:2223",
    ]
    default = Rtpengine.of(Settings(sip_dir=tmp_path))
    assert (default.interface, default.ng_host) == ("127.0.0.1", "127.0.0.1")
    assert (default.port_min, default.port_max) == (30000, 40000)
    for bad in [
        {"media_ports": "40000-30000"},
        {"media_ports": "30000"},
        {"media_ports": "80-90"},
        {"media_address": "0.0.0.0"},
        {"host": "0.0.0.0"},  # the media address defaults to --host
        {"media_address": "rtp.example.com"},
        {"media_address": "10.0.0.5!"},
        {"rtpengine_ng": "2223"},
    ]:
        with pytest.raises(ConfigurationError):
            Rtpengine.of(Settings(sip_dir=tmp_path, **bad))
    options = inspect.signature(serve).parameters
    for name in ("media_address", "media_ports", "rtpengine_ng"):
        assert options[name].default == getattr(Settings(), name)
        assert typing.get_args(options[name].annotation)[1].envvar == "VOXGATE_" + name.upper()


# -- rtpengine itself ------------------------------------------------------------------------


async def test_it_starts_through_the_warden_and_answers_ping(relay: Relay) -> None:
    await relay.ng.ping()
    (pid,) = rtpengines(relay.config.ng_address)
    assert os.getpgid(pid) == relay.engine.pid  # in the warden's group: never orphaned
    assert "Startup complete" in relay.config.log.read_text()
    with pytest.raises(NgError, match="Unrecognized command") as refused:
        await relay.ng.request("no such command")
    assert refused.value.reason == "Unrecognized command"
    assert not isinstance(refused.value, NgNoAnswer)


async def test_a_plain_rtp_call_is_offered_answered_relayed_and_deleted(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    ng, caller, callee, call_id = relay.ng, udp(), udp(), uuid.uuid4().hex
    offer = await ng.offer(call_id, CALLER, phone_sdp(port(caller)))
    to_callee_port, proto, payloads = media_line(offer)
    assert to_callee_port in relay.ports and proto == "RTP/AVP"
    assert "c=IN IP4 127.0.0.1" in offer and payloads == ["0", str(TELEPHONE_EVENT)]
    answer = await ng.answer(call_id, CALLER, CALLEE, phone_sdp(port(callee)))
    to_caller_port, proto, _ = media_line(answer)
    assert to_caller_port in relay.ports and proto == "RTP/AVP"
    assert to_caller_port != to_callee_port

    call = await ng.query(call_id)
    tags: Any = call["tags"]
    assert set(tags) == {CALLER, CALLEE}
    endpoint = tags[CALLER]["medias"][0]["streams"][0]["endpoint"]
    assert (endpoint["address"], endpoint["port"]) == ("127.0.0.1", port(caller))
    assert call_id in await ng.list_calls()

    # the media really flows, both ways, through rtpengine's ports
    loop = asyncio.get_running_loop()
    for seq in range(3):
        await loop.sock_sendto(caller, rtp(seq), ("127.0.0.1", to_caller_port))
        await loop.sock_sendto(callee, rtp(seq, ssrc=7), ("127.0.0.1", to_callee_port))
    assert len(await received(callee, 0.5)) == 3
    assert len(await received(caller, 0.2)) == 3

    await ng.delete(call_id)
    assert call_id not in await ng.list_calls()
    with pytest.raises(NgError, match="Unknown call-id"):
        await ng.query(call_id)


async def test_deleting_an_unknown_call_is_a_clear_error(relay: Relay) -> None:
    with pytest.raises(NgError) as refused:
        await relay.ng.delete("no-such-call", CALLER)
    assert isinstance(refused.value, ServiceUnavailable)
    assert refused.value.reason == "Call-ID not found or tags didn't match"
    assert refused.value.command == "delete"
    # rtpengine's own answer without the "fatal" flag: ok, with a warning
    reply = await relay.ng.delete("no-such-call", missing_ok=True)
    assert reply["warning"] == "Call-ID not found or tags didn't match"


async def test_a_browser_offer_reaches_a_phone_as_plain_rtp(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    ng, browser, phone, call_id = relay.ng, udp(), udp(), uuid.uuid4().hex
    offer = await ng.offer(call_id, CALLER, chromium_sdp(port(browser)), **TO_RTP)
    media_port, proto, payloads = media_line(offer)
    assert proto == "RTP/AVP" and media_port in relay.ports
    assert "0" in payloads  # PCMU, which every phone has
    for gone in ("candidate", "ice-ufrag", "ice-pwd", "fingerprint", "setup", "rtcp-mux"):
        assert not attributes(offer, gone), (gone, offer)
    assert not attributes(offer, "extmap") and "a=group:BUNDLE" not in offer

    # the phone's plain answer goes back to the browser as WebRTC: rtpengine remembers
    answer = await ng.answer(call_id, CALLER, CALLEE, phone_sdp(port(phone)), DTLS="passive")
    media_port, proto, _ = media_line(answer)
    assert proto == "UDP/TLS/RTP/SAVPF" and media_port in relay.ports
    assert attributes(answer, "setup") == ["passive"]
    assert re.fullmatch(
        r"sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}", attributes(answer, "fingerprint")[0]
    )
    assert attributes(answer, "ice-ufrag") and attributes(answer, "ice-pwd")
    assert any(f"127.0.0.1 {media_port} typ host" in c for c in attributes(answer, "candidate"))
    assert attributes(answer, "rtcp-mux") == [""] and attributes(answer, "mid") == ["0"]
    await ng.delete(call_id)


async def test_a_phone_offer_reaches_a_browser_as_webrtc(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    ng, phone, browser, call_id = relay.ng, udp(), udp(), uuid.uuid4().hex
    offer = await ng.offer(call_id, CALLER, phone_sdp(port(phone)), **TO_WEBRTC)
    media_port, proto, _ = media_line(offer)
    assert proto == "UDP/TLS/RTP/SAVPF" and media_port in relay.ports
    candidates = attributes(offer, "candidate")
    assert any(f"UDP 2130706431 127.0.0.1 {media_port} typ host" in c for c in candidates)
    assert attributes(offer, "fingerprint")[0].startswith("sha-256 ")
    assert attributes(offer, "ice-ufrag") and attributes(offer, "ice-pwd")
    assert attributes(offer, "rtcp-mux") and attributes(offer, "mid")
    # an offer always says actpass (RFC 5763); DTLS=passive shows in answers only
    assert attributes(offer, "setup") == ["actpass"]

    answer = await ng.answer(call_id, CALLER, CALLEE, chromium_sdp(port(browser), answer_to=offer))
    media_port, proto, payloads = media_line(answer)
    assert proto == "RTP/AVP" and media_port in relay.ports
    assert payloads == ["0", str(TELEPHONE_EVENT)]
    for gone in ("candidate", "ice-ufrag", "fingerprint", "setup", "rtcp-mux"):
        assert not attributes(answer, gone), (gone, answer)
    await ng.delete(call_id)


async def test_codecs_are_transcoded_only_when_the_two_sides_share_none(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    ng, phone, browser = relay.ng, udp(), udp()
    # a phone with G.711: the browser is offered the phone's codecs first and answers PCMU,
    # which the phone speaks: passed through
    call_id = uuid.uuid4().hex
    offer = await ng.offer(call_id, CALLER, phone_sdp(port(phone)), **TO_BROWSER)
    assert media_line(offer)[2][0] == "0", offer  # the phone's own codec first
    answer = await ng.answer(call_id, CALLER, CALLEE, chromium_sdp(port(browser), answer_to=offer))
    assert media_line(answer)[2][0] == "0"
    await ng.delete(call_id)
    # a phone with GSM alone: Opus and PCMU are added for the browser, whose PCMU answer
    # becomes GSM for the phone (rtpengine transcodes)
    call_id = uuid.uuid4().hex
    gsm = phone_sdp(port(phone)).replace(
        f"RTP/AVP 0 {TELEPHONE_EVENT}", f"RTP/AVP 3 {TELEPHONE_EVENT}"
    )
    gsm = gsm.replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:3 GSM/8000")
    offer = await ng.offer(call_id, CALLER, gsm, **TO_BROWSER)
    assert "opus/48000/2" in offer and "PCMU/8000" in offer, offer
    answer = await ng.answer(call_id, CALLER, CALLEE, chromium_sdp(port(browser), answer_to=offer))
    assert media_line(answer)[2][0] == "3" and "GSM/8000" in answer, answer
    await ng.delete(call_id)
    # and the other way: a browser that offers Opus alone is offered G.711 to the phone too
    call_id = uuid.uuid4().hex
    opus_only = re.sub(r"(m=audio \d+ \S+) [\d ]+", r"\1 111", chromium_sdp(port(browser)))
    offer = await ng.offer(call_id, CALLER, opus_only, **TO_PHONE)
    assert {"0", "8"} <= set(media_line(offer)[2]), offer
    await ng.delete(call_id)


async def test_a_carrier_is_offered_g711_alone_whatever_the_browser_offered(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    ng, browser, carrier = relay.ng, udp(), udp()
    opus_only = re.sub(r"(m=audio \d+ \S+) [\d ]+", r"\1 111", chromium_sdp(port(browser)))
    for sdp in (chromium_sdp(port(browser)), opus_only):
        call_id = uuid.uuid4().hex
        offer = await ng.offer(call_id, CALLER, sdp, **TO_TRUNK)
        _, proto, payloads = media_line(offer)
        codecs = {c.split()[1].split("/")[0] for c in attributes(offer, "rtpmap")}
        assert proto == "RTP/AVP" and codecs <= {"PCMU", "PCMA", "telephone-event"}, offer
        assert {"PCMU", "PCMA"} <= codecs and "0" in payloads
        answer = await ng.answer(call_id, CALLER, CALLEE, phone_sdp(port(carrier)), DTLS="passive")
        assert media_line(answer)[1] == "UDP/TLS/RTP/SAVPF", answer
        await ng.delete(call_id)


async def test_hold_blocks_the_media_and_dtmf_is_played_into_the_call(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    ng, caller, callee, call_id = relay.ng, udp(), udp(), uuid.uuid4().hex
    # inject-DTMF on both sides: without it "play DTMF" answers ok and plays nothing
    await ng.offer(call_id, CALLER, phone_sdp(port(caller)), inject_DTMF=True)
    answer = await ng.answer(call_id, CALLER, CALLEE, phone_sdp(port(callee)), inject_DTMF=True)
    to_caller_port = media_line(answer)[0]
    loop = asyncio.get_running_loop()

    async def talk() -> None:  # the caller speaks: a packet every 20 ms
        for seq in range(10_000):
            await loop.sock_sendto(caller, rtp(seq), ("127.0.0.1", to_caller_port))
            await asyncio.sleep(0.02)

    talking = asyncio.create_task(talk())
    try:
        assert await received(callee, 0.3)
        await ng.block_media(call_id, CALLER)
        await received(callee, 0.1)  # what was already on its way
        assert await received(callee, 0.4) == []
        await ng.unblock_media(call_id, CALLER)
        assert await received(callee, 0.4)

        with pytest.raises(NgError, match="Out of range"):
            await ng.play_dtmf(call_id, "X", CALLER)
        await ng.play_dtmf(call_id, "5", CALLER, duration_ms=200)
        events = [p for p in await received(callee, 1.0) if p[1] & 0x7F == TELEPHONE_EVENT]
        assert events, "no RFC 4733 event reached the callee"
        assert {p[12] for p in events} == {5}  # the event code of digit 5
    finally:
        talking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await talking
    await ng.delete(call_id)


def telephone_event(seq: int, digit: int, *, end: bool, duration: int) -> bytes:
    """An RFC 4733 event packet (volume 10) in the caller's RTP stream."""
    header = struct.pack("!BBHII", 0x80, TELEPHONE_EVENT, seq, 8000, 0x1234ABCD)
    return header + struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)


async def test_a_phones_rfc_4733_digit_is_reported_to_voxgates_leg_port(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    ng, caller, callee, call_id = relay.ng, udp(), udp(), uuid.uuid4().hex
    await received(relay.reports, 0.1)  # digits other tests played
    await ng.offer(call_id, CALLER, phone_sdp(port(caller)), inject_DTMF=True)
    answer = await ng.answer(call_id, CALLER, CALLEE, phone_sdp(port(callee)), inject_DTMF=True)
    to_caller_port = media_line(answer)[0]
    loop = asyncio.get_running_loop()
    for seq in range(5):  # some audio first: the stream's SSRC is known
        await loop.sock_sendto(caller, rtp(seq), ("127.0.0.1", to_caller_port))
    for i, end in enumerate((False, False, True, True, True)):  # an end is sent three times
        packet = telephone_event(5 + i, 7, end=end, duration=160 * (i + 1))
        await loop.sock_sendto(caller, packet, ("127.0.0.1", to_caller_port))
    reports = [json.loads(d) for d in await received(relay.reports, 1.0)]
    assert [(r["callid"], r["source_tag"], r["event"]) for r in reports] == [
        (call_id, CALLER, 7)
    ], reports
    await ng.delete(call_id)


async def test_list_is_not_cut_at_rtpengines_default_of_32(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    media, prefix = udp(), uuid.uuid4().hex[:8]
    ids = [f"{prefix}-{n}" for n in range(34)]
    try:
        for call_id in ids:
            await relay.ng.offer(call_id, CALLER, phone_sdp(port(media)))
        assert len((await relay.ng.request("list"))["calls"]) == 32  # type: ignore[arg-type]
        assert set(ids) <= set(await relay.ng.list_calls())
    finally:
        for call_id in ids:
            await relay.ng.delete(call_id, missing_ok=True)


async def test_a_repeated_cookie_is_answered_from_rtpengines_cache(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    """Why a retry keeps its cookie: the second datagram is not carried out again."""
    control, media = udp(), udp()
    loop = asyncio.get_running_loop()
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    replies = []
    for call_id in (first, second):
        request = {"call-id": call_id, "from-tag": CALLER, "sdp": phone_sdp(port(media))}
        datagram = frame("same-cookie-" + first, {**request, "command": "offer"})
        await loop.sock_sendto(control, datagram, (relay.config.ng_host, relay.config.ng_port))
        replies.append(await asyncio.wait_for(loop.sock_recv(control, 65535), 2.0))
    assert replies[0] == replies[1]
    assert unframe(replies[0])[1]["result"] == "ok"
    calls = await relay.ng.list_calls()
    assert first in calls and second not in calls
    await relay.ng.delete(first)


# -- the client's bounds ---------------------------------------------------------------------


async def test_no_answer_is_a_clear_error_after_its_attempts() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as deaf:  # hears, never answers
        deaf.bind(("127.0.0.1", 0))
        deaf.setblocking(False)
        silent = NgClient("127.0.0.1", deaf.getsockname()[1], timeout=0.2, attempts=3)
        try:
            with pytest.raises(NgNoAnswer, match=r"did not answer 'ping' \(3 attempts, 0.2 s each"):
                await silent.ping()
        finally:
            silent.close()
        heard = []
        with contextlib.suppress(BlockingIOError):
            while True:
                heard.append(deaf.recv(2048))
    assert len(heard) == 3 and len(set(heard)) == 1  # the same request, with its cookie, 3 times
    assert issubclass(NgNoAnswer, ServiceUnavailable)


class _LossyRtpengine(asyncio.DatagramProtocol):
    """Drops the first datagram; answers every later one, after a reply with a stranger's
    cookie (which the client must not take for its own)."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.seen.append(data)
        if len(self.seen) > 1 and self.transport is not None:
            cookie = data.split(b" ", 1)[0]
            self.transport.sendto(b"stranger d6:result5:error12:error-reason1:xe", addr)
            self.transport.sendto(cookie + b" d6:result4:ponge", addr)


async def test_a_lost_request_is_sent_again_with_the_same_cookie() -> None:
    loop = asyncio.get_running_loop()
    transport, lossy = await loop.create_datagram_endpoint(
        _LossyRtpengine, local_addr=("127.0.0.1", 0)
    )
    client = NgClient("127.0.0.1", transport.get_extra_info("sockname")[1], timeout=0.2)
    try:
        await client.ping()
        assert len(lossy.seen) == 2 and lossy.seen[0] == lossy.seen[1]
        await client.ping()
        assert len(lossy.seen) == 3
        assert lossy.seen[2].split(b" ")[0] != lossy.seen[0].split(b" ")[0]  # a new cookie
    finally:
        client.close()
        transport.close()


# -- supervision -----------------------------------------------------------------------------


async def test_kill_9_of_rtpengine_restarts_it(tmp_path: Path) -> None:
    own = await start_relay(tmp_path)
    try:
        (before,) = rtpengines(own.config.ng_address)
        warden = own.engine.pid
        os.kill(before, signal.SIGKILL)
        assert await eventually(lambda: own.engine.restarts == 1, timeout=10)
        after = await eventually(lambda: rtpengines(own.config.ng_address), timeout=10)
        assert after and after != [before]
        assert own.engine.pid != warden  # a new warden, and its rtpengine in its group
        assert os.getpgid(after[0]) == own.engine.pid
        for _ in range(50):  # it answers again once it has its socket (bounded)
            if await answers(own.probe):
                break
        await own.ng.ping()
    finally:
        await stop_relay(own)


async def test_a_node_sweeps_the_calls_its_previous_run_left_and_no_other(
    relay: Relay, udp: Callable[[], socket.socket]
) -> None:
    """A node that died left a call at a shared rtpengine; its next start deletes it, and
    leaves another node's call alone."""
    phones = Phones(free_udp_port("127.0.0.1"), ("127.0.0.1", 5060), "x.test", "s", relay.ng, "n1")
    ours, theirs = phones.prefix + uuid.uuid4().hex, f"vx-n2-{uuid.uuid4().hex}"
    for call_id in (ours, theirs):
        await relay.ng.offer(call_id, CALLER, phone_sdp(port(udp())))
    await phones.start()
    try:
        held = await relay.ng.list_calls()
        assert ours not in held and theirs in held
    finally:
        await phones.stop()
        await relay.ng.delete(theirs)
