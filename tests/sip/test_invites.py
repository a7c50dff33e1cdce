"""Who may call whom over SIP: voxgate decides, Kamailio carries the INVITE. A registered
credential calls another by its sip_username; calls from outside are admitted only as the
callee's connection says (``sip_uri_calling_preference``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import SECRETS
from tests.rtc.conftest import Api
from tests.sip.peers import DOMAIN, SIPP, SipNode, Sipp, _scenario, _send, register_scenario

INVITE = """\
INVITE sip:{callee}@{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{caller}@{domain}>;tag=[pid]-[call_number]
To: <sip:{callee}@{domain}>
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
User-Agent: sipp-caller
{auth}Content-Length: 0
"""
ACK = """\
ACK sip:{callee}@{domain} SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch-1]
From: <sip:{caller}@{domain}>;tag=[pid]-[call_number]
To: <sip:{callee}@{domain}>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0
"""
BUSY = """\
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 486 Busy Here
[last_Via:]
[last_From:]
[last_To:];tag=[pid]busy[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]></send>
  <recv request="ACK"/>
"""


def invite_scenario(caller: str, callee: str, expect: int, password: str | None = None) -> str:
    """INVITE; with a password, answer the 407 first; expect ``expect`` (and ACK it)."""
    args = {"caller": caller, "callee": callee, "domain": DOMAIN}
    steps = _send(INVITE.format(**args, cseq=1, auth=""))
    steps += '  <recv response="100" optional="true"/>\n'
    cseq = 1
    if password is not None:
        steps += '  <recv response="407" auth="true"/>\n'
        steps += _send(ACK.format(**args, cseq=1), retrans=False)
        cseq = 2
        auth = f"[authentication username={caller} password={password}]\n"
        steps += _send(INVITE.format(**args, cseq=2, auth=auth))
        steps += '  <recv response="100" optional="true"/>\n'
    steps += f'  <recv response="{expect}"/>\n'
    steps += _send(ACK.format(**args, cseq=cseq), retrans=False)
    return _scenario(steps)


@pytest.fixture
def busy_phone(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> Iterator[tuple[dict[str, Any], subprocess.Popen[str]]]:
    """A registered phone that answers its next INVITE 486 (sipp: REGISTER, then a UAS
    on the same address and port)."""
    cred = sip_api.credential()
    SECRETS.add(cred["sip_password"])
    reg = Sipp(tmp_path, sip_node.sip_port)
    assert reg.run(register_scenario(cred["sip_username"], cred["sip_password"])).returncode == 0
    path = tmp_path / "busy.xml"
    path.write_text(_scenario(BUSY))
    uas = subprocess.Popen(
        [
            SIPP,
            "-sf",
            str(path),
            "-i",
            reg.address,
            "-p",
            str(reg.port),
            "-m",
            "1",
            "-timeout",
            "20",
            "-timeout_error",
            "-nostdin",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield cred, uas
    if uas.poll() is None:
        uas.kill()
    uas.wait(5)


def _prefer(api: Api, cred: dict[str, Any], preference: str) -> None:
    r = api.http.patch(
        f"/credential_connections/{cred['connection_id']}",
        json={"sip_uri_calling_preference": preference},
    )
    r.raise_for_status()


def test_disabled_refuses_an_unauthenticated_call_from_outside(
    sip_node: SipNode, sip_api: Api, busy_phone: tuple[dict[str, Any], Any], tmp_path: Path
) -> None:
    callee, uas = busy_phone
    caller = Sipp(tmp_path, sip_node.sip_port)
    res = caller.run(invite_scenario("outsider", callee["sip_username"], 403))
    assert res.returncode == 0, res.stdout + caller.messages()[-2000:]
    assert "SIP URI calling is disabled" in caller.messages()
    assert uas.poll() is None  # the phone never rang


def test_unrestricted_lets_an_outside_call_reach_the_phone(
    sip_node: SipNode, sip_api: Api, busy_phone: tuple[dict[str, Any], Any], tmp_path: Path
) -> None:
    callee, uas = busy_phone
    _prefer(sip_api, callee, "unrestricted")
    caller = Sipp(tmp_path, sip_node.sip_port)
    res = caller.run(invite_scenario("outsider", callee["sip_username"], 486))
    assert res.returncode == 0, res.stdout + caller.messages()[-2000:]
    out, _ = uas.communicate(timeout=10)
    assert uas.returncode == 0, out  # it got the INVITE, answered busy, got the ACK


def test_internal_challenges_outsiders(
    sip_node: SipNode, sip_api: Api, busy_phone: tuple[dict[str, Any], Any], tmp_path: Path
) -> None:
    callee, uas = busy_phone
    _prefer(sip_api, callee, "internal")
    caller = Sipp(tmp_path, sip_node.sip_port)
    res = caller.run(invite_scenario("outsider", callee["sip_username"], 407))
    assert res.returncode == 0, res.stdout + caller.messages()[-2000:]
    assert uas.poll() is None


def test_a_registered_credential_calls_another_by_its_sip_username(
    sip_node: SipNode, sip_api: Api, busy_phone: tuple[dict[str, Any], Any], tmp_path: Path
) -> None:
    """SIP to SIP under the default preference: the caller proves who it is (407, digest)."""
    callee, uas = busy_phone
    caller_cred = sip_api.credential()
    SECRETS.add(caller_cred["sip_password"])
    caller = Sipp(tmp_path, sip_node.sip_port)
    scenario = invite_scenario(
        caller_cred["sip_username"], callee["sip_username"], 486, caller_cred["sip_password"]
    )
    res = caller.run(scenario)
    assert res.returncode == 0, res.stdout + caller.messages()[-2000:]
    out, _ = uas.communicate(timeout=10)
    assert uas.returncode == 0, out


def test_an_unknown_callee_is_not_found(sip_node: SipNode, sip_api: Api, tmp_path: Path) -> None:
    """(A callee on WebRTC is rung through voxgate's user agent: tests/sip/test_phone_calls.py.)"""
    caller_cred = sip_api.credential()
    SECRETS.add(caller_cred["sip_password"])
    user, password = caller_cred["sip_username"], caller_cred["sip_password"]
    caller = Sipp(tmp_path, sip_node.sip_port)
    assert caller.run(invite_scenario(user, "nobody-here", 404, password)).returncode == 0


def test_an_assistant_takes_calls_from_our_phones_only(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    """sip:<assistant id>@domain: an unknown one is not found; a stranger is refused (an
    assistant costs its owner) and one of ours is challenged first. (The assistant answering,
    with audio: tests/conformance/test_media_sip.py.)"""
    caller_cred = sip_api.credential()
    SECRETS.add(caller_cred["sip_password"])
    user, password = caller_cred["sip_username"], caller_cred["sip_password"]
    caller = Sipp(tmp_path, sip_node.sip_port)
    assert caller.run(invite_scenario(user, "assistant-nobody", 404, password)).returncode == 0
    bot = sip_api.post("/ai/assistants", {"name": "tone", "kind": "tone"}).json()["data"]
    assert caller.run(invite_scenario("stranger", bot["id"], 403)).returncode == 0
    assert caller.run(invite_scenario(user, bot["id"], 407)).returncode == 0
