"""The call legs of one session, and everything said about them by its client or the adapter.

The session consults its own table first (may this session call, be called?) and hands the
rest here. Pure like the session: outputs in, outputs out, time as an argument.
"""

from __future__ import annotations

from typing import Any

from voxgate.domain import ids
from voxgate.domain.errors import InvalidParams
from voxgate.domain.records import CallIds, Grant
from voxgate.rtc.frames import Request
from voxgate.rtc.legs import CallState, InvalidTransition, Leg, cause_code
from voxgate.rtc.outputs import (
    AssistantMessage,
    Offer,
    Output,
    Relay,
    RouteCall,
    Send,
    refuse,
    reply,
)
from voxgate.rtc.renegotiation import ANSWER_TO, Renegotiation
from voxgate.rtc.speaker import Speaker
from voxgate.rtc.trickle import TRICKLE_WAIT, Gathering, wants_candidates

__all__ = ["CALL_METHODS", "Calls"]

CALL_METHODS = frozenset(
    {
        "telnyx_rtc.answer",
        "telnyx_rtc.bye",
        "telnyx_rtc.modify",
        "telnyx_rtc.info",
        "telnyx_rtc.candidate",
        "telnyx_rtc.endOfCandidates",
        "ai_conversation",
    }
)
ENDED_KEPT = 32  # call ids a session remembers after their end (call reports name them)
_CANDIDATE_KEYS = ("candidate", "sdpMid", "sdpMLineIndex", "endOfCandidates")
_TO_CLIENT = {
    "media": "telnyx_rtc.media",  # early media: a provisional answer with SDP
    "info": "telnyx_rtc.info",
    "candidate": "telnyx_rtc.candidate",
}


class Calls:
    __slots__ = ("ended", "gathering", "legs", "media", "say")  # one per session, idle or not

    def __init__(self, say: Speaker) -> None:
        self.say = say
        self.media = Renegotiation(say)
        self.legs: dict[str, Leg] = {}
        self.gathering: dict[str, Gathering] = {}  # trickled offers waiting for candidates
        # the last ENDED_KEPT call ids, for call reports; a list (56 bytes empty), not a
        # deque(maxlen) (~600 bytes in every idle session)
        self.ended: list[str] = []

    @property
    def live(self) -> bool:
        return any(leg.live for leg in self.legs.values())

    def next_deadline(self) -> float | None:
        times = [leg.ring_deadline for leg in self.legs.values()]
        times += [waiting.until for waiting in self.gathering.values()]
        times += [leg.restart[1] for leg in self.legs.values() if leg.restart is not None]
        return min((t for t in times if t is not None), default=None)

    # -- what the client asks --------------------------------------------------------------
    def invite(self, req: Request, grant: Grant, now: float, *, refused: bool) -> list[Output]:
        dialog = _dialog(req)
        call_id, sdp = dialog.get("callID"), req.params.get("sdp")
        if not _is_call_id(call_id) or not isinstance(sdp, str):
            return refuse(req, InvalidParams("invite needs dialogParams.callID and sdp"))
        assert isinstance(call_id, str)
        if call_id in self.legs:
            return refuse(req, InvalidParams("callID already in use"))
        destination = _text(dialog.get("destination_number"))
        self.legs[call_id] = Leg(call_id, "outbound", peer=destination)
        outs = self._result(req, {"message": "CALL CREATED", "callID": call_id})
        if refused:
            return outs + self.failed(call_id, "CALL_REJECTED")
        if grant.anonymous:  # anonymous sessions reach their own assistant, nobody else
            target = grant.assistant_id or ""
            if destination not in ("", target, f"assistant:{target}"):
                return outs + self.failed(call_id, "CALL_REJECTED")
            destination = f"assistant:{target}"[:128]
        state, headers = dialog.get("clientState"), dialog.get("custom_headers")
        offer = Offer(
            sdp,
            _text(dialog.get("caller_id_name")) or grant.sip_username,
            _text(dialog.get("caller_id_number")) or grant.sip_username,
            state if isinstance(state, str) else None,
            headers if isinstance(headers, list) else [],
        )
        route = RouteCall(call_id, destination, offer)
        if wants_candidates(sdp):  # a trickled offer: ring once its candidates are in
            self.gathering[call_id] = Gathering(route, now + TRICKLE_WAIT)
            return outs
        return [*outs, route]

    def request(self, req: Request, now: float) -> list[Output]:
        """answer, bye, modify, info, candidate, ai_conversation (see ``CALL_METHODS``)."""
        if req.method == "telnyx_rtc.modify":
            return self._modify(req, now)
        handler = {
            "telnyx_rtc.answer": self._answer,
            "telnyx_rtc.bye": self._bye,
            "telnyx_rtc.info": self._info,
            "ai_conversation": self._ai_conversation,
        }.get(req.method or "", self._candidate)
        return handler(req)

    def _answer(self, req: Request) -> list[Output]:
        call_id, leg = self._leg(req)
        sdp = req.params.get("sdp")
        if leg is None or leg.direction != "inbound" or not isinstance(sdp, str):
            return refuse(req, InvalidParams("no ringing inbound call with that callID, or no sdp"))
        try:
            leg.apply("answered")
        except InvalidTransition as exc:
            return refuse(req, exc)
        leg.ring_deadline = None
        return [
            *self._result(req, {"message": "CALL ANSWERED", "callID": call_id}),
            Relay(call_id, "answer", {"sdp": sdp}),
        ]

    def _bye(self, req: Request) -> list[Output]:
        call_id, leg = self._leg(req)
        cause = _text(req.params.get("cause")) or "NORMAL_CLEARING"
        code = req.params.get("causeCode")
        code = code if isinstance(code, int) and not isinstance(code, bool) else cause_code(cause)
        outs = self._result(req, {"message": "CALL ENDED", "callID": call_id})
        if leg is None:
            return outs
        return outs + self._drop(leg, relay=(cause, code))

    def _modify(self, req: Request, now: float) -> list[Output]:
        _call_id, leg = self._leg(req)
        if leg is None:
            return refuse(req, InvalidParams("no call with that callID"))
        return self.media.modify(req, leg, now)

    def _info(self, req: Request) -> list[Output]:
        _call_id, leg = self._leg(req)
        outs = self._result(req, {"message": "SENT"})
        dtmf, msg = req.params.get("dtmf"), req.params.get("msg")
        if leg is None:
            return outs
        if isinstance(dtmf, str) and 0 < len(dtmf) <= 32:
            outs.append(Relay(leg.call_id, "info", {"dtmf": dtmf}))
        elif isinstance(msg, dict) and msg.get("to") == ANSWER_TO:
            outs += self.media.answered_by_client(leg, msg)
        elif isinstance(msg, dict):
            outs.append(Relay(leg.call_id, "info", {"msg": msg}))
        return outs

    def _candidate(self, req: Request) -> list[Output]:
        _call_id, leg = self._leg(req)
        outs = self._result(req, {})
        if leg is None:
            return outs
        waiting = self.gathering.get(leg.call_id)
        if waiting is not None:
            waiting.add(req.params)
            ended = req.method == "telnyx_rtc.endOfCandidates" or req.params.get("endOfCandidates")
            if ended:
                return [*outs, self.gathering.pop(leg.call_id).release()]
            return outs
        body = {k: req.params[k] for k in _CANDIDATE_KEYS if k in req.params}
        return [*outs, Relay(leg.call_id, "candidate", body)]

    def _ai_conversation(self, req: Request) -> list[Output]:
        outs = self._result(req, {})
        legs = [leg for leg in self.legs.values() if leg.live and leg.peer.startswith("assistant:")]
        text = _user_text(req.params)
        if not legs or not text:
            return outs
        return [*outs, AssistantMessage(legs[0].call_id, text)]

    # -- what the adapter tells us ---------------------------------------------------------
    def routed(
        self,
        call_id: str,
        ring_timeout: float,
        now: float,
        peer: str = "",
        ids: CallIds | None = None,
    ) -> list[Output]:
        leg = self.legs.get(call_id)
        if leg is None or leg.state is not CallState.NEW:
            return []
        leg.apply("routed")
        leg.ring_deadline = now + ring_timeout
        leg.peer = peer or leg.peer
        leg.ids = ids
        return [self._to_client("telnyx_rtc.ringing", _with_ids({"callID": call_id}, leg))]

    def failed(self, call_id: str, cause: str) -> list[Output]:
        leg = self.legs.get(call_id)
        if leg is None:
            return []
        return self._drop(leg, bye=(cause, cause_code(cause, 41)))

    def offered(
        self, offer: Offer, grant: Grant, call_id: str | None, leg_ids: CallIds | None
    ) -> tuple[str | None, list[Output]]:
        """Ring our client. One call at a time: ``None`` means busy."""
        if self.live or (call_id is not None and call_id in self.legs):
            return None, []
        call_id = call_id or ids.new_uuid()
        leg = Leg(call_id, "inbound", peer=offer.caller_number, ids=leg_ids)
        leg.apply("offered")
        self.legs[call_id] = leg
        invite: dict[str, Any] = {
            "callID": call_id,
            "sdp": offer.sdp,
            "caller_id_name": offer.caller_name,
            "caller_id_number": offer.caller_number,
            "callee_id_name": grant.sip_username,
            "callee_id_number": grant.sip_username,
        }
        if offer.client_state:
            invite["client_state"] = offer.client_state
        if offer.custom_headers:
            invite["dialogParams"] = {"custom_headers": offer.custom_headers}
        leg.invite = _with_ids(invite, leg)
        return call_id, [self._to_client("telnyx_rtc.invite", leg.invite)]

    def ringing_again(self) -> list[Output]:
        """The invites of the calls still ringing here, for a client that does not hold them
        (a tab that took the session over)."""
        return [
            self._to_client("telnyx_rtc.invite", leg.invite)
            for leg in self.legs.values()
            if leg.invite is not None and leg.state is CallState.RINGING
        ]

    def relayed(self, call_id: str, kind: str, params: dict[str, Any]) -> list[Output]:
        """The other leg said something; tell our client."""
        leg = self.legs.get(call_id)
        if leg is None:
            return []
        if kind == "answer":
            try:
                leg.apply("answered")
            except InvalidTransition:
                return []
            leg.ring_deadline = None
            body = _with_ids({"callID": call_id, **params}, leg)
            return [self._to_client("telnyx_rtc.answer", body)]
        if kind == "bye":
            cause = _text(params.get("cause")) or "NORMAL_CLEARING"
            code = params.get("causeCode")
            return self._drop(
                leg, bye=(cause, code if isinstance(code, int) else cause_code(cause))
            )
        if kind in ("hold", "update_media", "update_media_answer", "update_media_failed"):
            return self.media.relayed(leg, kind, params)
        method = _TO_CLIENT.get(kind)
        if method is None:
            return []
        return [self._to_client(method, {"callID": call_id, **params})]

    def assistant_reply(self, call_id: str, text: str) -> list[Output]:
        leg = self.legs.get(call_id)
        if leg is None or not leg.live:
            return []
        item = {
            "role": "assistant",
            "type": "message",
            "content": [{"type": "text", "text": text}],
        }
        body = {"callID": call_id, "type": "conversation.item.created", "item": item}
        return [self._to_client("ai_conversation", body)]

    def timeouts(self, now: float) -> list[Output]:
        """Rings nobody answered, restarts nobody renegotiated."""
        outs: list[Output] = [
            self.gathering.pop(call_id).release()
            for call_id, waiting in list(self.gathering.items())
            if now >= waiting.until
        ]
        for leg in list(self.legs.values()):
            outs += self.media.timeouts(leg, now)
            deadline = leg.ring_deadline
            if deadline is not None and now >= deadline and leg.state is CallState.RINGING:
                cause = ("NO_ANSWER", cause_code("NO_ANSWER"))
                outs += self._drop(leg, relay=cause, bye=cause)
        return outs

    @property
    def live_ids(self) -> list[str]:
        return [leg.call_id for leg in self.legs.values() if leg.live]

    def hangup_all(self, cause: str, *, tell_client: bool) -> list[Output]:
        """Every leg ends and the other side of each gets a bye: revocation, expiry, socket gone."""
        outs: list[Output] = []
        code = cause_code(cause)
        for leg in list(self.legs.values()):
            outs += self._drop(leg, relay=(cause, code), bye=(cause, code) if tell_client else None)
        return outs

    # -- helpers ---------------------------------------------------------------------------
    def _drop(
        self,
        leg: Leg,
        *,
        relay: tuple[str, int] | None = None,
        bye: tuple[str, int] | None = None,
    ) -> list[Output]:
        """End ``leg``: a bye to our client (``bye``) and/or to the other leg (``relay``)."""
        leg.apply("hangup")
        self.gathering.pop(leg.call_id, None)
        self.legs.pop(leg.call_id, None)
        self.ended.append(leg.call_id)
        del self.ended[:-ENDED_KEPT]
        outs: list[Output] = []
        if bye is not None:
            params = {"callID": leg.call_id, "cause": bye[0], "causeCode": bye[1]}
            outs.append(self._to_client("telnyx_rtc.bye", params))
        if relay is not None:
            outs.append(Relay(leg.call_id, "bye", {"cause": relay[0], "causeCode": relay[1]}))
        return outs

    def _leg(self, req: Request) -> tuple[str, Leg | None]:
        call_id = _dialog(req).get("callID")
        if not isinstance(call_id, str):
            call_id = req.params.get("callID")
        if not isinstance(call_id, str):
            return "", None
        return call_id, self.legs.get(call_id)

    def _to_client(self, method: str, params: dict[str, Any]) -> Send:
        return Send(self.say.request(method, params))

    def _result(self, req: Request, result: dict[str, Any]) -> list[Output]:
        return reply(req, {**result, "sessid": self.say.sessid})


def _with_ids(params: dict[str, Any], leg: Leg) -> dict[str, Any]:
    return {**params, **leg.ids.frame_params()} if leg.ids is not None else params


def _dialog(req: Request) -> dict[str, Any]:
    dialog = req.params.get("dialogParams")
    return dialog if isinstance(dialog, dict) else {}


def _is_call_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 128


def _text(value: object) -> str:
    return value[:128] if isinstance(value, str) else ""


def _user_text(params: dict[str, Any]) -> str:
    """The text of an ``ai_conversation`` ``conversation.item.create`` message."""
    item = params.get("item")
    parts = item.get("content") if isinstance(item, dict) else None
    if not isinstance(parts, list):
        return ""
    texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return " ".join(texts)[:4000]
