"""Calls that an AI assistant answers, from a session (``assistant:<id>``) or from a phone
(``sip:assistant-<id>@domain``): the assistant's media is aiortc's, on this node."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from voxgate.assistants import AssistantCall, bot_for
from voxgate.auth.turn import IceConfig
from voxgate.domain.ids import new_uuid
from voxgate.domain.records import Assistant, CallIds
from voxgate.gateway.links import LegKey, Link, PhoneLeg, phone_key
from voxgate.rtc.calls import Calls
from voxgate.rtc.outputs import AssistantMessage, RouteCall
from voxgate.store.base import Store
from voxgate.webhooks.calls import CallInfo

__all__ = ["assistant_message", "phone_to_assistant", "to_assistant"]

log = structlog.get_logger("voxgate.calls")
ASSISTANT_RING = 30.0
Tell = Callable[[str, dict[str, Any]], Awaitable[None]]


class Router(Protocol):
    links: dict[LegKey, Link]
    node_id: str
    store: Store
    ice: IceConfig
    conversations: dict[str, list[dict[str, Any]]]

    async def _tell(self, leg: LegKey, event: Callable[[Calls, str, float], list[Any]]) -> None: ...
    async def _report(self, link: Link, event_type: str, extra: dict[str, Any]) -> None: ...
    async def _hangup(self, link: Link, cause: str) -> None: ...
    async def _fail(self, link: Link, cause: str) -> None: ...
    def _unlink(self, link: Link, *keys: LegKey) -> None: ...


def _bot(router: Router, assistant: Assistant, conversation: list[dict[str, Any]]) -> AssistantCall:
    """The assistant's side of one call, with ICE servers of its own."""
    ice = router.ice.issue(f"assistant-{assistant.id}", time.time(), None)
    return AssistantCall(bot_for(assistant), conversation, list(ice.servers))


async def to_assistant(
    router: Router, out: RouteCall, link: Link, assistant: Assistant, conversation_id: str | None
) -> None:
    """A session calls an assistant: it answers with its own media (aiortc)."""
    conv_id = conversation_id or new_uuid()
    bot = _bot(router, assistant, router.conversations.setdefault(conv_id, []))
    link.assistant = bot
    link.call.to = f"assistant:{assistant.id}"
    router.links[link.caller] = link
    ring, ids = link.call.to, CallIds.for_leg(link.call.id, "outgoing")
    await router._tell(link.caller, lambda c, k, now: c.routed(k, ASSISTANT_RING, now, ring, ids))
    await router._report(link, "call.initiated", {"state": "ringing"})
    try:
        answer = await bot.answer(out.offer.sdp)
    except Exception as exc:
        log.warning("assistant could not answer", error=type(exc).__name__)
        router.links.pop(link.caller, None)
        await bot.close()
        return await router._fail(link, "NORMAL_TEMPORARY_FAILURE")
    if router.links.get(link.caller) is not link:
        await bot.close()  # the caller hung up while we were answering
        return
    link.answered = True
    params = {"sdp": answer, "conversation_id": conv_id}
    await router._tell(link.caller, lambda c, k, now: c.relayed(k, "answer", params))
    await router._report(link, "call.answered", {"state": "answered"})


async def phone_to_assistant(
    router: Router,
    assistant_id: str,
    caller: str,
    sdp: str,
    phone: PhoneLeg,
    connections: dict[str, str],
) -> Tell | None:
    """A phone calls an assistant (``sip:assistant-<id>@domain``): it answers at once
    with its own media (aiortc, behind rtpengine's WebRTC side); None if there is none."""
    assistant = await router.store.get_assistant(assistant_id)
    if assistant is None:
        return None
    bot = _bot(router, assistant, [])
    to = f"assistant:{assistant.id}"
    call = CallInfo(caller, to, connections, client_state=None, started=time.time())
    key = phone_key()
    link = Link(call, key, assistant=bot, phone=phone, caller_node=router.node_id)
    router.links[key] = link
    await router._report(link, "call.initiated", {"state": "ringing"})

    async def tell(kind: str, params: dict[str, Any]) -> None:
        """The phone hung up: the assistant's media ends with the call."""
        if kind != "bye" or router.links.get(key) is not link:
            return
        router._unlink(link, key)
        await bot.close()
        await router._hangup(link, str(params.get("cause") or "NORMAL_CLEARING"))

    try:
        answer = await bot.answer(sdp)
    except Exception as exc:
        log.warning("assistant could not answer", error=type(exc).__name__)
        await tell("bye", {"cause": "NORMAL_TEMPORARY_FAILURE"})
        await phone.hang_up("NORMAL_TEMPORARY_FAILURE")
        return None
    link.answered = True
    await phone.answer(answer)
    await router._report(link, "call.answered", {"state": "answered"})
    return tell


async def assistant_message(router: Router, sessid: str, out: AssistantMessage) -> None:
    """A message typed to the assistant in a call: its reply goes back to the caller."""
    link = router.links.get((sessid, out.call_id))
    if link is None or link.assistant is None:
        return
    reply = await link.assistant.message(out.text)
    if reply is not None:
        await router._tell(link.caller, lambda c, k, now: c.assistant_reply(k, reply))
