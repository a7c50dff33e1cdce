"""Call routing for the gateway: find the callee, join the legs, relay, and report webhooks.

The sans-I/O sessions own the legs and their states; this router only knows which leg talks
to which, and does the I/O: store look-ups, the bus registration, assistants' media, webhooks.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from voxgate.assistants import AssistantCall, bot_for
from voxgate.bus.base import BusUnavailable, NodeMessage
from voxgate.domain.records import Connection
from voxgate.rtc.calls import CAUSES, Relay, RouteCall
from voxgate.services.control import connection_principal, credential_principal

if TYPE_CHECKING:
    from voxgate.gateway.server import Gateway, Peer

__all__ = ["CallRouter"]

log = structlog.get_logger("voxgate.calls")
LegKey = tuple[str, str]  # (sessid, callID)
ASSISTANT_RING = 30.0


@dataclass(slots=True)
class Link:
    """Both nodes of a cross-node call hold a copy; each indexes it by its local leg."""

    id: str
    caller: LegKey
    callee: LegKey | None
    assistant: AssistantCall | None
    from_: str
    to: str
    connections: dict[str, str]  # "outgoing"/"incoming" -> connection id
    client_state: str | None
    answered: bool = False
    started: float = field(default_factory=time.time)
    caller_node: str = ""
    callee_node: str = ""

    def other(self, key: LegKey) -> tuple[str, LegKey | None]:
        if key == self.caller:
            return self.callee_node, self.callee
        return self.caller_node, self.caller

    def meta(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "from": self.from_,
            "to": self.to,
            "connections": self.connections,
            "client_state": self.client_state,
            "started": self.started,
        }


class CallRouter:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.node_id = gateway.node_id
        self.links: dict[LegKey, Link] = {}
        self.conversations: dict[str, list[dict[str, Any]]] = {}
        self._connections: dict[str, tuple[float, Connection | None]] = {}

    # -- routing ---------------------------------------------------------------------------
    async def route(self, peer: Peer, out: RouteCall) -> None:
        session = peer.session
        key = (session.sessid, out.call_id)
        grant = session.grant
        if grant is None:
            return
        link = Link(
            id=str(uuid.uuid4()),
            caller=key,
            callee=None,
            assistant=None,
            from_=out.caller_number,
            to=out.destination,
            connections={"outgoing": grant.connection_id} if grant.connection_id else {},
            client_state=out.client_state,
        )
        try:
            await self._route(peer, out, link)
        except Exception:
            log.exception("call routing failed")
            await self._fail(peer, link, "NORMAL_TEMPORARY_FAILURE")

    async def _route(self, peer: Peer, out: RouteCall, link: Link) -> None:
        dest = out.destination
        store = self.gw.rt.control.store
        assistant_id = (
            dest.removeprefix("assistant:")
            if dest.startswith(("assistant:", "assistant-"))
            else None
        )
        if assistant_id is not None:
            assistant = await store.get_assistant(assistant_id)
            if assistant is None:
                return await self._fail(peer, link, "UNALLOCATED_NUMBER")
            return await self._to_assistant(peer, out, link, assistant)
        principal, connection_id = await self._principal_for(dest)
        if principal is None:
            return await self._fail(peer, link, "UNALLOCATED_NUMBER")
        reg = await self.gw.rt.bus.registration(principal)
        if reg is None or reg.session_id == peer.session.sessid:
            return await self._fail(peer, link, "SUBSCRIBER_ABSENT")
        params = {
            "sdp": out.sdp,
            "caller_id_name": out.caller_name,
            "caller_id_number": out.caller_number,
            "client_state": out.client_state,
            "dialogParams": {"custom_headers": out.custom_headers} if out.custom_headers else None,
        }
        conn = await self._connection(connection_id)
        inbound = (conn.settings.get("inbound") or {}) if conn else {}
        timeout = float(inbound.get("timeout_2xx_secs") or 90)
        link.caller_node, link.callee_node = self.node_id, reg.node_id
        link.callee = (reg.session_id, str(uuid.uuid4()))  # we choose the callee's callID
        if connection_id:
            link.connections["incoming"] = connection_id
        if reg.node_id == self.node_id:
            callee = self.gw.peers.get(reg.session_id)
            if callee is None:
                return await self._fail(peer, link, "SUBSCRIBER_ABSENT")
            if callee.session.busy:
                return await self._fail(peer, link, "USER_BUSY")
        # The caller must be ringing before the callee can possibly answer.
        self.links[link.caller] = link
        await self.gw.apply(
            peer, peer.session.call_routed(out.call_id, timeout, time.time(), peer=dest)
        )
        offer = {"to": list(link.callee), "from": list(link.caller), "params": params}
        offer["link"] = link.meta()
        if reg.node_id == self.node_id:
            await self.offer(self.node_id, offer)
        else:
            node_msg = NodeMessage(reg.node_id, "offer", {**offer, "node": self.node_id})
            await self.gw.rt.bus.publish(node_msg)
            await self._webhook(link, "call.initiated", {"state": "ringing"})

    async def _to_assistant(self, peer: Peer, out: RouteCall, link: Link, assistant: Any) -> None:
        grant = peer.session.grant
        conv_id = grant.conversation_id if grant and grant.conversation_id else str(uuid.uuid4())
        conversation = self.conversations.setdefault(conv_id, [])
        call = AssistantCall(bot_for(assistant), conversation)
        link.assistant = call
        link.to = f"assistant:{assistant.id}"
        self.links[link.caller] = link
        await self.gw.apply(
            peer, peer.session.call_routed(out.call_id, ASSISTANT_RING, time.time(), peer=link.to)
        )
        await self._webhook(link, "call.initiated", {"state": "ringing"})
        try:
            answer = await call.answer(out.sdp)
        except Exception as exc:
            log.warning("assistant could not answer", error=type(exc).__name__)
            self.links.pop(link.caller, None)
            await call.close()
            return await self._fail(peer, link, "NORMAL_TEMPORARY_FAILURE")
        if self.links.get(link.caller) is not link:
            await call.close()  # the caller hung up while we were answering
            return
        link.answered = True
        params = {"sdp": answer, "conversation_id": conv_id}
        await self.gw.apply(peer, peer.session.relayed(out.call_id, "answer", params, time.time()))
        await self._webhook(link, "call.answered", {"state": "answered"})

    async def _principal_for(self, dest: str) -> tuple[str | None, str]:
        store = self.gw.rt.control.store
        if not dest or len(dest) > 128:
            return None, ""
        cred = await store.credential_by_sip_username(dest)
        if cred is None:
            from voxgate.store.base import CredentialFilter

            named = await store.list_credentials(CredentialFilter(name=dest), 1, 1)
            cred = named.items[0] if named.items else None
        if cred is not None:
            return credential_principal(cred.id), cred.connection_id
        conn = await store.connection_by_user_name(dest)
        if conn is not None:
            return connection_principal(conn.id), conn.id
        return None, ""

    async def _fail(self, peer: Peer, link: Link, cause: str) -> None:
        await self.gw.apply(peer, peer.session.call_failed(link.caller[1], cause, time.time()))
        await self._webhook(link, "call.hangup", {"state": "hangup", "hangup_cause": cause.lower()})

    # -- relaying --------------------------------------------------------------------------
    async def offer(self, caller_node: str, body: dict[str, Any]) -> None:
        """Ring a local session for a call placed here or on another node."""
        to, frm = _key(body["to"]), _key(body["from"])
        meta = body.get("link") or {}
        callee = self.gw.peers.get(to[0])
        if callee is None or callee.session.busy:
            cause = "SUBSCRIBER_ABSENT" if callee is None else "USER_BUSY"
            bye = {"cause": cause, "causeCode": CAUSES[cause]}
            return await self._deliver(caller_node, frm, to, "bye", bye)
        call_id, outs = callee.session.incoming_call(body["params"], time.time(), call_id=to[1])
        if call_id is None:
            bye = {"cause": "USER_BUSY", "causeCode": CAUSES["USER_BUSY"]}
            return await self._deliver(caller_node, frm, to, "bye", bye)
        link = self.links.get(frm) if caller_node == self.node_id else None
        if link is None:
            link = Link(
                id=str(meta.get("id") or uuid.uuid4()),
                caller=frm,
                callee=to,
                assistant=None,
                from_=str(meta.get("from", "")),
                to=str(meta.get("to", "")),
                connections=dict(meta.get("connections") or {}),
                client_state=meta.get("client_state"),
                caller_node=caller_node,
                callee_node=self.node_id,
            )
        self.links[to] = link
        await self.gw.apply(callee, outs)
        if caller_node == self.node_id:
            await self._webhook(link, "call.initiated", {"state": "ringing"})

    async def relay(self, peer: Peer, out: Relay) -> None:
        key = (peer.session.sessid, out.call_id)
        link = self.links.get(key)
        if link is None:
            return
        if out.kind == "bye":
            self._unlink(link, key)
            cause = str(out.params.get("cause", "")).lower()
            await self._webhook(link, "call.hangup", {"state": "hangup", "hangup_cause": cause})
        if link.assistant is not None:
            return await self._to_bot(peer, link, out)
        if out.kind == "answer" and not link.answered:
            link.answered = True
            await self._webhook(link, "call.answered", {"state": "answered"})
        node, other = link.other(key)
        if other is not None:
            await self._deliver(node, other, key, out.kind, out.params)

    async def _deliver(
        self, node: str, to: LegKey, frm: LegKey, kind: str, params: dict[str, Any]
    ) -> None:
        """Hand a leg's message to the other leg, here or on its node."""
        if node and node != self.node_id:
            body = {"to": list(to), "from": list(frm), "kind": kind, "params": params}
            with contextlib.suppress(BusUnavailable):
                await self.gw.rt.bus.publish(NodeMessage(node, "relay", body))
            return
        link = self.links.get(to)
        if link is not None and kind == "bye":
            self._unlink(link, to)
        if link is not None and kind == "answer":
            link.answered = True
        target = self.gw.peers.get(to[0])
        if target is not None:
            await self.gw.apply(target, target.session.relayed(to[1], kind, params, time.time()))

    async def on_node_message(self, msg: NodeMessage) -> None:
        if msg.node_id != self.node_id:
            return
        body = msg.body
        if msg.kind == "offer":
            await self.offer(str(body.get("node", "")), body)
        elif msg.kind == "relay":
            to, frm = _key(body["to"]), _key(body["from"])
            await self._deliver(self.node_id, to, frm, str(body["kind"]), dict(body["params"]))

    async def _to_bot(self, peer: Peer, link: Link, out: Relay) -> None:
        call = link.assistant
        assert call is not None
        if out.kind == "bye":
            await call.close()
            return
        if out.kind != "ai_conversation":
            return
        text = _text_of(out.params)
        if not text:
            return
        reply = await call.message(text)
        if reply is None:
            return
        message = {
            "type": "conversation.item.created",
            "item": {
                "role": "assistant",
                "type": "message",
                "content": [{"type": "text", "text": reply}],
            },
        }
        await self.gw.apply(
            peer, peer.session.relayed(link.caller[1], "ai_conversation", message, time.time())
        )

    async def forget(self, peer: Peer) -> None:
        """The socket is gone: every call it was in ends, the other side gets a bye."""
        relays = [o for o in peer.session.hangup_all("NORMAL_CLEARING") if isinstance(o, Relay)]
        for out in relays:
            await self.relay(peer, out)

    def _unlink(self, link: Link, *keys: LegKey) -> None:
        for key in (link.caller, link.callee, *keys):
            if key is not None and self.links.get(key) is link:
                del self.links[key]

    # -- webhooks --------------------------------------------------------------------------
    async def _connection(self, conn_id: str) -> Connection | None:
        if not conn_id:
            return None
        cached = self._connections.get(conn_id)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        conn = await self.gw.rt.control.store.get_connection(conn_id)
        if len(self._connections) > 10_000:
            self._connections.clear()
        self._connections[conn_id] = (now + 5.0, conn)
        return conn

    async def _webhook(self, link: Link, event_type: str, extra: dict[str, Any]) -> None:
        sender = self.gw.webhooks
        if sender is None:
            return
        for direction, conn_id in link.connections.items():
            with contextlib.suppress(Exception):
                conn = await self._connection(conn_id)
                url = conn.settings.get("webhook_event_url") if conn else None
                if not url:
                    continue
                timeout = conn.settings.get("webhook_timeout_secs") if conn else None
                payload = {
                    "call_control_id": f"v3:{link.id}:{direction}",
                    "call_leg_id": f"{link.id}:{direction}",
                    "call_session_id": link.id,
                    "connection_id": conn_id,
                    "client_state": link.client_state,
                    "from": link.from_,
                    "to": link.to,
                    "direction": direction,
                    "start_time": _iso(link.started),
                    **extra,
                }
                sender.send(str(url), event_type, payload, float(timeout) if timeout else None)


def _text_of(params: dict[str, Any]) -> str:
    item = params.get("item")
    if not isinstance(item, dict):
        return ""
    parts = item.get("content")
    if not isinstance(parts, list):
        return ""
    texts = [
        str(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    return " ".join(texts)[:4000]


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _key(value: Any) -> LegKey:
    return (str(value[0]), str(value[1]))
