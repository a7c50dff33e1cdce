"""SIP phones register with a credential's sip_username/sip_password through voxgate's
Kamailio: real baresip over UDP and TCP, sipp for every way a REGISTER goes wrong."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from tests.harness import SECRETS
from tests.rtc.conftest import Api
from tests.sip.peers import (
    DOMAIN,
    Baresip,
    SipNode,
    Sipp,
    register_scenario,
    registrations,
    wait_for,
)


def _credential(api: Api, **fields: object) -> dict[str, str]:
    cred = api.credential(**fields)
    SECRETS.add(cred["sip_password"])
    return cred


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_with_a_credential(
    sip_node: SipNode, sip_api: Api, tmp_path: Path, transport: str
) -> None:
    cred = _credential(sip_api)
    user = cred["sip_username"]
    phone = Baresip(tmp_path / "phone", sip_node.sip_port, user, cred["sip_password"], transport)
    phone.start()
    try:
        found = wait_for(
            lambda: registrations(sip_node.vg, sip_node.vg.api_key, credential_id=cred["id"])
        )
        assert found, phone.log()
        reg = found[0]
        assert reg["transport"] == transport
        assert reg["contact"].startswith(f"sip:{user}")
        assert f"@127.0.0.1:{phone.port}" in reg["contact"]
        assert "baresip" in reg["user_agent"]
        assert reg["credential_name"] == cred["name"]
        assert reg["connection_name"].startswith("gw-")  # tests.rtc.conftest's connections
        assert reg["node_id"]
        assert sip_node.contacts(user) == [reg["contact"]]
        kinds = sip_api.wait_audit(cred["id"], "sip_registered")
        assert "sip_register_failed" not in kinds
    finally:
        phone.stop()
    # baresip unregisters as it quits (Expires: 0): gone from presence and from Kamailio
    assert wait_for(
        lambda: not registrations(sip_node.vg, sip_node.vg.api_key, credential_id=cred["id"])
    )
    assert sip_node.contacts(user) == []
    sip_api.wait_audit(cred["id"], "sip_unregistered")


def test_no_credentials_gets_a_digest_challenge(sip_node: SipNode, sipp: Sipp) -> None:
    res = sipp.run(register_scenario("nobody", None, expect=401))
    assert res.returncode == 0, res.stdout + res.stderr
    challenge = re.search(r"^WWW-Authenticate: (.*)$", sipp.messages(), re.M | re.I)
    assert challenge is not None
    assert challenge.group(1).startswith("Digest ")
    assert f'realm="{DOMAIN}"' in challenge.group(1)
    assert "nonce=" in challenge.group(1) and "qop=" in challenge.group(1)


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(
    sip_node: SipNode, sip_api: Api, sipp: Sipp
) -> None:
    cred = _credential(sip_api)
    wrong = sipp.run(register_scenario(cred["sip_username"], "not-the-password", expect=401))
    assert wrong.returncode == 0, wrong.stdout
    unknown = sipp.run(register_scenario("no-such-user-9f8e", "whatever", expect=401))
    assert unknown.returncode == 0, unknown.stdout
    kinds = sip_api.wait_audit(cred["id"], "sip_register_failed")
    assert "sip_registered" not in kinds
    events = sip_api.http.get(f"/telephony_credentials/{cred['id']}/audit").json()["data"]
    failed = next(e for e in events if e["kind"] == "sip_register_failed")
    assert failed["details"]["reason"] == "invalid_password"
    log = sip_node.vg.log_path.read_text()
    assert '"method": "sip"' in log and '"reason": "invalid_password"' in log
    assert not registrations(sip_node.vg, sip_node.vg.api_key, credential_id=cred["id"])


def test_repeated_failures_lock_the_user_out_like_webrtc_logins(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    cred = _credential(sip_api)
    user = cred["sip_username"]
    answers = []
    for _ in range(6):  # three free failures, then back-off: 403 while it lasts
        sipp = Sipp(tmp_path, sip_node.sip_port)
        res = sipp.run(register_scenario(user, "wrong-password", expect=403), timeout=5)
        answers.append(res.returncode == 0)
    assert answers[:3] == [False, False, False]  # 401 again: still challenged
    assert answers[3:] == [True, True, True]  # locked: 403
    # the right password is refused while the lockout lasts, as for a WebRTC login
    res = Sipp(tmp_path, sip_node.sip_port).run(
        register_scenario(user, cred["sip_password"], expect=403), timeout=5
    )
    assert res.returncode == 0


def test_a_deactivated_credential_cannot_register(
    sip_node: SipNode, sip_api: Api, sipp: Sipp
) -> None:
    cred = _credential(sip_api)
    sip_api.post(f"/telephony_credentials/{cred['id']}/actions/deactivate")
    res = sipp.run(register_scenario(cred["sip_username"], cred["sip_password"], expect=403))
    assert res.returncode == 0, res.stdout
    events = sip_api.http.get(f"/telephony_credentials/{cred['id']}/audit").json()["data"]
    reasons = [e["details"].get("reason") for e in events if e["kind"] == "sip_register_failed"]
    assert "credential_not_active" in reasons


def test_a_replayed_authorization_is_refused(sip_node: SipNode, sip_api: Api, sipp: Sipp) -> None:
    """An attacker who saw a phone's REGISTER sends its Authorization again, in a REGISTER
    of its own (new branch, Call-ID and Contact: the digest covers none of them): the nonce
    count was used already, so it is challenged anew and its contact never registers."""
    cred = _credential(sip_api)
    user = cred["sip_username"]
    res = sipp.run(register_scenario(user, cred["sip_password"]))
    assert res.returncode == 0, res.stdout
    seen = re.search(r"^Authorization: (Digest .*)$", sipp.messages(), re.M)
    assert seen is not None
    uri = re.search(r'uri="([^"]+)"', seen.group(1))
    assert uri is not None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.66", 0))
        port = s.getsockname()[1]
        s.settimeout(3)
        s.sendto(
            (
                f"REGISTER {uri.group(1)} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.66:{port};branch=z9hG4bKreplay{port}\r\n"
                f"From: <sip:{user}@{DOMAIN}>;tag=evil\r\nTo: <sip:{user}@{DOMAIN}>\r\n"
                f"Call-ID: replay-{port}\r\nCSeq: 9 REGISTER\r\n"
                f"Contact: <sip:{user}@127.0.0.66:{port}>\r\n"
                f"Authorization: {seen.group(1)}\r\nMax-Forwards: 70\r\nExpires: 300\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", sip_node.sip_port),
        )
        reply = s.recvfrom(65535)[0].decode()
    assert reply.startswith("SIP/2.0 401"), reply
    assert "www-authenticate: digest" in reply.lower()
    assert not [c for c in sip_node.contacts(user) if "127.0.0.66" in c]
    # Kamailio reports a reused nonce count as a stale nonce: challenged again, never
    # counted against the user (an honest phone's nonce ages out the same way)
    log = (sip_node.sip_dir / "kamailio.log").read_text()
    assert f"digest refused (nonce_stale, -4) for {user} from 127.0.0.66" in log
    events = sip_api.http.get(f"/telephony_credentials/{cred['id']}/audit").json()["data"]
    registered = [e["details"]["address"] for e in events if e["kind"] == "sip_registered"]
    assert registered == [sipp.address]


def test_malformed_oversized_and_flooding_traffic_never_reaches_voxgate(
    sip_node: SipNode,
) -> None:
    hooks_before = sip_node.vg.log_path.read_text().count('"method": "sip"')
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        target = ("127.0.0.1", sip_node.sip_port)
        s.sendto(b"REGISTER garbage\r\n\r\n", target)
        big = (
            "REGISTER sip:voxgate.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKx\r\n"
            "From: <sip:a@voxgate.test>;tag=1\r\nTo: <sip:a@voxgate.test>\r\nCall-ID: big\r\n"
            "CSeq: 1 REGISTER\r\nX-Pad: " + "a" * 30000 + "\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendto(big.encode(), target)
        for sent in (b"REGISTER garbage", big.encode()):
            with pytest.raises(TimeoutError):
                s.recvfrom(65535)  # dropped, unanswered
            del sent
    log = (sip_node.sip_dir / "kamailio.log").read_text()
    assert "dropped an oversized message" in log
    assert sip_node.vg.log_path.read_text().count('"method": "sip"') == hooks_before


def test_a_flooding_source_is_banned_without_an_answer(sip_node: SipNode, tmp_path: Path) -> None:
    """A scanner's burst (here: OPTIONS pings past the per-address limit) is dropped, and the
    address stays banned: even a well-formed request then gets no answer."""
    options = (
        "OPTIONS sip:{d} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{p};branch=z9hG4bK{n}\r\n"
        "From: <sip:scan@{d}>;tag={n}\r\nTo: <sip:{d}>\r\nCall-ID: flood{n}\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    # a source address of its own (127.0.0.0/8 is all loopback): the other tests keep theirs
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.9", 0))
        port = s.getsockname()[1]
        s.settimeout(1.0)
        target = ("127.0.0.1", sip_node.sip_port)
        s.sendto(options.format(d=DOMAIN, p=port, n=0).encode(), target)
        assert s.recvfrom(65535)[0].startswith(b"SIP/2.0 200")  # answered before the flood
        for n in range(1, 400):  # bounded burst
            s.sendto(options.format(d=DOMAIN, p=port, n=n).encode(), target)
        time.sleep(0.5)
        s.settimeout(0.2)
        with __import__("contextlib").suppress(TimeoutError):
            while True:
                s.recvfrom(65535)  # drain what was answered before the ban
        s.settimeout(1.0)
        s.sendto(options.format(d=DOMAIN, p=port, n=999).encode(), target)
        with pytest.raises(TimeoutError):
            s.recvfrom(65535)
    assert "flood from 127.0.0.9" in (sip_node.sip_dir / "kamailio.log").read_text()


def _udp(node: SipNode, message: str, source: str = "127.0.0.77") -> str | None:
    """One request from a source address of its own; the reply, or None if dropped."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(1.0)
        s.sendto(message.format(port=s.getsockname()[1]).encode(), ("127.0.0.1", node.sip_port))
        try:
            return s.recvfrom(65535)[0].decode()
        except TimeoutError:
            return None


OPTIONS = (
    "OPTIONS sip:voxgate.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.77:{port};branch=z9hG4bKo1\r\n"
    "From: <sip:probe@voxgate.test>;tag=1\r\nTo: <sip:voxgate.test>\r\nCall-ID: probe-{port}\r\n"
    "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
)


def test_known_scanners_get_no_answer_and_nothing_is_relayed_elsewhere(sip_node: SipNode) -> None:
    assert _udp(sip_node, OPTIONS.replace("{ua}", "Zoiper rv2.10")) is not None
    assert _udp(sip_node, OPTIONS.replace("{ua}", "friendly-scanner")) is None
    relay = (
        "INVITE sip:someone@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.77:{port};branch=z9hG4bKr1\r\n"
        "From: <sip:x@voxgate.test>;tag=1\r\nTo: <sip:someone@example.com>\r\n"
        "Call-ID: relay-{port}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@127.0.0.77:{port}>\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
    reply = _udp(sip_node, relay)
    assert reply is not None and reply.startswith("SIP/2.0 403 Relaying Forbidden"), reply
