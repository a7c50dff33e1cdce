"""One registration across protocols: a SIP phone and a WebRTC session of the same credential
follow one registration policy, from one presence, and one revocation ends both."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.harness import SECRETS
from tests.rtc.conftest import Api
from tests.rtc.test_calls import online
from tests.rtc.test_gateway import raw_login
from tests.rtc.test_registrations import gone, patch
from tests.sip.peers import Baresip, SipNode, Sipp, register_scenario, registrations, wait_for
from voxgate.client import Client


def _credential(api: Api, conn_id: str | None = None, **fields: Any) -> dict[str, Any]:
    cred = api.credential(conn_id, **fields)
    SECRETS.add(cred["sip_password"])
    return cred


def _regs(node: SipNode, cred: dict[str, Any]) -> list[dict[str, Any]]:
    return registrations(node.vg, node.vg.api_key, credential_id=cred["id"])


async def test_a_sip_phone_displaces_the_webrtc_session_and_a_webrtc_login_removes_the_phone(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    cred = _credential(sip_api)
    user = cred["sip_username"]
    page = await online(sip_api, sip_node.vg.rtc_url, cred, ua="WebPage/1")
    phone = Baresip(tmp_path / "phone", sip_node.sip_port, user, cred["sip_password"])
    phone.start()
    try:
        notice = await page.wait_for("displaced", 10)
        assert "baresip" in notice.data["by"]["user_agent"]
        regs = _regs(sip_node, cred)
        assert [r["transport"] for r in regs] == ["udp"]
        assert len(sip_node.contacts(user)) == 1
        # the page logs in again: latest wins, so the phone's contact leaves Kamailio
        again = await online(sip_api, sip_node.vg.rtc_url, cred, ua="WebPage/2")
        assert await asyncio.to_thread(wait_for, lambda: not sip_node.contacts(user))
        regs = _regs(sip_node, cred)
        assert [(r["transport"], r["user_agent"]) for r in regs] == [("WSS", "WebPage/2")]
        kinds = sip_api.wait_audit(cred["id"], "sip_unregistered")
        assert "sip_registered" in kinds
        await again.close()
    finally:
        phone.stop()
        await page.close()


async def test_first_wins_refuses_the_second_device_whichever_protocol_came_first(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    conn = sip_api.connection(registration_policy="first_wins")
    # WebRTC first: the phone's REGISTER is refused with 403, the page keeps its place
    cred = _credential(sip_api, conn["id"])
    page = await online(sip_api, sip_node.vg.rtc_url, cred, ua="Kiosk/1")
    sipp = Sipp(tmp_path, sip_node.sip_port)
    res = await asyncio.to_thread(
        sipp.run, register_scenario(cred["sip_username"], cred["sip_password"], expect=403)
    )
    assert res.returncode == 0, res.stdout
    assert "Already registered by Kiosk/1 (first_wins)" in sipp.messages()
    assert [r["user_agent"] for r in _regs(sip_node, cred)] == ["Kiosk/1"]
    assert not [e for e in page.events if e.name == "displaced"]
    await page.close()
    # SIP first: the page's login is refused once, with the phone named, and punted
    other = _credential(sip_api, conn["id"])
    sipp = Sipp(tmp_path, sip_node.sip_port)
    res = await asyncio.to_thread(
        sipp.run, register_scenario(other["sip_username"], other["sip_password"])
    )
    assert res.returncode == 0, res.stdout
    ws, reply = await raw_login(sip_node.vg.rtc_url, {"login_token": sip_api.token(other["id"])})
    assert reply["error"]["code"] == -32001
    assert f"sipp-{other['sip_username']}" in reply["error"]["message"]
    assert "first_wins" in reply["error"]["message"]
    assert [f.get("method") for f in await gone(ws)] == ["telnyx_rtc.punt"]
    assert len(sip_node.contacts(other["sip_username"])) == 1


async def test_ring_all_keeps_the_phone_and_the_page(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    cred = _credential(sip_api, registration_policy="ring_all")
    page = await online(sip_api, sip_node.vg.rtc_url, cred, ua="Tab/1")
    sipp = Sipp(tmp_path, sip_node.sip_port)
    res = await asyncio.to_thread(
        sipp.run, register_scenario(cred["sip_username"], cred["sip_password"])
    )
    assert res.returncode == 0, res.stdout
    assert sorted(r["transport"] for r in _regs(sip_node, cred)) == ["WSS", "udp"]
    await asyncio.sleep(0.3)
    assert not [e for e in page.events if e.name == "displaced"]
    await page.close()


def test_a_refresh_is_not_a_new_device(sip_node: SipNode, sip_api: Api, tmp_path: Path) -> None:
    cred = _credential(sip_api)
    sipp = Sipp(tmp_path, sip_node.sip_port)
    for _ in range(2):  # the same phone (same contact) registers twice
        res = sipp.run(register_scenario(cred["sip_username"], cred["sip_password"]))
        assert res.returncode == 0, res.stdout
    regs = _regs(sip_node, cred)
    assert len(regs) == 1
    events = sip_api.http.get(f"/telephony_credentials/{cred['id']}/audit").json()["data"]
    assert [e["kind"] for e in events].count("sip_registered") == 1


def test_revocations_remove_the_contacts_and_the_digest_stops_working(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    for action in ("deactivate", "revoke_tokens", "delete"):
        cred = _credential(sip_api)
        user, password = cred["sip_username"], cred["sip_password"]
        sipp = Sipp(tmp_path, sip_node.sip_port)
        assert sipp.run(register_scenario(user, password)).returncode == 0
        assert sip_node.contacts(user)
        if action == "delete":
            sip_api.http.delete(f"/telephony_credentials/{cred['id']}").raise_for_status()
        else:
            sip_api.post(f"/telephony_credentials/{cred['id']}/actions/{action}")
        assert wait_for(lambda u=user: not sip_node.contacts(u), timeout=5), action
        assert not _regs(sip_node, cred)
        if action != "revoke_tokens":  # its password still registers: only tokens were cut
            again = Sipp(tmp_path, sip_node.sip_port)
            refused = again.run(
                register_scenario(user, password, expect=403 if action == "deactivate" else 401)
            )
            assert refused.returncode == 0, (action, refused.stdout)


def test_a_connections_own_user_name_registers_and_rings_all(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    conn = sip_api.connection(
        user_name="desk" + tmp_path.name[-6:].replace("_", ""), password="desk-pass-12345"
    )
    SECRETS.add("desk-pass-12345")
    for _ in range(2):  # two phones set up with the connection's login
        sipp = Sipp(tmp_path, sip_node.sip_port)
        assert sipp.run(register_scenario(conn["user_name"], "desk-pass-12345")).returncode == 0
    found = registrations(sip_node.vg, sip_node.vg.api_key, connection_id=conn["id"])
    assert len(found) == 2
    assert {r["registration_policy"] for r in found} == {"ring_all"}


async def test_a_credential_from_before_digests_registers_after_a_reset_or_a_password_login(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    reset, logged_in = _credential(sip_api), _credential(sip_api)
    with sqlite3.connect(sip_node.vg.workdir / "voxgate.db") as db:  # as a row before 0005
        db.executemany(
            "UPDATE telephony_credentials SET sip_digest = NULL WHERE id = ?",
            [(reset["id"],), (logged_in["id"],)],
        )
    sip_api.http.patch(f"/telephony_credentials/{reset['id']}", json={"tag": "x"})  # caches
    await asyncio.sleep(2.1)  # the gateway's 2 s record cache
    for cred in (reset, logged_in):
        sipp = Sipp(tmp_path, sip_node.sip_port)
        res = sipp.run(register_scenario(cred["sip_username"], cred["sip_password"], expect=401))
        assert res.returncode == 0, res.stdout
    events = sip_api.http.get(f"/telephony_credentials/{reset['id']}/audit").json()["data"]
    reasons = [e["details"]["reason"] for e in events if e["kind"] == "sip_register_failed"]
    assert reasons == ["no_digest_secret"]
    assert "reset the credential's password" in sip_node.vg.log_path.read_text()
    # the documented action: a new password, shown once, that registers
    out = sip_node.vg.cli("credentials", "reset-password", reset["id"])
    fresh = json.loads(out.stdout)["sip_password"]
    SECRETS.add(fresh)
    assert fresh != reset["sip_password"]
    await asyncio.sleep(2.1)  # another process wrote it: the gateway's record cache expires
    sipp = Sipp(tmp_path, sip_node.sip_port)
    assert sipp.run(register_scenario(reset["sip_username"], fresh)).returncode == 0
    # or: one WebRTC password login proves the password, and the digest is kept from it
    client = Client(
        sip_node.vg.rtc_url,
        login=logged_in["sip_username"],
        password=logged_in["sip_password"],
        reconnect=False,
    )
    await client.connect()
    await client.close()
    sipp = Sipp(tmp_path, sip_node.sip_port)
    res = await asyncio.to_thread(
        sipp.run, register_scenario(logged_in["sip_username"], logged_in["sip_password"])
    )
    assert res.returncode == 0, res.stdout


def test_the_hook_answers_only_kamailio(sip_node: SipNode) -> None:
    url = f"http://127.0.0.1:{sip_node.hook_port}/sip/auth"
    body = {"user": "anyone", "src_ip": "127.0.0.1"}
    assert httpx.post(url, data=body).status_code == 403
    assert httpx.post(url, data=body, headers={"X-Voxgate-Hook": "guess"}).status_code == 403
    secret = (sip_node.sip_dir / "hook.secret").read_text().strip()
    SECRETS.add(secret)
    answer = httpx.post(url, data=body, headers={"X-Voxgate-Hook": secret})
    assert answer.status_code == 200 and len(answer.text) == 32  # a decoy HA1, never a secret
    assert (sip_node.sip_dir / "hook.secret").stat().st_mode & 0o077 == 0
    assert (sip_node.sip_dir / "kamailio.cfg").stat().st_mode & 0o077 == 0
    _ = patch


def test_an_expiring_credential_loses_its_contacts_and_cannot_register_again(
    sip_node: SipNode, sip_api: Api, tmp_path: Path
) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=3)
    cred = _credential(sip_api, expires_at=soon.isoformat().replace("+00:00", "Z"))
    user, password = cred["sip_username"], cred["sip_password"]
    assert Sipp(tmp_path, sip_node.sip_port).run(register_scenario(user, password)).returncode == 0
    assert sip_node.contacts(user)
    assert wait_for(lambda: not sip_node.contacts(user), timeout=10)
    assert not _regs(sip_node, cred)
    res = Sipp(tmp_path, sip_node.sip_port).run(register_scenario(user, password, expect=403))
    assert res.returncode == 0, res.stdout
