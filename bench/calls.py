"""Calls across SIP and WebRTC, media through rtpengine (issue 27): what the SIP edge adds to a
call's setup, how many calls a core of rtpengine carries, and that no media session outlives
its call.

- Setup: a WebRTC session (voxgate's Python client) calls a phone registered to voxgate's
  Kamailio (sipp, answering at once), against the same session calling another WebRTC session
  of the same voxgate (the client, answering on the invite), interleaved. What the phone's call
  adds is voxgate's SIP leg, Kamailio, and rtpengine's offer and answer.
- Capacity: rtpengine alone, as voxgate starts it (userspace forwarding), pinned to one core,
  fed 20 ms packets both ways for many calls from the load core; its CPU from /proc over a
  window gives a share of the core per call, so calls per core at 80 %. Plain relay (PCMU both
  sides) against transcoding (one side Opus only, the other PCMU only), interleaved.
- Leaks: 1,000 WebRTC -> SIP calls, hung up by either side, then rtpengine's ``list``: a
  session voxgate forgot to delete would hold its ports until rtpengine's own timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import math
import random
import re
import select
import socket
import statistics
import struct
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.figures import Row
from bench.harness import (
    LOAD_CORE,
    SCALE,
    Server,
    free_port,
    free_udp_port,
    n,
    pin,
    provision,
    settle,
    start_voxgate,
)
from bench.machine import cpu_seconds
from bench.sip import DOMAIN, REGISTER, SIPP
from bench.stats import Measured, interleave
from voxgate.client import Call, Client, ClientError, Event
from voxgate.config import Settings
from voxgate.sip.engines import find_binary
from voxgate.sip.ng import NgClient
from voxgate.sip.rtpengine import RTPENGINE_PACKAGES, Rtpengine, answers

__all__ = ["rtpengine_calls", "sip_calls"]

PTIME = 0.02  # a packet every 20 ms each way: 50 per second
CALLERS = 10  # WebRTC sessions calling at once in the leak run
HANGUP_PAUSE_MS = 50  # how long the phone that hangs up waits after the ACK
RELAY_CALLS, TRANSCODED_CALLS = 400, 25  # concurrent calls per capacity sample (at scale 1)
WARM_UP, WINDOW = 1.0, max(2.0, 5.0 * SCALE)  # seconds of media before and while measuring
OPUS_PT = 111

# -- SIP phones (sipp) -----------------------------------------------------------------------

INVITED = """\
  <recv request="INVITE"/>
"""
INVITED_KEEPING_THE_DIALOG = """\
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
    </action>
  </recv>
"""
ANSWER = """\
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]p[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]p[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone [call_number] 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv

]]></send>
  <recv request="ACK"/>
"""
HEARS_BYE = """\
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""
SENDS_BYE = f"""\
  <pause milliseconds="{HANGUP_PAUSE_MS}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$callee];tag=[pid]p[call_number]
To: [$caller]
Call-ID: [call_id]
CSeq: 1 BYE
[routes]
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"""


def _scenario(steps: str) -> str:
    head = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="phone">\n'
    return f"{head}{steps}</scenario>\n"


@dataclass
class Phone:
    """A sipp registered as ``user``, then answering every call on the same port at once:
    waiting for the caller's BYE, or (``hangs_up``) sending its own after a pause."""

    user: str
    hangs_up: bool
    proc: subprocess.Popen[str]

    @classmethod
    def start(cls, work: Path, sip_port: int, user: str, password: str, *, hangs_up: bool) -> Phone:
        port = free_udp_port()
        register, users = work / "register.xml", work / f"{user}.csv"
        register.write_text(REGISTER.format(domain=DOMAIN))
        users.write_text(
            f"SEQUENTIAL\n{user};[authentication username={user} password={password}]\n"
        )
        done = subprocess.run(
            [SIPP, f"127.0.0.1:{sip_port}", "-sf", str(register), "-inf", str(users), "-m", "1",
             "-i", "127.0.0.1", "-p", str(port), "-nostdin", "-timeout", "10", "-timeout_error"],
            capture_output=True, text=True, preexec_fn=pin(LOAD_CORE), timeout=30,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the phone {user} did not register: {done.stdout[-1500:]}")
        answer = work / f"{user}.xml"
        steps = [INVITED_KEEPING_THE_DIALOG, ANSWER, SENDS_BYE] if hangs_up else [
            INVITED, ANSWER, HEARS_BYE]  # fmt: skip
        answer.write_text(_scenario("".join(steps)))
        log = work / f"{user}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [SIPP, "-sf", str(answer), "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                 "-timeout", "900", "-timeout_error"],
                stdout=out, stderr=subprocess.STDOUT, text=True, cwd=work,
                preexec_fn=pin(LOAD_CORE),
            )  # fmt: skip
        try:  # sipp refuses a scenario at once (and says why); one it takes, it runs
            proc.wait(0.5)
        except subprocess.TimeoutExpired:
            return cls(user, hangs_up, proc)
        raise RuntimeError(f"the phone {user} did not start: {log.read_text()[-1500:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- WebRTC sessions (voxgate's client, with Chromium's SDP) ---------------------------------


def _chromium_sdp(media_port: int, answer_to: str | None = None) -> str:
    """What Chromium sends once ICE gathering is done: one audio m-line, BUNDLE, a DTLS
    fingerprint, a host candidate, rtcp-mux; an answer takes the offer's mid and PCMU."""
    found = re.search(r"a=mid:(\S+)", answer_to or "")
    mid = found.group(1) if found else "0"
    codecs = (
        [("0", "PCMU/8000", "")]
        if answer_to
        else [
            ("111", "opus/48000/2", "minptime=10;useinbandfec=1"),
            ("9", "G722/8000", ""),
            ("0", "PCMU/8000", ""),
            ("8", "PCMA/8000", ""),
            ("126", "telephone-event/8000", ""),
        ]
    )
    lines = [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {mid}",
        "a=msid-semantic: WMS bench",
        f"m=audio {media_port} UDP/TLS/RTP/SAVPF {' '.join(pt for pt, _, _ in codecs)}",
        "c=IN IP4 127.0.0.1",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=candidate:2999745851 1 udp 2122260223 127.0.0.1 {media_port} typ host generation 0",
        "a=ice-ufrag:Fm0H",
        "a=ice-pwd:4ZnJXO8dBqbfMUNUtiKxfyoI",
        "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:"
        "24:C2:43:F0:A1:58:D0:A1:2C:19:08",
        f"a=setup:{'active' if answer_to else 'actpass'}",
        f"a=mid:{mid}",
        "a=sendrecv",
        "a=rtcp-mux",
    ]
    for pt, name, fmtp in codecs:
        lines.append(f"a=rtpmap:{pt} {name}")
        if fmtp:
            lines.append(f"a=fmtp:{pt} {fmtp}")
    return "\r\n".join([*lines, "a=ssrc:3456789012 cname:bench", ""])


async def _online(rtc: str, token: str) -> Client:
    client = Client(rtc, login_token=token, user_agent="bench", reconnect=False)
    await client.connect()
    return client


def _auto_answer(callee: Client) -> None:
    async def answer(event: Event) -> None:
        call: Call = event.data["call"]
        await call.answer(sdp=_chromium_sdp(41000, answer_to=call.remote_sdp))

    callee.on("incoming_call", answer)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def _setups(caller: Client, destination: str, count: int) -> list[float]:
    """``count`` calls one after the other: ms from the invite to the answer (state active),
    each hung up by the caller before the next."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        call = await caller.new_call(destination, sdp=_chromium_sdp(40000))
        await call.wait_state("active", 10)
        times.append((time.perf_counter() - start) * 1000)
        await call.hangup()
    return times


def sip_node_args(home: Path) -> tuple[list[str], int, str]:
    """``home`` made, and the options of a voxgate serving calls from it with its SIP edge
    (Kamailio, the SIP leg, rtpengine) on ports of its own: (options, SIP port, rtpengine's
    ng address)."""
    home.mkdir(exist_ok=True)
    sip_port, ng_address = free_udp_port(), f"127.0.0.1:{free_udp_port()}"
    low = random.randrange(20000, 28000, 2)
    args = ["--sip", "--sip-domain", DOMAIN, "--sip-port", str(sip_port),
            "--sip-ws-port", str(free_port()), "--sip-hook-port", str(free_port()),
            "--sip-leg-port", str(free_udp_port()), "--sip-dir", str(home / "sip"),
            "--sip-flood-limit", "0", "--rtpengine-ng", ng_address,
            "--media-ports", f"{low}-{low + 1999}",
            # a session dialing back to back sends far more frames than a person: no budget
            "--max-frames-per-second", "100000"]  # fmt: skip
    return args, sip_port, ng_address


@dataclass(frozen=True)
class Setups:
    """Call setups to one destination, a figure per sample: ms p50, ms p99; and the median of
    the samples' calls per second."""

    p50: Measured
    p99: Measured
    rate: float


def setups_against_webrtc(
    runner: asyncio.Runner,
    caller: Client,
    name: str,
    ours: str,
    webrtc: str,
    *,
    rounds: int,
    warm_up: int,
    pid: int,
) -> tuple[Setups, Setups]:
    """``caller``'s call setups to ``ours`` (a phone, a number) against those to ``webrtc``
    (a WebRTC session answering on the invite), ``rounds`` calls per sample, interleaved;
    after ``warm_up`` calls to each (first calls are slower: not timed) and the server
    (``pid``) settled: (to ours, to WebRTC)."""
    for destination in (webrtc, ours):
        runner.run(_setups(caller, destination, warm_up))
    settle(pid)
    p99s: dict[str, list[float]] = {"ours": [], "webrtc": []}
    rates: dict[str, list[float]] = {"ours": [], "webrtc": []}

    def sample(kind: str, destination: str) -> float:
        start = time.monotonic()
        times = runner.run(_setups(caller, destination, rounds))
        rates[kind].append(rounds / (time.monotonic() - start))
        p99s[kind].append(_percentile(times, 0.99))
        return statistics.median(times)

    to_ours, to_webrtc = interleave(
        name,
        lambda: sample("webrtc", webrtc),
        lambda: sample("ours", ours),
    )

    def setups(kind: str, p50: Measured) -> Setups:
        return Setups(p50, Measured(tuple(p99s[kind])), statistics.median(rates[kind]))

    return setups("ours", to_ours), setups("webrtc", to_webrtc)


def setup_rows(
    figure: str, ours: Setups, webrtc: Setups, p50_note: str, p99_note: str
) -> list[Row]:
    """``figure``'s p50 and p99 rows, for information: call setups to ours against WebRTC's."""
    return [
        Row(
            f"{figure} {p}",
            value,
            f"ms {p}",
            baseline,
            f"ms {p} WebRTC -> WebRTC",
            "information",
            None,
            note,
        )
        for p, value, baseline, note in (
            ("p50", ours.p50, webrtc.p50, p50_note),
            ("p99", ours.p99, webrtc.p99, p99_note),
        )
    ]


async def _one_call(caller: Client, destination: str, *, phone_hangs_up: bool) -> str:
    """One call set up and hung up (by the caller, or by the phone): "completed", or what
    went wrong."""
    call: Call | None = None
    try:
        call = await caller.new_call(destination, sdp=_chromium_sdp(40000))
        await call.wait_state("active", 10)
        if "UDP/TLS/RTP/SAVPF" not in (call.remote_sdp or ""):
            return "an answer that is not WebRTC's"
        if phone_hangs_up:
            await call.wait_state("hangup", 10)
            return "completed" if call.cause == "NORMAL_CLEARING" else f"ended {call.cause}"
        await call.hangup()
        return "completed"
    except TimeoutError:
        state = call.state if call is not None else "not invited"
        return f"stuck {state}" + (f" ({call.cause})" if call is not None and call.cause else "")
    except ClientError as exc:
        return f"refused: {exc.message}"
    finally:
        if call is not None and call.state != "hangup":
            with contextlib.suppress(ClientError, TimeoutError):
                await call.hangup()


async def _calls(callers: list[Client], phones: Sequence[Phone], count: int) -> Counter[str]:
    """``count`` calls, ``len(callers)`` at a time, to the phones in turn."""
    outcomes: Counter[str] = Counter()

    async def calling(first: int, caller: Client) -> None:
        for i in range(first, count, len(callers)):
            phone = phones[i % len(phones)]
            outcomes[await _one_call(caller, phone.user, phone_hangs_up=phone.hangs_up)] += 1

    await asyncio.gather(*(calling(i, c) for i, c in enumerate(callers)))
    return outcomes


async def _left(ng: NgClient, limit: float = 10.0) -> list[str]:
    """rtpengine's calls, once none is left or after ``limit`` s (deletes still on their way)."""
    deadline = time.monotonic() + limit
    calls = await ng.list_calls()
    while calls and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        calls = await ng.list_calls()
    return calls


async def _ports_in_use(ng: NgClient) -> int:
    stats: Any = (await ng.request("statistics"))["statistics"]
    return sum(int(i["ports"]["used"]) for i in stats["interfaces"])


def sip_calls(work: Path, key: str) -> list[Row]:
    home = work / "callnode"
    args, sip_port, ng_address = sip_node_args(home)
    node, api, rtc = start_voxgate(home, key, args)
    phones: list[Phone] = []
    try:
        creds = provision(api, key, 4 + CALLERS)
        phones = [
            Phone.start(home, sip_port, c["sip_username"], c["sip_password"], hangs_up=bye)
            for c, bye in ((creds[0], False), (creds[1], True))
        ]
        with asyncio.Runner() as runner:
            caller, callee = (runner.run(_online(rtc, c["token"])) for c in creds[2:4])
            _auto_answer(callee)
            callee_user, phone_user = creds[3]["sip_username"], phones[0].user
            rounds = n(200)
            to_sip, to_webrtc = setups_against_webrtc(
                runner,
                caller,
                "call setup",
                phone_user,
                callee_user,
                rounds=rounds,
                warm_up=5,
                pid=node.proc.pid,
            )
            callers = [runner.run(_online(rtc, c["token"])) for c in creds[4:]]
            count = n(1000)
            ng = NgClient.at(ng_address)
            outcomes = runner.run(_calls(callers, phones, count))
            left = runner.run(_left(ng))
            ports = runner.run(_ports_in_use(ng))
            ng.close()
            for client in (caller, callee, *callers):
                runner.run(client.close())
    finally:
        for p in phones:
            p.stop()
        node.stop()
    completed = outcomes.pop("completed", 0)
    failures = ", ".join(f"{k} x{v}" for k, v in outcomes.most_common()) or "none"
    how = (
        f"{rounds} calls per sample, back to back, each hung up by the caller "
        f"({to_sip.rate:.0f} calls/s to the phone, {to_webrtc.rate:.0f}/s WebRTC); the phone is "
        "sipp answering at once (180, 200), the WebRTC callee voxgate's Python client answering "
        "on the invite"
    )
    return [
        *setup_rows(
            "call setup WebRTC -> SIP phone",
            to_sip,
            to_webrtc,
            f"invite to answer; {how}. The phone's call adds voxgate's SIP leg, Kamailio and "
            "rtpengine's offer and answer",
            f"invite to answer; {how}",
        ),
        Row(
            "rtpengine sessions left after WebRTC -> SIP calls",
            Measured.once(len(left)),
            "sessions",
            Measured.once(completed),
            f"of {count} calls completed",
            "0 left, every call completed",
            (not left and completed == count) if SCALE >= 1 else None,
            f"{CALLERS} callers at a time, each answer rtpengine's WebRTC rewrite of the "
            f"phone's RTP/AVP; half hung up by the caller, half by the phone ({HANGUP_PAUSE_MS} "
            f"ms after its answer); failed: {failures}. Then (after the setup figure's "
            f"{len(to_sip.p99.samples) * rounds + 5} calls to the phone too) rtpengine's `list`: "
            f"{len(left)} calls{f' ({left[:3]})' if left else ''}, {ports} media ports in use",
        ),
    ]


# -- rtpengine's capacity --------------------------------------------------------------------


def _ulaw(sample: int) -> int:
    """G.711 mu-law of a 16-bit sample."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = (magnitude >> 7).bit_length() - 1
    return ~(sign | exponent << 4 | (magnitude >> (exponent + 3)) & 0x0F) & 0xFF


def _tone(rate: int, frame: int) -> list[list[int]]:
    """One second of a 440 Hz tone at half scale, in 20 ms frames of ``frame`` samples."""
    wave = [int(16000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate)]
    return [wave[i : i + frame] for i in range(0, rate, frame)]


def _pcmu_frames() -> list[bytes]:
    return [bytes(_ulaw(s) for s in f) for f in _tone(8000, 160)]


def _opus_frames() -> list[bytes]:
    """The tone as Opus, 48 kHz mono at 32 kb/s (a browser's default), from the libopus that
    rtpengine itself links (Debian's libopus0, a dependency of rtpengine-daemon)."""
    name = ctypes.util.find_library("opus")
    if name is None:
        raise RuntimeError("libopus is not installed: apt-get install libopus0")
    opus = ctypes.CDLL(name)
    opus.opus_encoder_create.restype = ctypes.c_void_p
    error = ctypes.c_int()
    encoder = ctypes.c_void_p(opus.opus_encoder_create(48000, 1, 2048, ctypes.byref(error)))
    if error.value != 0:  # 2048: OPUS_APPLICATION_VOIP
        raise RuntimeError(f"opus_encoder_create: error {error.value}")
    opus.opus_encoder_ctl(encoder, 4002, ctypes.c_int(32000))  # OPUS_SET_BITRATE
    frames = []
    out = ctypes.create_string_buffer(1500)
    for samples in _tone(48000, 960):
        size = opus.opus_encode(encoder, (ctypes.c_int16 * 960)(*samples), 960, out, 1500)
        if size <= 0:
            raise RuntimeError(f"opus_encode: error {size}")
        frames.append(out.raw[:size])
    opus.opus_encoder_destroy(encoder)
    return frames


def _plain_sdp(port: int, opus: bool) -> str:
    """A party's offer or answer in plain RTP: PCMU only, or Opus only."""
    codec = (
        [f"m=audio {port} RTP/AVP {OPUS_PT}", f"a=rtpmap:{OPUS_PT} opus/48000/2"]
        if opus
        else [f"m=audio {port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000"]
    )
    return "\r\n".join(
        ["v=0", f"o=- {port} 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
         *codec, "a=ptime:20", "a=sendrecv", ""]
    )  # fmt: skip


@dataclass
class _Side:
    """One party of a call: its socket, rtpengine's port it sends to, what it sends."""

    sock: socket.socket
    payload_type: int
    frames: list[bytes]
    clock: int  # RTP timestamp units per packet
    ssrc: int
    to: tuple[str, int] = ("127.0.0.1", 0)


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
    s.setblocking(False)
    return s


def _media_port(sdp: str) -> int:
    found = re.search(r"^m=audio (\d+) ", sdp, re.M)
    if found is None:
        raise RuntimeError(f"rtpengine's SDP has no audio: {sdp}")
    return int(found.group(1))


async def _bridge(ng: NgClient, count: int, *, transcode: bool) -> list[_Side]:
    """``count`` calls through rtpengine: caller A offers Opus only (transcoding) or PCMU,
    callee B answers PCMU only."""
    opus, pcmu = (_opus_frames() if transcode else _pcmu_frames()), _pcmu_frames()
    sides = []
    for i in range(count):
        a = _Side(_socket(), OPUS_PT if transcode else 0, opus, 960 if transcode else 160, 2 * i)
        b = _Side(_socket(), 0, pcmu, 160, 2 * i + 1)
        call_id = f"bench-{uuid.uuid4().hex}"
        flags: dict[str, Any] = {"codec": {"transcode": ["PCMU"]}} if transcode else {}
        offer = await ng.offer(
            call_id, "a", _plain_sdp(a.sock.getsockname()[1], transcode), **flags
        )
        answer = await ng.answer(call_id, "a", "b", _plain_sdp(b.sock.getsockname()[1], False))
        b.to, a.to = ("127.0.0.1", _media_port(offer)), ("127.0.0.1", _media_port(answer))
        sides += [a, b]
    return sides


def _pump(sides: list[_Side], first: int, ticks: int) -> tuple[int, int, int]:
    """Each side sends a packet every 20 ms for ``ticks`` ticks (sequence numbers from
    ``first``) and reads what rtpengine relays to it: (sent, received, received with another
    payload type than the side's own, i.e. not relayed in its codec)."""
    sent = received = foreign = 0
    poller = select.epoll()
    own = {s.sock.fileno(): s for s in sides}
    for fd in own:
        poller.register(fd, select.EPOLLIN)
    start = time.monotonic()
    try:
        for tick in range(first, first + ticks):
            for s in sides:
                header = struct.pack("!BBHII", 0x80, s.payload_type, tick & 0xFFFF,
                                     (tick * s.clock) & 0xFFFFFFFF, s.ssrc)  # fmt: skip
                s.sock.sendto(header + s.frames[tick % len(s.frames)], s.to)
            sent += len(sides)
            deadline = start + (tick - first + 1) * PTIME
            while (left := deadline - time.monotonic()) > 0:
                for fd, _ in poller.poll(left):
                    with contextlib.suppress(BlockingIOError):
                        packet = own[fd].sock.recv(2048)
                        if 200 <= packet[1] <= 206:
                            continue  # RTCP (rtpengine's own reports), not relayed media
                        received += 1
                        foreign += packet[1] & 0x7F != own[fd].payload_type
    finally:
        poller.close()
    return sent, received, foreign


def _share_per_call(
    runner: asyncio.Runner, ng: NgClient, pid: int, count: int, *, transcode: bool
) -> float:
    """rtpengine's share of its core per call (calls counted from the packets really sent:
    100 a second is one call), over ``WINDOW`` s of media after ``WARM_UP`` s."""
    sides = runner.run(_bridge(ng, count, transcode=transcode))
    try:
        warm = round(WARM_UP / PTIME)
        _pump(sides, 0, warm)
        cpu, wall = cpu_seconds(pid), time.monotonic()
        sent, received, foreign = _pump(sides, warm, round(WINDOW / PTIME))
        busy, elapsed = cpu_seconds(pid) - cpu, time.monotonic() - wall
    finally:
        for call_id in runner.run(ng.list_calls()):
            runner.run(ng.delete(call_id))
        for s in sides:
            s.sock.close()
    if received < 0.95 * sent or foreign:
        raise RuntimeError(
            f"rtpengine relayed {received} of {sent} packets, {foreign} not in the receiving "
            f"side's codec ({count} calls, transcoding {transcode}): not a figure"
        )
    if busy / elapsed > 0.9:
        raise RuntimeError(f"rtpengine used {busy / elapsed:.0%} of its core: saturated")
    return busy / elapsed / (sent / elapsed / (2 / PTIME))


def rtpengine_calls(work: Path) -> Row:
    low = random.randrange(12000, 24000, 2)
    settings = Settings(
        host="127.0.0.1",
        media_ports=f"{low}-{low + 3999}",  # 4 ports a call: RTP and RTCP on each side
        rtpengine_ng=f"127.0.0.1:{free_udp_port()}",
        sip_dir=work / "rtpengine",
        sip_leg_port=free_udp_port(),  # no digits are sent: nothing is reported there
    )
    config = Rtpengine.of(settings)
    relay = Server("rtpengine", config.argv(find_binary("rtpengine", RTPENGINE_PACKAGES)))
    shares: dict[bool, list[float]] = {False: [], True: []}
    try:
        with asyncio.Runner() as runner:
            probe, ng = config.client(timeout=0.2, attempts=1), config.client()
            for _ in range(100):  # up within 10 s
                if runner.run(answers(probe)):
                    break
                time.sleep(0.1)
            probe.close()

            def per_core(transcode: bool) -> float:
                count = n(TRANSCODED_CALLS if transcode else RELAY_CALLS)
                share = _share_per_call(runner, ng, relay.proc.pid, count, transcode=transcode)
                shares[transcode].append(share)
                return 0.8 / share

            transcoded, plain = interleave(
                "rtpengine calls", lambda: per_core(False), lambda: per_core(True)
            )
            ng.close()
    finally:
        relay.stop()
    plain_pc, transcoded_pc = (100 * statistics.median(shares[t]) for t in (False, True))
    return Row(
        "rtpengine calls per core at 80% (userspace, Opus <-> PCMU)",
        transcoded,
        "calls",
        plain,
        "calls plain relay (PCMU)",
        "information",
        None,
        f"{transcoded_pc:.2f}% of a core per transcoded call ({n(TRANSCODED_CALLS)} at once), "
        f"{plain_pc:.3f}% per relayed call ({n(RELAY_CALLS)} at once), measured over "
        f"{WINDOW:g} s and scaled linearly to 80%; 20 ms packets both ways on loopback, plain "
        "RTP (a browser leg's SRTP is not in it). Transcoding: A offers Opus only, rtpengine "
        "adds PCMU (codec transcode), B answers PCMU only; A sends a 440 Hz tone encoded by "
        "libopus (ctypes) at 32 kb/s, B the same tone in PCMU; every packet relayed arrived in "
        "its receiver's codec",
    )
