"""The core's limits and timers. The gateway builds it from ``Settings``, where every
default lives (``config.Settings.session_config``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SessionConfig"]


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Built by the gateway from ``Settings``, where every default lives."""

    expiry_notice: float
    handshake_timeout: float
    max_frames_per_second: int
    frame_burst: int
    node_id: str
    expiry_grace: float  # seconds a call in progress may outlive the token
    reattach_window: float  # seconds a dropped session waits for its client (0: never)
    ping_interval: float  # seconds between our pings (0: none)
    idle_timeout: float  # seconds of silence that count as a dropped network (0: never)
    region: str = "local"  # said in REGED with the node (``dc``), as Telnyx does
    report_key: bytes = b""  # signs each session's call_report_id (none: reports are off)
