"""Fuzzing: 100,000 hypothesis-generated frames through the core; a sample at the live gateway."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.harness import Voxgate
from tests.rtc.conftest import Api
from tests.unit.test_session import T0, config, grant, login
from voxgate.client import Client
from voxgate.rtc import Session
from voxgate.rtc.outputs import Authenticate, Send

METHODS = [
    "login",
    "anonymous_login",
    "telnyx_rtc.ping",
    "telnyx_rtc.gatewayState",
    "telnyx_rtc.invite",
    "telnyx_rtc.answer",
    "telnyx_rtc.bye",
    "telnyx_rtc.modify",
    "telnyx_rtc.info",
    "telnyx_rtc.candidate",
    "ai_conversation",
    "x",
]
scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["callID", "sdp", "dialogParams", "action", "dtmf", "cause", "login_token", "x"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=8,
)
frames = st.fixed_dictionaries(
    {
        "jsonrpc": st.just("2.0"),
        "id": st.one_of(st.none(), st.text(max_size=8), st.integers(0, 10**6)),
        "method": st.one_of(st.sampled_from(METHODS), st.none(), scalars),
    },
    optional={
        "params": st.dictionaries(
            st.sampled_from(
                [
                    "callID",
                    "sdp",
                    "dialogParams",
                    "action",
                    "dtmf",
                    "cause",
                    "login_token",
                    "target_id",
                ]
            ),
            values,
            max_size=5,
        ),
        "result": values,
    },
)

SESSION = Session(config(max_frames_per_second=10**9), "198.51.100.9", 1, T0)
login(SESSION, grant())
COUNT = {"n": 0}
BATCH, EXAMPLES = 100, 1000  # 100,000 frames per run


@pytest.mark.timeout(900)
def test_core_survives_100k_generated_frames() -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(frames, min_size=BATCH, max_size=BATCH))
    def run(batch: list[dict[str, Any]]) -> None:
        for frame in batch:
            COUNT["n"] += 1
            outs = SESSION.receive(frame, T0 + 1)
            if frame.get("id") is not None and isinstance(frame.get("method"), str):
                assert any(isinstance(o, Send | Authenticate) for o in outs), frame
            for o in outs:
                if isinstance(o, Authenticate):  # answer logins so the session goes on
                    SESSION.login_result(o.request_id, grant(), T0 + 1)

    run()
    assert COUNT["n"] >= 100_000


async def test_live_gateway_sample_answers_every_id_and_spares_others(
    api: Api, server: Voxgate
) -> None:
    bystander = Client(
        server.rtc_url, login_token=api.token(api.credential()["id"]), reconnect=False
    )
    await bystander.connect()
    rng = random.Random(7)
    async with websockets.connect(server.rtc_url) as ws:
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": "l",
                    "method": "login",
                    "params": {"login_token": api.token(api.credential()["id"])},
                }
            )
        )
        await ws.recv()
        expected = set()
        for i in range(400):
            frame = {
                "jsonrpc": "2.0",
                "id": f"f{i}",
                "method": rng.choice(METHODS),
                "params": {
                    "callID": rng.choice(["", "x", "y" * 200]),
                    "sdp": rng.choice([None, 1, "v=0"]),
                    "dialogParams": rng.choice([None, [], {"callID": "z"}]),
                },
            }
            await ws.send(json.dumps(frame) if i % 7 else "{broken json")
            if i % 7:
                expected.add(f"f{i}")
            if i % 20 == 19:
                await asyncio.sleep(0.5)  # stay under the per-socket frame rate
        answered = set()
        try:
            while expected - answered:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if "method" not in reply and reply.get("id") in expected:
                    answered.add(reply["id"])
        except TimeoutError:
            pass
        assert expected <= answered, sorted(expected - answered)[:5]
    assert (await bystander.request("telnyx_rtc.ping", {}))["message"] == "PONG"
    await bystander.close()
