"""Audio between the real ``@telnyx/webrtc`` SDK in Chromium and a real SIP phone (baresip)
through voxgate's SIP leg, Kamailio and rtpengine: the page's ICE + DTLS-SRTP (Opus offered)
on one side, the phone's plain RTP/AVP (G.711) on the other. Runs inside scripts/netns-run,
where only 127.0.0.0/8 exists, so every media packet stays on loopback.

baresip auto-answers and sends a 440 Hz sine (``ausine``); its ``sndfile`` filter records what
it decodes, which is what the page's fake microphone sent through rtpengine. (Debian's baresip
1.0.0 has no ``aufile`` player: ``sndfile`` is its way to write received audio to a wav file.)
"""

from __future__ import annotations

import array
import contextlib
import math
import os
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from tests.certs import make_ca_and_cert
from tests.conformance.test_browser import events, start, wait_event
from tests.harness import SECRETS, Voxgate, free_port
from tests.rtc.conftest import Api, api_for
from tests.sip.peers import DOMAIN, Baresip, SipNode, free_udp_port, sip_args, wait_for

pytestmark = pytest.mark.media
OpenPage = Callable[..., Page]


@pytest.fixture(autouse=True)
def _inside_namespace() -> None:
    if not os.environ.get("VOXGATE_MEDIA_NETNS"):
        pytest.fail("media tests run inside scripts/netns-run (make test does this)")


@dataclass
class Sound:
    seconds: float
    rms: float  # of the whole recording, full scale 32768
    loud_ms: int  # in 20 ms windows whose RMS is above the threshold
    bursts: int  # quiet-to-loud changes


def listen(path: Path, threshold: float = 300.0) -> Sound:
    """The recording's length and loudness (16-bit PCM, any rate and channel count). baresip
    writes the wav header as the call's recording closes: a read may come a moment early."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with wave.open(str(path), "rb") as w:
                assert w.getsampwidth() == 2, w.getparams()
                rate, channels = w.getframerate(), w.getnchannels()
                samples = array.array("h", w.readframes(w.getnframes()))
            break
        except (wave.Error, EOFError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    if not samples:
        return Sound(0.0, 0.0, 0, 0)
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    window = max(1, rate * channels // 50)
    loud, bursts, was_loud = 0, 0, False
    for i in range(0, len(samples) - window + 1, window):
        chunk = samples[i : i + window]
        is_loud = math.sqrt(sum(s * s for s in chunk) / window) > threshold
        loud += is_loud
        bursts += is_loud and not was_loud
        was_loud = is_loud
    return Sound(len(samples) / channels / rate, rms, loud * 20, bursts)


def heard_the_page(sound: Sound) -> bool:
    """Chromium's fake microphone beeps twice a second (a short ~400 Hz tone, silence
    between): a recording of it is loud, in bursts, quiet most of the time. Not silence, and
    not the phone's own continuous sine come back."""
    return (
        sound.rms > 100
        and sound.bursts >= sound.seconds  # at least one beep a second
        and 100 <= sound.loud_ms <= sound.seconds * 1000 * 0.6
    )


def _states(page: Page) -> list[dict[str, Any]]:
    return page.evaluate("() => window.vxCallStates")


def _count(page: Page, state: str) -> int:
    return sum(1 for s in _states(page) if s["state"] == state)


def _wait_count(page: Page, state: str, n: int, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "([state, n]) => window.vxCallStates.filter(s => s.state === state).length >= n",
        arg=[state, n],
        timeout=timeout,
    )


def _received(page: Page) -> int:
    """Audio bytes the page's live (newest) peer connection received."""
    return int(
        page.evaluate(
            """async () => {
                const pc = window.vxPCs[window.vxPCs.length - 1];
                let received = 0;
                (await pc.getStats()).forEach((r) => {
                    if (r.type === 'inbound-rtp' && (r.kind || r.mediaType) === 'audio') {
                        received += r.bytesReceived || 0;
                    }
                });
                return received;
            }"""
        )
    )


def _audio_in(page: Page, minimum: int = 8000, timeout: float = 15.0) -> int:
    """Waits for the newest call's inbound audio bytes to pass ``minimum``, then checks they
    keep growing; returns the count."""
    deadline = time.monotonic() + timeout
    while (got := _received(page)) <= minimum:
        assert time.monotonic() < deadline, (got, page.evaluate("() => window.vxAudioBytes()"))
        time.sleep(0.25)
    time.sleep(1.0)
    later = _received(page)
    assert later > got + 2000, (got, later)  # 1 s of PCMU is 8000 bytes of payload
    return later


def _voxgate_logs(node: SipNode) -> str:
    """The tails of rtpengine's, Kamailio's and voxgate's logs."""
    parts = []
    for name in ("rtpengine.log", "kamailio.log"):
        path = node.sip_dir / name
        if path.exists():
            parts.append(f"--- {name}\n{path.read_text(errors='replace')[-4000:]}")
    parts.append(f"--- voxgate.log\n{node.vg.log_path.read_text(errors='replace')[-4000:]}")
    return "\n".join(parts)


def _diagnostics(node: SipNode, phone: Baresip, page: Page | None) -> str:
    """Everything that says why a call or its audio failed: the page's call states and SDK
    errors, and the tails of baresip's, rtpengine's, Kamailio's and voxgate's logs."""
    parts = []
    if page is not None:
        with contextlib.suppress(PlaywrightError):
            parts.append(f"--- page states\n{_states(page)}")
            parts.append(f"--- page errors\n{events(page, 'telnyx.error')}")
            parts.append(f"--- page audio\n{page.evaluate('() => window.vxAudioBytes()')}")
    parts.append(f"--- baresip\n{phone.log()[-4000:]}")
    return "\n".join([*parts, _voxgate_logs(node)])


def _recording_phone(node: SipNode, api: Api, tmp_path: Path) -> tuple[Baresip, str]:
    """A registered baresip that records what it hears, and its user."""
    callee = api.credential()
    SECRETS.add(callee["sip_password"])
    user = callee["sip_username"]
    phone = Baresip(tmp_path / "phone", node.sip_port, user, callee["sip_password"], record=True)
    phone.start()
    assert wait_for(lambda: node.contacts(user)), phone.log()
    return phone, user


def _page_of(node: SipNode, api: Api, open_page: OpenPage, agent: str) -> Page:
    """An SDK page logged in (a token) as a new credential of its own."""
    page = open_page(node.vg, user_agent=agent)
    start(page, node.vg, login_token=api.token(api.credential()["id"]))
    wait_event(page, "telnyx.ready")
    return page


def test_the_sdk_calls_a_phone_with_audio_both_ways_and_either_side_hangs_up(
    sip_node: SipNode, sip_api: Api, open_page: OpenPage, tmp_path: Path
) -> None:
    phone, user = _recording_phone(sip_node, sip_api, tmp_path)
    page: Page | None = None
    step = "the phone registers; the page logs in"
    try:
        page = _page_of(sip_node, sip_api, open_page, "SipMedia/page")

        step = "1. the page calls the phone, which answers"
        page.evaluate("dest => window.vxDial(dest)", user)
        _wait_count(page, "active", 1)
        assert wait_for(lambda: "Call established" in phone.log())
        step = "1. the phone's sine reaches the page (through rtpengine, SRTP)"
        _audio_in(page)
        time.sleep(2)  # some seconds of the page's audio for the phone's recording
        step = "1. the page hangs up; the phone hears the BYE"
        page.evaluate("() => window.vxHangup()")
        _wait_count(page, "hangup", 1)
        assert wait_for(lambda: "session closed" in phone.log(), 10)
        step = "1. the phone recorded the page's audio"
        first = wait_for(phone.received, 5)
        assert len(first) == 1, first
        sound = listen(first[0])  # about the call's length: the page's audio all along
        assert sound.seconds > 2.5 and heard_the_page(sound), sound

        step = "2. the page calls again; audio"
        page.evaluate("dest => window.vxDial(dest)", user)
        _wait_count(page, "active", 2)
        _audio_in(page)
        step = "2. the phone hangs up (baresip quits: BYE); the page's call ends"
        phone.stop()
        _wait_count(page, "hangup", 2, timeout=10_000)
        ended = [s for s in _states(page) if s["state"] == "hangup"][-1]
        assert ended["cause"] == "NORMAL_CLEARING", ended
        assert not events(page, "telnyx.error")
        step = "2. the phone recorded the page's audio"
        # sndfile names files by the second the call started: the first call lasted longer
        second = wait_for(lambda: phone.received()[1:], 5)
        assert len(second) == 1, phone.received()
        sound = listen(second[0])
        assert sound.seconds > 1.0 and heard_the_page(sound), sound
    except (AssertionError, PlaywrightError) as exc:
        why = f"{step}: {exc!r}\n{_diagnostics(sip_node, phone, page)}"
        raise AssertionError(why) from exc
    finally:
        phone.stop()


def _held(page: Page, held: bool) -> None:
    """The unmodified SDK's ``call.hold()`` / ``unhold()`` (no helper on this page)."""
    page.evaluate("held => window.vxHold(held)", held)
    _wait_count(page, "held" if held else "active", 1 if held else 2, timeout=10_000)


def _growth(measure: Callable[[], int], seconds: float) -> int:
    before = measure()
    time.sleep(seconds)
    return measure() - before


def test_the_sdks_own_hold_stops_the_audio_both_ways_and_digits_cross_both_ways(
    sip_node: SipNode, sip_api: Api, open_page: OpenPage, tmp_path: Path
) -> None:
    phone, user = _recording_phone(sip_node, sip_api, tmp_path)
    page: Page | None = None
    step = "the phone registers; the page logs in"
    try:
        # no vxHelper: the SDK as it ships
        page = _page_of(sip_node, sip_api, open_page, "SipHold/page")
        page.evaluate("dest => window.vxDial(dest)", user)
        _wait_count(page, "active", 1)
        _audio_in(page)
        recording = wait_for(phone.received, 5)[0]

        def phone_heard() -> int:  # sndfile writes what the phone decodes as it decodes it
            return recording.stat().st_size

        step = "audio flows both ways before the hold"
        second_of_audio = _growth(phone_heard, 1.0)
        assert second_of_audio > 8000, second_of_audio  # 8 kHz 16-bit: 16,000 bytes a second
        assert _growth(lambda: _received(page), 1.0) > 4000

        step = "the SDK's hold(): 2 s without audio at the phone, and at the page"
        _held(page, True)
        time.sleep(0.3)  # what was on its way when rtpengine stopped relaying
        at_phone = _growth(phone_heard, 2.0)
        at_page = _growth(lambda: _received(page), 0.5)
        assert at_phone < second_of_audio * 0.05, (at_phone, second_of_audio)
        assert at_page < 200, at_page
        step = "unhold(): the audio comes back both ways"
        _held(page, False)
        time.sleep(0.3)
        assert _growth(phone_heard, 1.0) > second_of_audio * 0.5
        assert _growth(lambda: _received(page), 1.0) > 4000

        step = "the page's digits reach the phone as RFC 4733 events"
        page.evaluate(
            """() => Object.values(window.vxCalls).find((c) => c.state === 'active').dtmf('1*9')"""
        )
        assert wait_for(lambda: phone.digits_received() == "1*9", 10), phone.digits_received()
        step = "the phone's keypad reaches the page's call as digits (telnyx_rtc.info)"
        phone.press("4#")
        page.wait_for_function(
            """() => window.vxEvents.filter((e) => e.name === 'telnyx.notification'
                   && e.payload && e.payload.dtmf).map((e) => e.payload.dtmf).join('') === '4#'""",
            timeout=10_000,
        )
        page.evaluate("() => window.vxHangup()")
        _wait_count(page, "hangup", 1)
        assert not events(page, "telnyx.error")
    except (AssertionError, PlaywrightError) as exc:
        why = f"{step}: {exc!r}\n{_diagnostics(sip_node, phone, page)}"
        raise AssertionError(why) from exc
    finally:
        phone.stop()


def _sipjs_bytes_in(page: Page) -> int:
    return int(page.evaluate("() => window.vxBytesIn()"))


def _sipjs_states(page: Page) -> list[str]:
    return list(page.evaluate("() => window.vxStates"))


def _sipjs_wait(page: Page, state: str, n: int = 1, timeout: float = 15_000) -> None:
    page.wait_for_function(
        "([state, n]) => window.vxStates.filter((s) => s === state).length >= n",
        arg=[state, n],
        timeout=timeout,
    )


# Opus end to end (no transcoding): Chromium's fake microphone is mostly silence between its
# beeps, about 2,500 bytes a second (G.711 would be 8,000)
OPUS_SECOND = 1000


@pytest.fixture(scope="module")
def wss_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipNode]:
    """A SIP node with a certificate (of a test CA): SIP over WSS, signaling over wss://."""
    work = tmp_path_factory.mktemp("sipwss")
    ca, cert, key = make_ca_and_cert(work)
    vg = Voxgate(work / "vg", extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca=ca)
    sip_port, ws_port, hook_port = free_udp_port(), free_port(), free_port()
    vg.extra_args += sip_args(sip_port, ws_port, hook_port, vg.workdir)
    node = SipNode(vg, sip_port, ws_port, hook_port).start()
    yield node
    vg.stop()


@pytest.fixture(scope="module")
def wss_api(wss_node: SipNode) -> Iterator[Api]:
    api = api_for(wss_node.vg)
    yield api
    api.http.close()


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_sipjs_and_the_sdk_call_each_other_with_audio_both_ways(
    scheme: str, request: pytest.FixtureRequest, open_page: OpenPage, sip_pages: None
) -> None:
    """sip.js's SimpleUser (registered over SIP-over-WebSocket, plain or TLS as Telnyx's demo
    app's SIP.js tab does) and the SDK page: both are browsers, so rtpengine keeps ICE and
    DTLS-SRTP on both sides of the relay."""
    secure = scheme == "wss"
    sip_node: SipNode = request.getfixturevalue("wss_node" if secure else "sip_node")
    sip_api: Api = request.getfixturevalue("wss_api" if secure else "sip_api")
    sip_cred, sdk_cred = sip_api.credential(), sip_api.credential()
    SECRETS.add(sip_cred["sip_password"])
    sip_user = sip_cred["sip_username"]
    sipjs = open_page(
        sip_node.vg, "/sip-pages/sipjs.html", user_agent="SipJsMedia/page", insecure=secure
    )
    sdk: Page | None = None
    step = "sip.js registers"
    try:
        sipjs.wait_for_function("() => window.vxReady === true", timeout=10_000)
        sipjs.evaluate(
            "o => window.vxSipJs(o)",
            {"server": f"{scheme}://127.0.0.1:{sip_node.ws_port}",
             "aor": f"sip:{sip_user}@{DOMAIN}", "username": sip_user,
             "password": sip_cred["sip_password"]},
        )  # fmt: skip
        _sipjs_wait(sipjs, "registered")
        sipjs.evaluate("() => { window.vxAutoAnswer = true; }")
        sdk = open_page(sip_node.vg, user_agent="SdkMedia/page", insecure=secure)
        start(sdk, sip_node.vg, login_token=sip_api.token(sdk_cred["id"]))
        wait_event(sdk, "telnyx.ready")

        step = "1. the SDK calls sip.js, which answers; audio both ways"
        sdk.evaluate("dest => window.vxDial(dest)", sip_user)
        _wait_count(sdk, "active", 1)
        _sipjs_wait(sipjs, "answered")
        _audio_in(sdk)
        assert _growth(lambda: _sipjs_bytes_in(sipjs), 1.0) > OPUS_SECOND
        step = "1. the SDK hangs up; sip.js's call ends"
        sdk.evaluate("() => window.vxHangup()")
        _wait_count(sdk, "hangup", 1)
        _sipjs_wait(sipjs, "hangup")

        step = "2. sip.js calls the SDK, which answers; audio both ways"
        sdk.evaluate("() => { window.vxAutoAnswer = true; }")
        sipjs.evaluate("to => window.vxCall(to)", f"sip:{sdk_cred['sip_username']}@{DOMAIN}")
        _wait_count(sdk, "active", 2)
        _sipjs_wait(sipjs, "answered", 2)
        _audio_in(sdk)
        assert _growth(lambda: _sipjs_bytes_in(sipjs), 1.0) > OPUS_SECOND
        step = "2. sip.js hangs up; the SDK's call ends"
        sipjs.evaluate("() => window.vxHangup()")
        _wait_count(sdk, "hangup", 2)
        _sipjs_wait(sipjs, "hangup", 2)
        assert not events(sdk, "telnyx.error")
    except (AssertionError, PlaywrightError) as exc:
        logs = sipjs.evaluate("() => [window.vxStates, window.vxLog]")
        why = f"{step}: {exc!r}\nsip.js: {logs}\nSDK: {_states(sdk) if sdk else None}"
        raise AssertionError(why + "\n" + _voxgate_logs(sip_node)) from exc


def test_a_phone_calls_an_echo_assistant_and_hears_itself(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    """sip:<assistant id>@domain: the assistant (aiortc) answers behind rtpengine's WebRTC
    side; the echo sends the phone's own sine back, which its recording holds."""
    phone, _ = _recording_phone(sip_node, sip_api, tmp_path)
    bot = sip_api.post("/ai/assistants", {"name": "echo", "kind": "echo"}).json()["data"]
    step = "the phone dials the assistant, which answers"
    try:
        phone.dial(f"sip:{bot['id']}@{DOMAIN}")
        assert wait_for(lambda: "Call established" in phone.log(), 15)
        recording = wait_for(phone.received, 5)[0]
        step = "the phone hears its own sine come back"
        assert _growth(lambda: recording.stat().st_size, 2.0) > 16000
        phone.hang_up()
        assert wait_for(lambda: "session closed" in phone.log() or "terminated" in phone.log())
        sound = listen(recording)
        assert sound.rms > 1000 and sound.loud_ms > 1000, sound  # a sine, not silence
    except AssertionError as exc:
        raise AssertionError(f"{step}: {exc!r}\n{_diagnostics(sip_node, phone, None)}") from exc
    finally:
        phone.stop()


def test_in_a_cluster_a_phone_on_node1_and_a_page_on_node2_call_each_other_with_audio(
    tmp_path: Path, private_redis: tuple[str, object], open_page: OpenPage
) -> None:
    """The phone registers through node1's Kamailio, the page logs in on node2: each call's
    phone leg lives on node1 (its SIP leg, its rtpengine), the page's leg on node2, and the
    two nodes relay over Redis. (Postgres is out of reach in the namespace: a shared SQLite
    file, as tests/conformance/test_media_cluster.py does.)"""
    common = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/shared.db",
        "env": {"VOXGATE_SECRET_FILE": str(tmp_path / "shared.secret")},
    }
    bus = ["--redis-url", private_redis[0], "--redis-prefix", "vxsipmedia:"]
    api = Voxgate(
        tmp_path / "api", extra_args=[*bus, "--role", "api", "--sip-domain", DOMAIN], **common
    ).start()  # type: ignore[arg-type]
    nodes: list[SipNode] = []
    phone: Baresip | None = None
    page: Page | None = None
    step = "the cluster starts"
    try:
        for name in ("node1", "node2"):
            vg = Voxgate(tmp_path / name, api_key=api.api_key, **common)  # type: ignore[arg-type]
            sip_port, ws_port, hook_port = free_udp_port(), free_port(), free_port()
            vg.extra_args = [
                *bus, "--role", "rtc", "--node-id", name,
                *sip_args(sip_port, ws_port, hook_port, vg.workdir),
            ]  # fmt: skip
            nodes.append(SipNode(vg, sip_port, ws_port, hook_port).start())
        node1, node2 = nodes
        rest = api_for(api)
        phone_cred, page_cred = rest.credential(), rest.credential()
        SECRETS.add(phone_cred["sip_password"])
        user = phone_cred["sip_username"]
        phone = Baresip(
            tmp_path / "phone", node1.sip_port, user, phone_cred["sip_password"], record=True
        ).start()
        step = "the phone registers on node1, the page logs in on node2"
        assert wait_for(lambda: node1.contacts(user))
        page = open_page(node2.vg, user_agent="SipCluster/page")
        start(page, node2.vg, login_token=rest.token(page_cred["id"]))
        wait_event(page, "telnyx.ready")

        step = "1. the page (node2) calls the phone (node1): audio both ways"
        page.evaluate("dest => window.vxDial(dest)", user)
        _wait_count(page, "active", 1)
        _audio_in(page)
        recording = wait_for(phone.received, 5)[0]
        assert _growth(lambda: recording.stat().st_size, 1.0) > 8000
        step = "1. the page hangs up; the phone hears it"
        page.evaluate("() => window.vxHangup()")
        _wait_count(page, "hangup", 1)
        assert wait_for(lambda: "session closed" in phone.log(), 10)

        step = "2. the phone (node1) calls the page (node2), which answers: audio both ways"
        page.evaluate("() => { window.vxAutoAnswer = true; }")
        phone.dial(f"sip:{page_cred['sip_username']}@{DOMAIN}")
        _wait_count(page, "active", 2)
        _audio_in(page)
        second = wait_for(lambda: phone.received()[1:], 5)[0]
        assert _growth(lambda: second.stat().st_size, 1.0) > 8000
        step = "2. the phone hangs up; the page's call ends"
        phone.hang_up()
        _wait_count(page, "hangup", 2, timeout=10_000)
        assert not events(page, "telnyx.error")
    except (AssertionError, PlaywrightError) as exc:
        details = "\n".join(_voxgate_logs(n) for n in nodes)
        why = f"{step}: {exc!r}\n{phone.log()[-3000:] if phone else ''}\n{details}"
        raise AssertionError(why) from exc
    finally:
        if phone is not None:
            phone.stop()
        for vg in (*[n.vg for n in nodes], api):
            vg.stop()
