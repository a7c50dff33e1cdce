"""Targets for ``anonymous_login`` and ``assistant:<id>`` calls, with real media (aiortc)."""

from voxgate.assistants.bots import Bot, EchoBot, GreetingBot, ToneBot, bot_for
from voxgate.assistants.media import AssistantCall

__all__ = ["AssistantCall", "Bot", "EchoBot", "GreetingBot", "ToneBot", "bot_for"]
