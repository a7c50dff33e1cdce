"""Bus events as JSON on Redis channels: one compact object per event, tagged by ``t``.

A message that does not decode (another version's, or garbage) is dropped with a warning
rather than ending the listener: one bad publisher must not deafen every node.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

from voxgate.bus.base import BusEvent, Changed, Displaced, NodeMessage, Registration, Revoked

__all__ = ["decode", "encode"]

log = logging.getLogger(__name__)


def encode(event: BusEvent) -> str:
    if isinstance(event, Revoked):
        return json.dumps(
            {
                "t": "revoked",
                "principals": list(event.principals),
                "reason": event.reason,
                "expired": event.expired,
                "jtis": list(event.jtis),
            }
        )
    if isinstance(event, Changed):
        ids = {"credential_ids": list(event.credential_ids)}
        return json.dumps({"t": "changed", **ids, "connection_ids": list(event.connection_ids)})
    if isinstance(event, Displaced):
        return json.dumps(
            {"t": "displaced", "session_id": event.session_id, "by": asdict(event.by)}
        )
    return json.dumps(
        {"t": "node", "node_id": event.node_id, "kind": event.kind, "body": event.body}
    )


def decode(data: str) -> BusEvent | None:
    try:
        obj = json.loads(data)
        if obj["t"] == "revoked":
            jtis = tuple(str(j) for j in obj.get("jtis") or ())
            return Revoked(
                tuple(obj["principals"]), obj["reason"], bool(obj.get("expired")), jtis=jtis
            )
        if obj["t"] == "changed":
            return Changed(
                tuple(map(str, obj["credential_ids"])), tuple(map(str, obj["connection_ids"]))
            )
        if obj["t"] == "displaced":
            return Displaced(obj["session_id"], Registration(**obj["by"]))
        if obj["t"] == "node":
            return NodeMessage(obj["node_id"], obj["kind"], obj["body"])
    except (ValueError, KeyError, TypeError):
        log.warning("undecodable bus message dropped")
    return None
