"""A call leg as a state machine: its states, its one transition table, and hang-up causes.

A call joins two legs: the caller's (outbound, keyed by the client's ``callID``) and the
callee's (inbound, keyed by a ``callID`` the caller's node chooses). Each session keeps only
its own legs (``rtc/calls.py``); the adapter relays between them.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from voxgate.domain.causes import CAUSES, cause_code
from voxgate.domain.errors import InvalidParams
from voxgate.domain.records import CallIds

__all__ = ["CAUSES", "CallState", "InvalidTransition", "Leg", "cause_code", "transition"]


class CallState(enum.Enum):
    NEW = "new"
    RINGING = "ringing"
    ACTIVE = "active"
    HELD = "held"
    HANGUP = "hangup"


class InvalidTransition(InvalidParams):
    """A client asked for something its call's state does not allow (answer twice, ...)."""


# (state, event) -> next state. Anything absent is refused.
_TABLE: dict[tuple[CallState, str], CallState] = {
    (CallState.NEW, "routed"): CallState.RINGING,
    (CallState.NEW, "offered"): CallState.RINGING,
    (CallState.RINGING, "answered"): CallState.ACTIVE,
    (CallState.ACTIVE, "hold"): CallState.HELD,
    (CallState.HELD, "unhold"): CallState.ACTIVE,
    (CallState.HELD, "hold"): CallState.HELD,
    (CallState.ACTIVE, "unhold"): CallState.ACTIVE,
    **{(s, "hangup"): CallState.HANGUP for s in CallState if s is not CallState.HANGUP},
}


def transition(state: CallState, event: str) -> CallState:
    try:
        return _TABLE[(state, event)]
    except KeyError:
        raise InvalidTransition(f"{event} is not allowed in state {state.value}") from None


@dataclass(slots=True)
class Leg:
    call_id: str
    direction: str  # "outbound" (this client dialed) | "inbound" (this client is rung)
    state: CallState = CallState.NEW
    ring_deadline: float | None = None
    peer: str = ""  # who is on the other side, for notices and logs
    ids: CallIds | None = None  # Telnyx's ids for this leg, once the call is routed
    restart: tuple[str | int, float] | None = None  # an ICE restart waiting: (modify id, until)
    invite: dict[str, Any] | None = None  # an inbound leg's invite, to ring a new tab again

    def apply(self, event: str) -> None:
        self.state = transition(self.state, event)

    @property
    def live(self) -> bool:
        return self.state is not CallState.HANGUP

    def to_dict(self) -> dict[str, Any]:
        """For another node to carry the call on (``from_dict``)."""
        ids = asdict(self.ids) if self.ids is not None else None
        return {
            "call_id": self.call_id,
            "direction": self.direction,
            "state": self.state.value,
            "peer": self.peer,
            "ids": ids,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leg:
        ids = data.get("ids")
        return cls(
            str(data["call_id"]),
            str(data["direction"]),
            CallState(data["state"]),
            peer=str(data.get("peer", "")),
            ids=CallIds(**ids) if isinstance(ids, dict) else None,
        )
