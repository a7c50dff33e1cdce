"""Real SIP peers for the tests: sipp (Debian's sip-tester) scenarios and baresip phones, each a
private process on loopback ports, and a reader of the edge's Kamailio location table."""

from __future__ import annotations

import json
import random
import re
import shutil
import socket
import subprocess
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness import Voxgate, free_port

DOMAIN = "voxgate.test"
SIPP = shutil.which("sipp") or "/usr/bin/sipp"
BARESIP = shutil.which("baresip") or "/usr/bin/baresip"


def free_udp_port() -> int:
    """A port free for both UDP and TCP (sipp and baresip listen on both)."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


@dataclass
class SipNode:
    """A voxgate with ``--sip`` and the ports it gave Kamailio."""

    vg: Voxgate
    sip_port: int
    ws_port: int
    hook_port: int

    @property
    def sip_dir(self) -> Path:
        return self.vg.workdir / "sip"

    def start(self) -> SipNode:
        """Starts voxgate and waits for its banner's SIP line: the REST port answers before
        Kamailio is up."""
        log = self.vg.log_path
        seen = log.read_text().count("  SIP:") if log.exists() else 0
        self.vg.start()
        banner = lambda: log.read_text().count("  SIP:") > seen  # noqa: E731
        if not wait_for(banner, timeout=30):
            raise RuntimeError(f"no SIP edge:\n{self.vg.log_path.read_text()}")
        return self

    def table(self) -> dict[str, list[dict[str, Any]]]:
        """Kamailio's location table (``ul.dump`` on its control socket): AOR -> contacts."""
        return _dump(self.sip_dir / "kamailio-rpc.sock")

    def contacts(self, user: str) -> list[str]:
        return [c["Address"] for c in self.table().get(user, [])]


def sip_args(sip_port: int, ws_port: int, hook_port: int, workdir: Path) -> list[str]:
    return [
        "--sip",
        "--sip-domain",
        DOMAIN,
        "--sip-port",
        str(sip_port),
        "--sip-ws-port",
        str(ws_port),
        "--sip-hook-port",
        str(hook_port),
        "--sip-dir",
        str(workdir / "sip"),
        "--sip-leg-port",
        str(free_udp_port()),
        # the media relay: a control port and a port range of this node's own
        "--rtpengine-ng",
        f"127.0.0.1:{free_udp_port()}",
        "--media-ports",
        _media_ports(),
    ]


def _media_ports() -> str:
    low = random.randrange(10000, 32400, 200)  # below the ephemeral ports free_port draws from
    return f"{low}-{low + 199}"


def start_sip_node(vg_factory: type[Voxgate], **kwargs: Any) -> SipNode:
    extra = list(kwargs.pop("extra_args", []))
    sip_port, ws_port, hook_port = free_udp_port(), free_port(), free_port()
    vg = vg_factory(**kwargs)
    vg.extra_args = [*extra, *sip_args(sip_port, ws_port, hook_port, vg.workdir)]
    return SipNode(vg, sip_port, ws_port, hook_port).start()


def rpc(path: Path, method: str, *params: str) -> Any:
    """One JSON-RPC call on Kamailio's control socket (blocking: callable from any test)."""
    own = path.parent / f"test-{uuid.uuid4().hex[:8]}.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(own))
        try:
            s.settimeout(3)
            body = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}
            s.sendto(json.dumps(body).encode(), str(path))
            return json.loads(s.recv(4 * 1024 * 1024))["result"]
        finally:
            own.unlink()


def _dump(path: Path) -> dict[str, list[dict[str, Any]]]:
    dump = rpc(path, "ul.dump")
    table: dict[str, list[dict[str, Any]]] = {}
    for domain in dump.get("Domains", []):
        for aor in domain["Domain"].get("AoRs", []):
            info = aor["Info"]
            table[info["AoR"]] = [c["Contact"] for c in info.get("Contacts", [])]
    return table


def wait_for(check: Any, timeout: float = 10.0, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


# -- sipp ------------------------------------------------------------------------------------
REGISTER = """\
REGISTER sip:{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@{domain}>;tag=[pid]-[call_number]
To: <sip:{user}@{domain}>
Call-ID: [call_id]
CSeq: {cseq} REGISTER
Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
{auth}Max-Forwards: 70
Expires: {expires}
User-Agent: sipp-{user}
Content-Length: 0
"""


def _send(message: str, *, retrans: bool = True) -> str:
    """A request (retransmitted until answered, unless it is an ACK, which is not)."""
    attr = ' retrans="500"' if retrans else ""
    return f"  <send{attr}><![CDATA[\n{message}\n]]></send>\n"


def register_scenario(
    user: str, password: str | None, *, expect: int = 200, expires: int = 300
) -> str:
    """REGISTER, answer the 401 with the password (if given), expect ``expect``."""
    steps = _send(REGISTER.format(domain=DOMAIN, user=user, cseq=1, auth="", expires=expires))
    if password is None:
        steps += f'  <recv response="{expect}"/>\n'
    else:
        steps += '  <recv response="401" auth="true"/>\n'
        auth = f"[authentication username={user} password={password}]\n"
        steps += _send(
            REGISTER.format(domain=DOMAIN, user=user, cseq=2, auth=auth, expires=expires)
        )
        steps += f'  <recv response="{expect}"/>\n'
    return _scenario(steps)


def _scenario(steps: str) -> str:
    return (
        f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="t">\n{steps}</scenario>\n'
    )


def loopback_address() -> str:
    """An address of 127.0.0.0/8 of its own: failed digests count per source address, and one
    test's failures must not lock out the next one."""
    return f"127.{random.randint(1, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"


@dataclass
class Sipp:
    workdir: Path
    server_port: int
    transport: str = "u1"  # u1 (UDP) | t1 (TCP)
    port: int = field(default_factory=free_udp_port)
    address: str = field(default_factory=loopback_address)
    count: int = 0

    def run(
        self, scenario: str, *, timeout: float = 15.0, extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        """Runs one scenario to its end; a failure is a non-zero exit (sipp's own verdict)."""
        self.count += 1
        path = self.workdir / f"scenario{self.count}.xml"
        path.write_text(textwrap.dedent(scenario))
        cmd = [
            SIPP,
            f"127.0.0.1:{self.server_port}",
            "-sf",
            str(path),
            "-m",
            "1",
            "-i",
            self.address,
            "-p",
            str(self.port),
            "-t",
            self.transport,
            "-timeout",
            str(int(timeout)),
            "-timeout_error",
            "-nostdin",
            "-trace_msg",
            "-message_file",
            str(self.workdir / f"messages{self.count}.log"),
            *extra,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)

    def messages(self) -> str:
        return (self.workdir / f"messages{self.count}.log").read_text(errors="replace")


# -- baresip ---------------------------------------------------------------------------------
def _free_for_baresip() -> int:
    """A port baresip can listen on: it takes P for UDP and TCP, and P+1 for TLS."""
    for _ in range(100):
        port = free_udp_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of ports for baresip")


@dataclass
class Baresip:
    """A baresip phone registered with ``user``/``password`` over ``transport``."""

    workdir: Path
    server_port: int
    user: str
    password: str
    transport: str = "udp"
    regint: int = 60
    port: int = field(default_factory=_free_for_baresip)
    console: int = field(default_factory=free_udp_port)  # its keys (cons): press() sends them
    proc: subprocess.Popen[bytes] | None = None

    record: bool = False  # keep what the phone receives (sndfile: rec/dump-<time>-dec.wav)

    @property
    def recordings(self) -> Path:
        return self.workdir / "rec"

    def received(self) -> list[Path]:
        """The wav files of what the phone received, oldest first (one per call)."""
        return sorted(self.recordings.glob("dump-*-dec.wav"))

    def start(self) -> Baresip:
        self.workdir.mkdir(parents=True, exist_ok=True)
        recording = ""
        if self.record:  # baresip 1.0.0's aufile is a source only; sndfile records on decode
            self.recordings.mkdir(exist_ok=True)
            recording = f"snd_path {self.recordings}\nmodule sndfile.so\n"
        (self.workdir / "config").write_text(
            textwrap.dedent(
                f"""\
                poll_method epoll
                sip_listen 127.0.0.1:{self.port}
                audio_player aufile,/dev/null
                audio_source ausine,440
                ausrc_srate 48000
                auplay_srate 48000
                ausrc_channels 2
                audio_alert aufile,/dev/null
                module_path /usr/lib/baresip/modules
                module g711.so
                module ausine.so
                module aufile.so
                module cons.so
                cons_listen 127.0.0.1:{self.console}
                module_app account.so
                module_app menu.so
                """
            )
            + recording
        )
        outbound = f"sip:127.0.0.1:{self.server_port};transport={self.transport}"
        (self.workdir / "accounts").write_text(
            f"<sip:{self.user}@{DOMAIN}>;auth_pass={self.password};"
            f'outbound="{outbound}";regint={self.regint};answermode=auto\n'
        )
        (self.workdir / "contacts").write_text("")
        log = (self.workdir / "baresip.log").open("ab")
        self.proc = subprocess.Popen(
            [BARESIP, "-f", str(self.workdir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def log(self) -> str:
        return (self.workdir / "baresip.log").read_text(errors="replace")

    def press(self, keys: str) -> None:
        """Keys on the phone's keypad: in a call, each digit goes out as RFC 4733 events."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for key in keys:  # held 0.2 s, then released (baresip's KEYCODE_REL ends the event)
                s.sendto(key.encode(), ("127.0.0.1", self.console))
                time.sleep(0.2)
                s.sendto(b"\x04", ("127.0.0.1", self.console))
                time.sleep(0.2)

    def dial(self, uri: str) -> None:
        """Calls ``uri`` (baresip's ``/dial`` command, through its console)."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(f"/dial {uri}\n".encode(), ("127.0.0.1", self.console))

    def hang_up(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"b", ("127.0.0.1", self.console))  # menu's key for hangup

    def digits_received(self) -> str:
        """The digits the phone received as RFC 4733 events, in order."""
        return "".join(re.findall(r"received event: '(.)' \(end=1\)", self.log()))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def registrations(vg: Voxgate, key: str, **filters: str) -> list[dict[str, Any]]:
    import ssl

    import httpx

    params = {f"filter[{k}]": v for k, v in filters.items()}
    res = httpx.get(
        vg.base_url + "/registrations",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
        verify=ssl.create_default_context(cafile=str(vg.ca)) if vg.ca else True,
    )
    res.raise_for_status()
    return list(json.loads(res.text)["data"])
