"""rtpengine, the SIP edge's media relay: its command line from ``Settings`` and the check
that it is up (an ng ``ping`` answered ``pong``).

voxgate runs it like Kamailio, through ``Engine`` (a supervised child behind the warden,
restarted when it dies, never orphaned), or uses one the system runs (``--sip-edge external``,
``--rtpengine-ng HOST:PORT``). Everything rtpengine needs is on its command line, nothing in
a file: ``--config-file=none``, or Debian's ``/etc/rtpengine/rtpengine.conf`` would be read
and could add recording, Homer or Redis behind voxgate's back. Forwarding stays in userspace
(``--table=-1``): the kernel module is an operator's choice, and it needs root.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError
from voxgate.sip.ng import NgClient, NgError, join_address, parse_address

__all__ = [
    "RTPENGINE_PACKAGES",
    "Rtpengine",
    "answers",
    "free_udp_port",
    "media_interface",
    "port_range",
]

RTPENGINE_PACKAGES = "rtpengine-daemon"


@dataclass(frozen=True, slots=True)
class Rtpengine:
    """rtpengine as voxgate runs it."""

    dir: Path  # its log (the warden's output) lives here
    interface: str  # --interface: ADDRESS, or LOCAL!ADVERTISED
    ng_host: str
    ng_port: int
    port_min: int
    port_max: int
    dtmf_dest: str  # where it reports the digits phones send (voxgate's SIP leg port)

    @classmethod
    def of(cls, s: Settings, directory: Path | None = None) -> Rtpengine:
        """From ``--media-address``, ``--media-ports`` and ``--rtpengine-ng`` (without it, a
        port free now on 127.0.0.1); ``ConfigurationError`` for a value rtpengine would
        refuse, said in voxgate's terms rather than in its log."""
        if s.rtpengine_ng:
            ng_host, ng_port = parse_address(s.rtpengine_ng)
        else:
            ng_host, ng_port = "127.0.0.1", free_udp_port("127.0.0.1")
        port_min, port_max = port_range(s.media_ports)
        return cls(
            dir=(directory or s.sip_dir).resolve(),
            interface=media_interface(s.media_address or s.host),
            ng_host=ng_host,
            ng_port=ng_port,
            port_min=port_min,
            port_max=port_max,
            dtmf_dest=join_address("127.0.0.1", s.sip_leg_port),
        )

    @property
    def log(self) -> Path:
        return self.dir / "rtpengine.log"

    @property
    def ng_address(self) -> str:
        return join_address(self.ng_host, self.ng_port)

    def argv(self, binary: str) -> list[str]:
        """Foreground, logging to stderr (the warden's log file), in userspace."""
        return [
            binary,
            "--config-file=none",
            "--foreground",
            "--log-stderr",
            "--table=-1",
            f"--interface={self.interface}",
            f"--listen-ng={self.ng_address}",
            f"--port-min={self.port_min}",
            f"--port-max={self.port_max}",
            # a deleted call is gone at once (rtpengine's default keeps it 30 s, in `list`
            # and `query`, and holding its ports): voxgate alone decides when a call ends
            "--delete-delay=0",
            # each RFC 4733 digit a party sends, as JSON: voxgate hands a phone's digits to
            # the browser's call (its SIP leg tells these datagrams from SIP by the "{")
            f"--dtmf-log-dest={self.dtmf_dest}",
        ]

    def client(self, *, timeout: float = 1.0, attempts: int = 3) -> NgClient:
        return NgClient(self.ng_host, self.ng_port, timeout=timeout, attempts=attempts)


async def answers(client: NgClient) -> bool:
    """Whether rtpengine answers a ``ping`` (``Engine``'s readiness check: give it a client
    with a short timeout and one attempt, as it asks every 0.1 s)."""
    try:
        await client.ping()
    except NgError:
        return False
    return True


def port_range(text: str) -> tuple[int, int]:
    """``MIN-MAX`` (``--media-ports``) as two ports."""
    found = re.fullmatch(r"\s*(\d{1,5})\s*-\s*(\d{1,5})\s*", text)
    low, high = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
    if not 1024 <= low < high <= 65535:
        raise ConfigurationError(f"--media-ports {text!r}: MIN-MAX with 1024 <= MIN < MAX <= 65535")
    return low, high


def media_interface(address: str) -> str:
    """rtpengine's ``--interface``: an address, or ``LOCAL!ADVERTISED`` behind NAT. The
    address a phone is sent to, so never 0.0.0.0 or ``::`` (rtpengine refuses them)."""
    parts = address.split("!")
    try:
        found = [ipaddress.ip_address(p.strip("[]")) for p in parts]
    except ValueError:
        found = []
    if not 1 <= len(found) <= 2 or len(found) != len(parts):
        raise ConfigurationError(
            f"--media-address {address!r}: an IP address, or LOCAL!PUBLIC behind NAT"
        )
    if found[0].is_unspecified:
        raise ConfigurationError(
            f"--media-address: rtpengine cannot relay media on {found[0]} (no phone can be "
            "sent there); give the address phones and browsers reach, or LOCAL!PUBLIC"
        )
    return "!".join(str(a) for a in found)


def free_udp_port(host: str) -> int:
    """A UDP port free on ``host`` now, for rtpengine's ng socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
