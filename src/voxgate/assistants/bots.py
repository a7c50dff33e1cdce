"""Assistant behaviours. A bot decides what the caller hears and how text messages are answered.

Plug your own: set an assistant's kind to ``custom`` and its ``hook`` setting to
``"package.module:factory"``; the factory gets the assistant record and returns a ``Bot``.
"""

from __future__ import annotations

import asyncio
import fractions
import importlib
import math
from typing import Any, Protocol

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay
from av import AudioFrame

from voxgate.domain.records import Assistant

__all__ = ["Bot", "EchoBot", "GreetingBot", "ToneBot", "ToneTrack", "bot_for"]

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms


class Bot(Protocol):
    def outgoing(self, incoming: MediaStreamTrack) -> MediaStreamTrack:
        """The track the caller hears, given the caller's own audio."""
        ...

    async def reply(self, text: str, history: list[dict[str, Any]]) -> str | None:
        """Answer a text message (``ai_conversation``); ``history`` is the conversation so far."""
        ...


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


class EchoBot:
    """Sends the caller's audio straight back; answers text with the same text."""

    def __init__(self) -> None:
        self._relay = MediaRelay()

    def outgoing(self, incoming: MediaStreamTrack) -> MediaStreamTrack:
        return self._relay.subscribe(incoming)

    async def reply(self, text: str, history: list[dict[str, Any]]) -> str | None:
        return text


class ToneBot:
    def outgoing(self, incoming: MediaStreamTrack) -> MediaStreamTrack:
        return ToneTrack([(440.0, 1.0)])

    async def reply(self, text: str, history: list[dict[str, Any]]) -> str | None:
        return f"beep ({len(history)} messages so far)"


class GreetingBot:
    """A short rising chime, then a pause, looped: an audible "hello" without speech models."""

    def outgoing(self, incoming: MediaStreamTrack) -> MediaStreamTrack:
        return ToneTrack([(523.25, 0.25), (659.25, 0.25), (783.99, 0.5), (0.0, 1.0)])

    async def reply(self, text: str, history: list[dict[str, Any]]) -> str | None:
        return "Hello! This is a voxgate greeting assistant."


def bot_for(assistant: Assistant) -> Bot:
    if assistant.kind == "custom":
        hook = assistant.settings.get("hook")
        if not isinstance(hook, str) or ":" not in hook:
            raise ValueError(
                "custom assistants need a 'hook' setting like 'package.module:factory'"
            )
        module, _, attr = hook.partition(":")
        factory = getattr(importlib.import_module(module), attr)
        bot: Bot = factory(assistant)
        return bot
    if assistant.kind == "tone":
        return ToneBot()
    if assistant.kind == "greeting":
        return GreetingBot()
    return EchoBot()
