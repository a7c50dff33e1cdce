"""Media changes mid-call: hold that holds, and ICE restart passed to the other party.

The SDK's ``call.hold()`` only flips its own state when the reply says so, and its ICE
restart (``modify`` ``updateMedia`` with a fresh offer) needs an answer SDP within 10 s. The
gateway has no media of its own, so it asks the other party: both are told of a hold
(``voxgate.hold``) and the other one is handed the restart offer (``voxgate.update_media``);
the browser helper acts on both and answers the offer through ``telnyx_rtc.info``
(``msg.to == "voxgate"``). Without the helper nobody answers, and the restart is refused in
time: the SDK then reconnects once, reattaches, and keeps the call.
"""

from __future__ import annotations

import json
from typing import Any

from voxgate.domain.errors import InvalidParams, ServiceUnavailable
from voxgate.rtc.frames import Request
from voxgate.rtc.legs import CallState, InvalidTransition, Leg
from voxgate.rtc.outputs import Output, Relay, Send, refuse, reply
from voxgate.rtc.speaker import Speaker

__all__ = ["ANSWER_TO", "UPDATE_TIMEOUT", "Renegotiation"]

UPDATE_TIMEOUT = 8.0  # the SDK gives up on a modify after 10 s; we answer before that
ANSWER_TO = "voxgate"  # an info ``msg`` for the gateway itself, not for the other party


class Renegotiation:
    """Hold and ICE restart for one session's legs."""

    __slots__ = ("say",)

    def __init__(self, say: Speaker) -> None:
        self.say = say

    def modify(self, req: Request, leg: Leg, now: float) -> list[Output]:
        action = req.params.get("action")
        if action == "updateMedia":
            return self._restart(req, leg, now)
        if action == "toggleHold":
            action = "unhold" if leg.state is CallState.HELD else "hold"
        if action not in ("hold", "unhold"):
            return refuse(req, InvalidParams("action must be hold, unhold or toggleHold"))
        was = leg.state
        try:
            leg.apply(action)
        except InvalidTransition as exc:
            return refuse(req, exc)
        held = leg.state is CallState.HELD
        hold = "held" if held else "active"
        body = {"callID": leg.call_id, "action": action, "holdState": hold}
        outs = reply(req, {**body, "sessid": self.say.sessid})
        if leg.state is not was:  # the other side hears of it too: both stop (or resume) sending
            outs += [
                self.hold_notice(leg, held, "local"),
                Relay(leg.call_id, "hold", {"held": held}),
            ]
        return outs

    def _restart(self, req: Request, leg: Leg, now: float) -> list[Output]:
        sdp = req.params.get("sdp")
        if req.id is None or not isinstance(sdp, str):
            return refuse(req, InvalidParams("updateMedia needs an sdp offer"))
        if leg.state not in (CallState.ACTIVE, CallState.HELD):
            return refuse(req, InvalidParams("no answered call with that callID"))
        if leg.restart is not None:
            return refuse(req, InvalidParams("an ICE restart is already in progress"))
        leg.restart = (req.id, now + UPDATE_TIMEOUT)
        return [Relay(leg.call_id, "update_media", {"sdp": sdp})]

    def answered_by_client(self, leg: Leg, msg: dict[str, Any]) -> list[Output]:
        """The helper's answer to a restart offer it was handed (``info`` to ``voxgate``)."""
        try:
            body = json.loads(msg.get("body") or "")
        except (TypeError, ValueError, RecursionError):
            return []
        sdp = body.get("sdp") if isinstance(body, dict) else None
        if not isinstance(sdp, str) or body.get("type") != "update_media_answer":
            return []
        return [Relay(leg.call_id, "update_media_answer", {"sdp": sdp})]

    def relayed(self, leg: Leg, kind: str, params: dict[str, Any]) -> list[Output]:
        """What the other party said about media: hold, a restart offer, its answer."""
        if kind == "hold":
            return [self.hold_notice(leg, params.get("held") is True, "remote")]
        if kind == "update_media":
            body = {"callID": leg.call_id, "sdp": params.get("sdp")}
            return [Send(self.say.notice("voxgate.update_media", body))]
        if leg.restart is None:
            return []
        request_id, _ = leg.restart
        leg.restart = None
        if kind == "update_media_answer" and isinstance(params.get("sdp"), str):
            result = {"callID": leg.call_id, "action": "updateMedia", "sdp": params["sdp"]}
            return reply(_request(request_id), {**result, "sessid": self.say.sessid})
        return self._give_up(request_id)

    def timeouts(self, leg: Leg, now: float) -> list[Output]:
        if leg.restart is None or now < leg.restart[1]:
            return []
        request_id, _ = leg.restart
        leg.restart = None
        return self._give_up(request_id)

    @staticmethod
    def _give_up(request_id: Any) -> list[Output]:
        error = ServiceUnavailable("the other party could not renegotiate media")
        return refuse(_request(request_id), error)

    def hold_notice(self, leg: Leg, held: bool, by: str) -> Send:
        return Send(
            self.say.notice("voxgate.hold", {"callID": leg.call_id, "held": held, "by": by})
        )


def _request(request_id: Any) -> Request:
    return Request(request_id, "telnyx_rtc.modify", {})
