"""Call state changes as Telnyx-shaped webhooks, one per connection a call touches.

The router reports what happened (``call.initiated``, ``call.answered``, ``call.hangup``); this
module knows the payload: the ids an app uses to tie a browser call to its events, the parties,
the connection's ``webhook_event_url`` and timeout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from voxgate.domain.ids import new_uuid
from voxgate.domain.records import CallIds, Connection
from voxgate.domain.timeutil import from_epoch, iso
from voxgate.webhooks.delivery import WebhookSender

__all__ = ["CallEvents", "CallInfo"]


@dataclass(slots=True)
class CallInfo:
    """What a call's webhooks say about it; both nodes of a cross-node call hold a copy."""

    from_: str
    to: str
    connections: dict[str, str]  # "outgoing"/"incoming" -> connection id
    client_state: str | None
    started: float
    id: str = field(default_factory=new_uuid)
    trunk: str | None = None  # the SIP trunk a call to or from a number crosses

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["from"] = data.pop("from_")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], now: float) -> CallInfo:
        state = data.get("client_state")
        return cls(
            from_=str(data.get("from", "")),
            to=str(data.get("to", "")),
            connections={str(k): str(v) for k, v in dict(data.get("connections") or {}).items()},
            client_state=state if isinstance(state, str) else None,
            started=float(data.get("started") or now),
            id=str(data.get("id") or new_uuid()),
            trunk=str(data["trunk"]) if data.get("trunk") else None,
        )


class CallEvents:
    def __init__(
        self,
        connection: Callable[[str], Awaitable[Connection | None]],
        sender: WebhookSender,
    ) -> None:
        self._connection = connection
        self.sender = sender

    async def report(self, call: CallInfo, event_type: str, extra: dict[str, Any]) -> None:
        for direction, conn_id in call.connections.items():
            with contextlib.suppress(Exception):  # a webhook never disturbs the call
                conn = await self._connection(conn_id)
                url = conn.settings.get("webhook_event_url") if conn else None
                if conn is None or not url:
                    continue
                timeout = conn.settings.get("webhook_timeout_secs")
                ids = CallIds.for_leg(call.id, direction)
                payload = {
                    "call_control_id": ids.call_control_id,
                    "call_leg_id": ids.call_leg_id,
                    "call_session_id": ids.call_session_id,
                    "connection_id": conn_id,
                    "client_state": call.client_state,
                    "from": call.from_,
                    "to": call.to,
                    "direction": direction,
                    "start_time": iso(from_epoch(call.started)),
                    **({"sip_trunk_id": call.trunk} if call.trunk else {}),
                    **extra,
                }
                self.sender.send(str(url), event_type, payload, float(timeout) if timeout else None)
