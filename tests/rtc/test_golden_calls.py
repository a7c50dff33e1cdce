"""Replay the real SDK's call frames (captured in Chromium) and compare our replies' shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import websockets

from tests.harness import Voxgate
from tests.rtc.conftest import Api

GOLDEN = json.loads(
    (Path(__file__).resolve().parents[1] / "golden" / "captured-frames.json").read_text()
)["frames"]


def golden(
    peer: str, direction: str, method: str | None = None, message: str | None = None
) -> dict[str, Any]:
    for f in GOLDEN:
        fr = f["frame"]
        if f["peer"] != peer or f["dir"] != direction:
            continue
        if method is not None and fr.get("method") == method:
            return fr  # type: ignore[no-any-return]
        if (
            message is not None
            and isinstance(fr.get("result"), dict)
            and fr["result"].get("message") == message
        ):
            return fr  # type: ignore[no-any-return]
    raise LookupError((peer, direction, method, message))


class Wire:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.inbox: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def expect(self, pred: Any, timeout: float = 5) -> dict[str, Any]:
        async def loop() -> dict[str, Any]:
            while True:
                for f in self.inbox:
                    if pred(f):
                        self.inbox.remove(f)
                        return f
                self.inbox.append(json.loads(await self.ws.recv()))

        return await asyncio.wait_for(loop(), timeout)

    async def reply_to(self, frame_id: str) -> dict[str, Any]:
        return await self.expect(lambda f: f.get("id") == frame_id and "method" not in f)

    async def request(self, method: str) -> dict[str, Any]:
        return await self.expect(lambda f: f.get("method") == method)


def same_keys(ours: dict[str, Any], theirs: dict[str, Any], ignore: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    want = set(theirs) - ignore
    assert want <= set(ours), (sorted(want - set(ours)), ours)


async def test_call_path_frames_match_the_captured_session(api: Api, server: Voxgate) -> None:
    conn = api.connection()
    alice_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    async with websockets.connect(server.rtc_url) as wa, websockets.connect(server.rtc_url) as wb:
        alice, bob = Wire(wa), Wire(wb)
        login_a = golden("alice", "C->S", "login")
        await alice.send(
            {**login_a, "params": {**login_a["params"], "login_token": api.token(alice_cred["id"])}}
        )
        same_keys(await alice.reply_to(login_a["id"]), golden("alice", "S->C", message="logged in"))
        login_b = golden("bob", "C->S", "login")
        await bob.send(
            {
                **login_b,
                "params": {
                    **login_b["params"],
                    "login": bob_cred["sip_username"],
                    "passwd": bob_cred["sip_password"],
                },
            }
        )
        same_keys(await bob.reply_to(login_b["id"]), golden("bob", "S->C", message="logged in"))

        invite = golden("alice", "C->S", "telnyx_rtc.invite")
        dialog = {
            **invite["params"]["dialogParams"],
            "destination_number": bob_cred["sip_username"],
        }
        await alice.send({**invite, "params": {**invite["params"], "dialogParams": dialog}})
        created = await alice.reply_to(invite["id"])
        same_keys(created["result"], golden("alice", "S->C", message="CALL CREATED")["result"])
        assert created["result"]["callID"] == dialog["callID"]

        rung = await bob.request("telnyx_rtc.invite")
        same_keys(
            rung["params"],
            golden("bob", "S->C", "telnyx_rtc.invite")["params"],
            ignore={"telnyx_session_id", "telnyx_leg_id", "telnyx_call_control_id"},
        )
        assert rung["params"]["sdp"] == invite["params"]["sdp"]
        assert (
            rung["params"]["caller_id_name"] == "Alice"
            and rung["params"]["client_state"] == "aGVsbG8="
        )
        await bob.send(
            {"jsonrpc": "2.0", "id": rung["id"], "result": {"method": "telnyx_rtc.invite"}}
        )
        ringing = await alice.request("telnyx_rtc.ringing")
        assert ringing["params"]["callID"] == dialog["callID"]

        answer = golden("bob", "C->S", "telnyx_rtc.answer")
        bob_dialog = {**answer["params"]["dialogParams"], "callID": rung["params"]["callID"]}
        await bob.send({**answer, "params": {**answer["params"], "dialogParams": bob_dialog}})
        same_keys(
            (await bob.reply_to(answer["id"]))["result"],
            golden("bob", "S->C", message="CALL ANSWERED")["result"],
        )
        answered = await alice.request("telnyx_rtc.answer")
        same_keys(answered["params"], golden("alice", "S->C", "telnyx_rtc.answer")["params"])
        assert answered["params"]["sdp"] == answer["params"]["sdp"]

        for frame in [
            f["frame"]
            for f in GOLDEN
            if f["peer"] == "alice"
            and f["dir"] == "C->S"
            and f["frame"].get("method") == "telnyx_rtc.modify"
        ]:
            await alice.send(frame)
            reply = await alice.reply_to(frame["id"])
            theirs = next(
                f["frame"]
                for f in GOLDEN
                if f["dir"] == "S->C" and f["frame"].get("id") == frame["id"]
            )
            assert reply["result"]["holdState"] == theirs["result"]["holdState"]
            same_keys(reply["result"], theirs["result"])

        info = golden("alice", "C->S", "telnyx_rtc.info")
        await alice.send(info)
        assert "result" in await alice.reply_to(info["id"])
        dtmf = await bob.request("telnyx_rtc.info")
        assert dtmf["params"]["dtmf"] == "1"

        bye = golden("bob", "C->S", "telnyx_rtc.bye")
        bye_dialog = {**bye["params"]["dialogParams"], "callID": rung["params"]["callID"]}
        await bob.send({**bye, "params": {**bye["params"], "dialogParams": bye_dialog}})
        same_keys(
            (await bob.reply_to(bye["id"]))["result"],
            golden("bob", "S->C", message="CALL ENDED")["result"],
        )
        ended = await alice.request("telnyx_rtc.bye")
        same_keys(
            ended["params"],
            golden("alice", "S->C", "telnyx_rtc.bye")["params"],
            ignore={"sipCode", "sipReason"},
        )
        assert (
            ended["params"]["cause"] == bye["params"]["cause"]
            and ended["params"]["causeCode"] == bye["params"]["causeCode"]
        )
