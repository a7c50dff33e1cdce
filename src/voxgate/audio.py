"""Generated audio for aiortc peers: the assistants' voices and the Python client's test tone.

Shared by the server (assistants) and the client SDK, so neither imports the other.
"""

from __future__ import annotations

import asyncio
import fractions
import math
from typing import Any

import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer, RTCPeerConnection
from av import AudioFrame

__all__ = ["FRAME_SAMPLES", "SAMPLE_RATE", "ToneTrack", "peer_connection"]

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms


class ToneTrack(MediaStreamTrack):
    """Generated audio: a sequence of (frequency Hz, seconds) notes, looped; 0 Hz is silence."""

    kind = "audio"

    def __init__(self, notes: list[tuple[float, float]]) -> None:
        super().__init__()
        self._notes = notes or [(440.0, 1.0)]
        self._samples = 0
        self._started: float | None = None

    def _frequency(self, t: float) -> float:
        total = sum(d for _, d in self._notes)
        t %= total
        for freq, dur in self._notes:
            if t < dur:
                return freq
            t -= dur
        return 0.0

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
        due = self._started + self._samples / SAMPLE_RATE
        await asyncio.sleep(max(0.0, due - loop.time()))
        t = self._samples / SAMPLE_RATE
        freq = self._frequency(t)
        idx = np.arange(self._samples, self._samples + FRAME_SAMPLES)
        wave = (
            0.3 * np.sin(2 * math.pi * freq * idx / SAMPLE_RATE)
            if freq
            else np.zeros(FRAME_SAMPLES)
        )
        pcm = (wave * 32767).astype(np.int16).reshape(1, -1)
        frame = AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        self._samples += FRAME_SAMPLES
        return frame


def peer_connection(ice_servers: list[dict[str, Any]] | None = None) -> RTCPeerConnection:
    """An aiortc peer using the ICE servers voxgate handed out (none: aiortc's defaults)."""
    if not ice_servers:
        return RTCPeerConnection()
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers
    ]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))
