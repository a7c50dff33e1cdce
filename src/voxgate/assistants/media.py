"""One assistant call leg: an aiortc peer that answers the caller's SDP offer."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiortc import MediaStreamTrack, RTCSessionDescription
from av.frame import Frame
from av.packet import Packet

from voxgate.assistants.bots import Bot
from voxgate.audio import peer_connection

__all__ = ["AssistantCall", "HoldGate"]


class AssistantCall:
    def __init__(
        self,
        bot: Bot,
        conversation: list[dict[str, Any]],
        ice_servers: list[dict[str, Any]] | None = None,
    ) -> None:
        self.bot = bot
        self.conversation = conversation
        self.pc = peer_connection(ice_servers)  # the server's own TURN, when configured
        self.gate: HoldGate | None = None
        self._incoming: asyncio.Future[MediaStreamTrack] = (
            asyncio.get_running_loop().create_future()
        )

        @self.pc.on("track")
        def _on_track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and not self._incoming.done():
                self._incoming.set_result(track)

    async def answer(self, offer_sdp: str) -> str:
        """Returns the answer SDP (candidates included: no trickle needed)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        incoming = self._incoming.result() if self._incoming.done() else None
        if incoming is None:
            raise ValueError("the offer carries no audio track")
        outgoing = self.gate = HoldGate(self.bot.outgoing(incoming))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.sender.replaceTrack(outgoing)
                transceiver.direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def hold(self, held: bool) -> None:
        """The caller put the call on hold (or took it off): stop (or resume) sending."""
        if self.gate is not None:
            self.gate.held = held

    async def message(self, text: str) -> str | None:
        self.conversation.append({"role": "user", "text": text})
        reply = await self.bot.reply(text, list(self.conversation))
        if reply is not None:
            self.conversation.append({"role": "assistant", "text": reply})
        return reply

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.pc.close()


class HoldGate(MediaStreamTrack):
    """Passes ``source`` through, except while held: then it keeps reading the source (so
    nothing piles up) and hands the sender nothing, so no packet goes out."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.source = source
        self.held = False

    async def recv(self) -> Frame | Packet[Any]:
        while True:
            frame = await self.source.recv()
            if not self.held:
                return frame
