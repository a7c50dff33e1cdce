"""Assistant behaviours. A bot decides what the caller hears and how text messages are answered.

Plug your own: set an assistant's kind to ``custom`` and its ``hook`` setting to
``"package.module:factory"``; the factory gets the assistant record and returns a ``Bot``.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from aiortc import MediaStreamTrack
from aiortc.contrib.media import MediaRelay

from voxgate.audio import ToneTrack
from voxgate.domain.records import Assistant

__all__ = ["Bot", "EchoBot", "GreetingBot", "ToneBot", "bot_for"]


class Bot(Protocol):
    def outgoing(self, incoming: MediaStreamTrack) -> MediaStreamTrack:
        """The track the caller hears, given the caller's own audio."""
        ...

    async def reply(self, text: str, history: list[dict[str, Any]]) -> str | None:
        """Answer a text message (``ai_conversation``); ``history`` is the conversation so far."""
        ...


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
