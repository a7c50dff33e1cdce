"""Fuzzing the core: hypothesis frames (shrunk to a minimal frame on failure), then 100,000
seeded frames from the same grammar and mutated captures of the real SDK; a sample at the live
gateway.

Why two generators: hypothesis spends about 3 ms building each of these nested frames and the
core about 10 us taking it, so 100,000 of them through hypothesis was five minutes of ``make
test`` spent in the generator. Hypothesis keeps what it is best at (its edge cases and
shrinking) on 5,000 frames; a ``random.Random`` with a fixed seed makes the volume, and a
failure there names its seed and the frame, which is as reproducible.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.harness import Voxgate
from tests.rtc.conftest import Api
from tests.rtc.test_golden_calls import GOLDEN
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

KEYS = ["callID", "sdp", "dialogParams", "action", "dtmf", "cause", "login_token", "target_id"]
ALPHABET = "aZ09 -_.:@/=\\\"'\x00\n\t\u00e9\u4e2d\u202e\ud800\U0001f600"
EDGES = [0, -1, 1, 2**31, -(2**63), 2**64, 10**6]
CAPTURED = [f["frame"] for f in GOLDEN if f["dir"] == "C->S"]


def _text(rng: random.Random, size: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(size + 1)))


def _id(rng: random.Random) -> Any:
    return rng.choice([None, _text(rng, 8), rng.randint(0, 10**6)])


def _scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            rng.random() < 0.5,
            rng.randint(-(2**40), 2**40),
            rng.choice(EDGES),
            rng.random() * 1e9,
            _text(rng, 12),
            rng.choice(METHODS + KEYS),
        ]
    )


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth >= 3 or roll < 0.5:
        return _scalar(rng)
    if roll < 0.7:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice([*KEYS, "x"]): _value(rng, depth + 1) for _ in range(rng.randrange(5))}


def _grammar(rng: random.Random) -> dict[str, Any]:
    """The same shape as ``frames``: an id of any kind, mostly real methods, params maybe."""
    frame: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": _id(rng),
        "method": rng.choice(METHODS) if rng.random() < 0.8 else _scalar(rng),
    }
    if rng.random() < 0.8:
        frame["params"] = {rng.choice(KEYS): _value(rng) for _ in range(rng.randrange(6))}
    if rng.random() < 0.1:
        frame["result"] = _value(rng)
    return frame


def _mutated(rng: random.Random) -> dict[str, Any]:
    """A real SDK frame with one to three of its values replaced or removed: past the first
    checks, into the paths a well-formed invite or answer takes."""
    frame: dict[str, Any] = json.loads(json.dumps(rng.choice(CAPTURED)))
    for _ in range(rng.randint(1, 3)):
        node: Any = frame
        while isinstance(node, dict) and node and rng.random() < 0.6:
            key = rng.choice(list(node))
            if not isinstance(node[key], dict) or not node[key]:
                break
            node = node[key]
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if rng.random() < 0.2:
                del node[key]
            else:
                node[key] = _value(rng)
    if rng.random() < 0.5:
        frame["id"] = _id(rng)
    return frame


def seeded_frames(seed: int, count: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield _mutated(rng) if rng.random() < 0.4 else _grammar(rng)


def _logged_in() -> Session:
    session = Session(config(max_frames_per_second=10**9), "198.51.100.9", 1, T0)
    login(session, grant())
    return session


def take(session: Session, frame: dict[str, Any]) -> None:
    """One frame in; a frame with an id and a method is always answered (or sent to be
    authenticated), and a login is granted so that the session goes on past it."""
    outs = session.receive(frame, T0 + 1)
    if frame.get("id") is not None and isinstance(frame.get("method"), str):
        assert any(isinstance(o, Send | Authenticate) for o in outs), frame
    for o in outs:
        if isinstance(o, Authenticate):
            session.login_result(o.request_id, grant(), T0 + 1)


BATCH, EXAMPLES = 100, 50  # 5,000 hypothesis frames per run


@pytest.mark.timeout(600)
def test_core_survives_hypothesis_frames() -> None:
    session = _logged_in()
    count = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.generate, Phase.shrink],
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(frames, min_size=BATCH, max_size=BATCH))
    def run(batch: list[dict[str, Any]]) -> None:
        nonlocal count
        for frame in batch:
            count += 1
            take(session, frame)

    run()
    assert count >= BATCH * EXAMPLES


SEED, VOLUME = 20261127, 100_000


def test_core_survives_100k_seeded_frames() -> None:
    session = _logged_in()
    methods: set[str] = set()
    taken = 0
    for i, frame in enumerate(seeded_frames(SEED, VOLUME)):
        try:
            take(session, frame)
        except Exception as e:
            raise AssertionError(f"seed {SEED}, frame {i}: {frame!r}") from e
        if isinstance(frame.get("method"), str):
            methods.add(frame["method"])
        taken += 1
    assert taken == VOLUME
    # The volume reached every method, not one path 100,000 times.
    assert set(METHODS) <= methods


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
