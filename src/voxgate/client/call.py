"""A call as the Python client sees it: dial, get rung, answer, hold, DTMF, hang up.

Media is optional. Pass ``sdp`` yourself, or leave it out and (with aiortc installed) the call
creates a real ``RTCPeerConnection`` that sends ``audio_track`` (a tone by default) and collects
whatever the other side sends into ``received_frames``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol

__all__ = ["Call", "Signaling"]


class Signaling(Protocol):
    """What a call needs from its client: the session id and a way to send requests."""

    sessid: str | None
    ice_servers: list[dict[str, Any]]  # from the gateway's voxgate.ice_servers notice

    async def request(self, method: str, params: dict[str, Any], timeout: float = 10.0) -> Any: ...


class Call:
    def __init__(
        self,
        client: Signaling,
        call_id: str,
        direction: str,
        *,
        remote_sdp: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.id = call_id
        self.direction = direction
        self.state = "new"
        self.remote_sdp = remote_sdp
        self.params = params or {}
        self.cause: str | None = None
        self.cause_code: int | None = None
        self.received_dtmf: list[str] = []
        self.received_frames = 0
        self.telnyx_ids: dict[str, str] = {}  # call_control_id, call_session_id, call_leg_id
        self.pc: Any = None
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- actions ---------------------------------------------------------------------------
    async def answer(self, sdp: str | None = None) -> None:
        if sdp is None:
            sdp = await self._media_answer()
        await self.client.request("telnyx_rtc.answer", self._params(sdp=sdp))
        self.set_state("active")

    async def hangup(self, cause: str = "NORMAL_CLEARING", cause_code: int = 16) -> None:
        if self.state == "hangup":
            return
        await self.client.request("telnyx_rtc.bye", self._params(cause=cause, causeCode=cause_code))
        self.cause, self.cause_code = cause, cause_code
        await self.ended()

    async def hold(self) -> str:
        return await self._modify("hold")

    async def unhold(self) -> str:
        return await self._modify("unhold")

    async def dtmf(self, digits: str) -> None:
        await self.client.request("telnyx_rtc.info", self._params(dtmf=digits))

    async def send_message(self, text: str) -> None:
        """An ``ai_conversation`` user message (assistant calls)."""
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        await self.client.request(
            "ai_conversation", {"type": "conversation.item.create", "item": item, **self._params()}
        )

    async def wait_state(self, state: str, timeout: float = 10.0) -> None:
        async def until() -> None:
            while self.state != state:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    # -- what the gateway says about this call (the client passes it on) -----------------
    def set_state(self, state: str) -> None:
        self.state = state
        self._changed.set()

    async def on_signal(self, method: str, params: dict[str, Any]) -> None:
        """``telnyx_rtc.ringing`` / ``media`` / ``answer`` / ``bye`` / ``info`` for this call."""
        self.learn_ids(params)
        if method == "telnyx_rtc.ringing":
            self.set_state("ringing")
        elif method == "telnyx_rtc.media":  # early media: the far end plays before it answers
            self.remote_sdp = params.get("sdp") or self.remote_sdp
            self.set_state("early")
        elif method == "telnyx_rtc.answer":
            await self._remote_answer(params.get("sdp"))
        elif method == "telnyx_rtc.bye":
            self.cause, self.cause_code = params.get("cause"), params.get("causeCode")
            await self.ended()
        elif method == "telnyx_rtc.info" and isinstance(params.get("dtmf"), str):
            self.received_dtmf.append(params["dtmf"])

    def learn_ids(self, params: dict[str, Any]) -> None:
        """Telnyx's ids for this leg, as invite, ringing and answer frames carry them."""
        for key, name in _IDS.items():
            if isinstance(params.get(key), str):
                self.telnyx_ids[name] = params[key]

    async def ended(self) -> None:
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        for task in self._tasks:
            task.cancel()
        self.set_state("hangup")

    async def _remote_answer(self, sdp: object) -> None:
        self.remote_sdp = sdp if isinstance(sdp, str) else None
        if self.pc is not None and self.remote_sdp:
            from aiortc import RTCSessionDescription

            await self.pc.setRemoteDescription(RTCSessionDescription(self.remote_sdp, "answer"))
        self.set_state("active")

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {
            "sessid": self.client.sessid,
            "dialogParams": {"callID": self.id, **self.params},
            **extra,
        }

    async def _modify(self, action: str) -> str:
        result = await self.client.request("telnyx_rtc.modify", self._params(action=action))
        hold = str(result.get("holdState", "")) if isinstance(result, dict) else ""
        self.set_state("held" if hold == "held" else "active")
        return hold

    # -- optional media --------------------------------------------------------------------
    async def media_offer(self, track: Any = None) -> str:
        """An SDP offer from a real aiortc peer sending ``track`` (a tone by default)."""
        from voxgate.audio import peer_connection

        self.pc = peer_connection(self.client.ice_servers)
        self._collect()
        self.pc.addTrack(track or _tone())
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def _media_answer(self) -> str:
        from aiortc import RTCSessionDescription

        from voxgate.audio import peer_connection

        self.pc = peer_connection(self.client.ice_servers)
        self._collect()
        await self.pc.setRemoteDescription(RTCSessionDescription(self.remote_sdp or "", "offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.sender.replaceTrack(_tone())
                transceiver.direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    def _collect(self) -> None:
        def _on_track(track: Any) -> None:
            async def drain() -> None:
                with contextlib.suppress(Exception):
                    while True:
                        await track.recv()
                        self.received_frames += 1

            task = asyncio.get_running_loop().create_task(drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self.pc.add_listener("track", _on_track)


_IDS = {
    "telnyx_call_control_id": "call_control_id",
    "telnyx_session_id": "call_session_id",
    "telnyx_leg_id": "call_leg_id",
}


def _tone() -> Any:
    from voxgate.audio import ToneTrack

    return ToneTrack([(440.0, 1.0)])
