"""The two legs of one call, as the router joins them: which leg talks to which, on which node.

Both nodes of a cross-node call hold a copy, each indexed by its local leg; a copy travels on
the bus when a session moves to another node (``to_dict``/``from_dict``).

A call to a ring_all identity forks: the caller's copy lists every ringing leg in ``forks``
until one answers and becomes ``callee``; each ringing leg has its own copy (``fork``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from voxgate.assistants import AssistantCall
from voxgate.domain.ids import new_uuid
from voxgate.rtc.legs import cause_code
from voxgate.webhooks.calls import CallInfo

__all__ = ["LegKey", "Link", "PhoneLeg", "bye", "is_phone", "leg_key", "phone_key"]

LegKey = tuple[str, str]  # (sessid, callID)
PHONE = "phone"  # a phone leg's second key part (a session's is its callID)


class PhoneLeg(Protocol):
    """The SIP side of a call to a phone (``sip/phones.py``), as the router drives it."""

    trunk: str  # a carrier's call to one of our numbers: the trunk it came in on ("": none)
    dialled: str  # ... and that number

    async def answer(self, sdp: str) -> None: ...
    async def hang_up(self, cause: str = "NORMAL_CLEARING") -> None: ...
    async def dtmf(self, digit: str, duration: int = 250) -> None: ...
    async def hold(self, held: bool) -> None: ...


@dataclass(slots=True)
class Link:
    """The two legs of one call; each node indexes it by its local leg."""

    call: CallInfo
    caller: LegKey
    callee: LegKey | None = None
    assistant: AssistantCall | None = None
    phone: PhoneLeg | None = None  # the callee is a SIP phone, through voxgate's SIP leg
    answered: bool = False
    caller_node: str = ""
    callee_node: str = ""
    forks: dict[LegKey, str] = field(default_factory=dict)  # ringing legs -> their nodes
    fork: bool = False  # the copy of one ringing leg of a forked call
    ended: str = "NORMAL_CLEARING"  # a bye that came while its phone was being dialled
    media: str = ""  # an anchored call's id at rtpengine (the caller's node: --anchor-media)
    relay: dict[str, int] | None = None  # its packet counters, as last read
    slots: list[str] = field(default_factory=list)  # the bus's limits a trunk call holds

    def other(self, key: LegKey) -> tuple[str, LegKey | None]:
        if key == self.caller:
            return self.callee_node, self.callee
        return self.caller_node, self.caller

    def ring(self, legs: list[tuple[LegKey, str]]) -> bool:
        """The legs (key, node) the call rings: the callee if one, else forks. Returns
        whether it forks."""
        if len(legs) > 1:
            self.forks = dict(legs)
            return True
        self.callee, self.callee_node = legs[0]
        return False

    def others(self, key: LegKey) -> list[tuple[str, LegKey]]:
        """Whom a leg's message goes to: the caller's reaches every ringing fork."""
        if key == self.caller and self.forks:
            return [(node, leg) for leg, node in self.forks.items()]
        node, other = self.other(key)
        return [] if other is None else [(node, other)]

    def chose(self, key: LegKey) -> list[tuple[str, LegKey]]:
        """The fork ``key`` answered: it is the callee now; returns the ones that lost."""
        self.callee, self.callee_node = key, self.forks.pop(key)
        losers = [(node, leg) for leg, node in self.forks.items()]
        self.forks = {}
        return losers

    def moved(self, key: LegKey, node: str) -> None:
        """The leg ``key`` now lives on ``node`` (its client reattached there)."""
        if key == self.caller:
            self.caller_node = node
        else:
            self.callee_node = node

    def summary(self) -> dict[str, Any]:
        """The call as the operator console lists it."""
        return {
            "call_session_id": self.call.id,
            "from": self.call.from_,
            "to": self.call.to,
            "state": "active" if self.answered else "ringing",
            "started": self.call.started,
            "caller_node": self.caller_node,
            "callee_node": self.callee_node or ",".join(sorted(set(self.forks.values()))),
            **({"relay": self.relay} if self.relay is not None else {}),
            **({"sip_trunk_id": self.call.trunk} if self.call.trunk else {}),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "call": self.call.to_dict(),
            "caller": list(self.caller),
            "callee": list(self.callee) if self.callee else None,
            "answered": self.answered,
            "caller_node": self.caller_node,
            "callee_node": self.callee_node,
            "forks": [[*leg, node] for leg, node in self.forks.items()],
            "fork": self.fork,
            **({"slots": self.slots} if self.slots else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], now: float) -> Link:
        callee = data.get("callee")
        return cls(
            CallInfo.from_dict(dict(data.get("call") or {}), now),
            leg_key(data["caller"]),
            leg_key(callee) if callee else None,
            answered=bool(data.get("answered")),
            caller_node=str(data.get("caller_node", "")),
            callee_node=str(data.get("callee_node", "")),
            forks={leg_key(f): str(f[2]) for f in data.get("forks") or ()},
            fork=bool(data.get("fork")),
            slots=[str(slot) for slot in data.get("slots") or ()],
        )


def is_phone(key: LegKey) -> bool:
    return key[1] == PHONE and key[0].startswith("sip:")


def phone_key() -> LegKey:
    return (f"sip:{new_uuid()}", PHONE)


def leg_key(value: Any) -> LegKey:
    return (str(value[0]), str(value[1]))


def bye(cause: str) -> dict[str, Any]:
    """A hang-up as one leg tells the other: the cause's name and its Q.850 code."""
    return {"cause": cause, "causeCode": cause_code(cause)}
