"""The classic toll-fraud trick against a SIP proxy: a stranger sends an "in-dialog" INVITE
(a To tag, our Route) whose request URI is a carrier's number, hoping the proxy relays it as a
re-INVITE of some call. Kamailio relays an in-dialog request only when our Record-Route's MAC
for its Call-ID is on it, and in a dialog with voxgate's leg only towards the leg."""

from __future__ import annotations

import hashlib
import re
import socket
import uuid
from collections.abc import Callable

from tests.sip.peers import SipNode, _scenario, loopback_address, wait_for
from tests.sip.test_trunks import NUMBER, Carrier


def _vx(node: SipNode, kind: str, call_id: str) -> str:
    """What Kamailio's route[SIGN_DIALOG] puts in its Record-Route (the test reads the secret
    from the node's files, as only the node can)."""
    secret = (node.sip_dir / "hook.secret").read_text().strip()
    return kind + hashlib.sha256(f"{secret}:{kind}:{call_id}".encode()).hexdigest()


def _forged_reinvite(
    node: SipNode, carrier: Carrier, me: socket.socket, call_id: str, vx: str | None
) -> str:
    """Sends the forged request; returns the status line Kamailio answers with ('' if none)."""
    host, port = me.getsockname()
    route = f"<sip:127.0.0.1:{node.sip_port};lr" + (f";vx={vx}" if vx else "") + ">"
    message = (
        f"INVITE sip:{NUMBER}@{carrier.address}:{carrier.port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
        f"Route: {route}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:mallory@{host}>;tag=m{uuid.uuid4().hex[:8]}\r\n"
        f"To: <sip:{NUMBER}@{carrier.address}>;tag=c{uuid.uuid4().hex[:8]}\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 2 INVITE\r\n"
        f"Contact: <sip:mallory@{host}:{port}>\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    me.sendto(message.encode(), ("127.0.0.1", node.sip_port))
    try:
        while True:
            status = me.recv(65535).decode(errors="replace").split("\r\n", 1)[0]
            if not status.startswith("SIP/2.0 1"):
                return status
    except TimeoutError:
        return ""


def test_a_forged_in_dialog_invite_never_reaches_the_carrier(
    sip_node: SipNode, carrier: Carrier
) -> None:
    carrier.answer(_scenario('  <recv request="INVITE"/>\n'), timeout=8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as me:
        me.bind((loopback_address(), 0))
        me.settimeout(3)
        marks: dict[str, Callable[[str], str | None]] = {
            "no mark": lambda _: None,
            "a made-up mark": lambda _: "l" + "0" * 64,
            "another call's mark": lambda _: _vx(sip_node, "p", "another-call"),
            # a real mark of a dialog with voxgate's leg: such a dialog's requests go to the leg
            "a leg dialog's mark": lambda call: _vx(sip_node, "l", call),
        }
        refused = {}
        for why, mark in marks.items():
            call = uuid.uuid4().hex
            refused[why] = _forged_reinvite(sip_node, carrier, me, call, mark(call))
        for why, status in refused.items():
            assert status.startswith("SIP/2.0 403"), (why, status)
        # the control: a phones-only dialog's genuine mark is relayed, so the guard is what
        # refused the others
        allowed = uuid.uuid4().hex
        me.settimeout(0.5)
        _forged_reinvite(sip_node, carrier, me, allowed, _vx(sip_node, "p", allowed))
    assert wait_for(lambda: carrier.received("INVITE"), timeout=8)
    invites = carrier.received("INVITE")
    assert [re.search(r"Call-ID: (\S+)", i).group(1) for i in invites] == [allowed]  # type: ignore[union-attr]
