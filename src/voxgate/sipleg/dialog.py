"""A dialog's identity (RFC 3261 12) and every message the leg builds from it.

The UAC side learns its dialog from the 2xx (or a provisional with a tag), the UAS side from
the INVITE; both keep the route set from Record-Route, as written, and send every request to
the outbound proxy. Only loose routing is built (``;lr``): Kamailio's ``record_route()``
always writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voxgate.sipleg.config import Ids, LegConfig
from voxgate.sipleg.messages import Headers, Request, Response

__all__ = ["Dialog", "cancel_for", "quote_name", "reply_to", "response_to", "via"]

_ALLOW = "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS"


@dataclass(slots=True)
class Dialog:
    """Who we are and who they are in this call, and what the next request needs."""

    config: LegConfig
    call_id: str
    local: str  # our From (UAC) or To (UAS) header, with our tag
    remote: str  # theirs, with their tag once known
    local_tag: str
    remote_tag: str | None = None
    target: str = ""  # their Contact: the request URI of every request in the dialog
    routes: list[str] = field(default_factory=list)  # Route headers, in sending order
    local_seq: int = 1
    remote_seq: int | None = None
    acks: dict[tuple[int, str], Request] = field(default_factory=dict)  # 2xx ACKs we sent

    @classmethod
    def outgoing(
        cls, config: LegConfig, ids: Ids, target: str, caller: str, caller_name: str = ""
    ) -> Dialog:
        tag = ids.token()[:10]
        name = f"{quote_name(caller_name)} " if caller_name else ""
        call_id = f"{ids.token()}@{config.local_host}"
        return cls(config, call_id, f"{name}<{caller}>;tag={tag}", f"<{target}>", tag, None, target)

    @classmethod
    def incoming(cls, config: LegConfig, ids: Ids, invite: Request) -> Dialog:
        """The UAS side of the dialog an INVITE asks for (RFC 3261 12.1.1)."""
        tag = ids.token()[:10]
        to = invite.get("To") or ""
        return cls(
            config,
            invite.call_id,
            f"{to};tag={tag}",
            invite.get("From") or "",
            tag,
            invite.from_tag,
            invite.contact or invite.uri,
            invite.record_route,
            1,
            invite.cseq.number,
        )

    def learn(self, response: Response) -> None:
        """The UAC side learns the remote tag, target and route set from a response that
        creates (or confirms) the dialog: Record-Route reversed (RFC 3261 12.1.2)."""
        self.remote = response.get("To") or self.remote
        self.remote_tag = response.to_tag
        self.target = response.contact or self.target
        self.routes = list(reversed(response.record_route))

    def request(
        self,
        method: str,
        branch: str,
        *,
        seq: int | None = None,
        body: bytes = b"",
        content_type: str = "application/sdp",
        remote: str | None = None,
        extra: Headers = (),
    ) -> Request:
        """A request in this dialog; ``seq`` given (an ACK) keeps the INVITE's number."""
        if seq is None:
            self.local_seq += 1
            seq = self.local_seq
        headers: list[tuple[str, str]] = [
            ("Via", via(self.config, branch)),
            ("Max-Forwards", "70"),
            ("From", self.local),
            ("To", self.remote if remote is None else remote),
            ("Call-ID", self.call_id),
            ("CSeq", f"{seq} {method}"),
            *[("Route", route) for route in self.routes],
        ]
        if method == "INVITE":
            headers += [("Contact", contact(self.config)), ("Allow", _ALLOW)]
        headers += [*extra, ("User-Agent", self.config.user_agent)]
        if body:
            headers.append(("Content-Type", content_type))
        return Request(method, self.target, tuple(headers), body)

    def invite(self, branch: str, sdp: str, extra: Headers = ()) -> Request:
        """The first INVITE: CSeq 1, no route set yet (the outbound proxy routes it)."""
        return self.request("INVITE", branch, seq=self.local_seq, body=sdp.encode(), extra=extra)

    def ack(self, response: Response, branch: str, body: bytes = b"") -> Request:
        """The ACK for a 2xx: a request of its own (new branch), the INVITE's CSeq number
        (RFC 3261 13.2.2.4). Kept, to be sent again for each retransmitted 2xx."""
        seq = response.cseq.number
        ack = self.request("ACK", branch, seq=seq, body=body, remote=response.get("To"))
        self.acks[(seq, response.to_tag or "")] = ack
        return ack

    def fork(self, response: Response) -> Dialog:
        """A second dialog a forked INVITE created (another phone answered too): to ACK and
        BYE it (RFC 3261 13.2.2.4)."""
        other = Dialog(self.config, self.call_id, self.local, self.remote, self.local_tag)
        other.learn(response)
        other.local_seq = response.cseq.number
        return other

    def response(self, request: Request, status: int, reason: str, body: bytes = b"") -> Response:
        return response_to(self.config, request, status, reason, self.local_tag, body)


def response_to(
    config: LegConfig,
    request: Request,
    status: int,
    reason: str,
    tag: str | None,
    body: bytes = b"",
    extra: Headers = (),
) -> Response:
    """A response (RFC 3261 8.2.6): the request's Vias, From, Call-ID and CSeq; its To with
    our ``tag`` (none on a 100); Record-Route and Contact when it may create the dialog."""
    to = request.get("To") or ""
    if tag and status > 100 and request.to_tag is None:
        to = f"{to};tag={tag}"
    headers: list[tuple[str, str]] = [("Via", line) for line in request.values("Via")]
    headers += [
        ("From", request.get("From") or ""),
        ("To", to),
        ("Call-ID", request.call_id),
        ("CSeq", request.get("CSeq") or ""),
    ]
    if request.method == "INVITE" and 100 < status < 300:
        headers += [("Record-Route", line) for line in request.values("Record-Route")]
        headers += [("Contact", contact(config)), ("Allow", _ALLOW)]
    headers += [*extra, ("Server", config.user_agent)]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return Response(status, reason, tuple(headers), body)


def cancel_for(invite: Request, reason: str = "") -> Request:
    """CANCEL: the INVITE's request URI, top Via (same branch), From, To, Call-ID, CSeq number
    and Route (RFC 3261 9.1); ``reason``: why (RFC 3326)."""
    headers = (
        ("Via", invite.values("Via")[0]),
        ("Max-Forwards", "70"),
        ("From", invite.get("From") or ""),
        ("To", invite.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.number} CANCEL"),
        *[("Route", route) for route in invite.values("Route")],
        *([("Reason", reason)] if reason else []),
    )
    return Request("CANCEL", invite.uri, headers)


def reply_to(message: Request | Response) -> tuple[str, int]:
    """Where a response (to ``message``) goes: the top Via's ``received`` and ``rport`` when
    present, else its sent-by (RFC 3261 18.2.2, RFC 3581)."""
    top = message.vias[0]
    params = top.parameters
    host = params.get("received") or top.host
    rport = params.get("rport")
    port = int(rport) if rport and rport.isdigit() else top.port or 5060
    return host, port


def via(config: LegConfig, branch: str) -> str:
    sent_by = f"{config.local_host}:{config.local_port}"
    return f"SIP/2.0/{config.transport.value} {sent_by};branch={branch};rport"


def contact(config: LegConfig) -> str:
    suffix = ";transport=tcp" if config.transport.reliable else ""
    return f"<sip:{config.local_host}:{config.local_port}{suffix}>"


def quote_name(name: str) -> str:
    """A display name as a quoted-string, control characters dropped (no header injection)."""
    clean = "".join(ch for ch in name if ch >= " " and ch != "\x7f")[:128]
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'
