"""The sans-I/O session with a fake clock: every transition, deadline and reply shape."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from voxgate.config import Settings
from voxgate.domain.errors import LoginFailed
from voxgate.domain.records import Grant, Registration
from voxgate.rtc import Session, SessionConfig, State
from voxgate.rtc.outputs import Audit, Authenticate, Close, Output, Register, Send

T0 = 1_000_000.0


def config(**settings: Any) -> SessionConfig:
    """The gateway's config from ``Settings`` with these overrides. Pings, the idle timeout
    and reattach are off unless a test turns them on: most tests pin exact deadlines."""
    quiet = {"ping_interval": 0.0, "idle_timeout": 0.0, "reattach_window": 0.0}
    return Settings(**{**quiet, **settings}).session_config("n1")


CFG = config(expiry_notice=3600, handshake_timeout=10)


def taker(user_agent: str) -> Registration:
    """The registration that displaces a session."""
    return Registration(
        "cred:c1", "conn1", "c1", "gencredX", "s2", "n2", "203.0.113.9", 4444, user_agent, T0 + 4
    )


def grant(principal: str = "cred:c1", exp: float | None = T0 + 86_400, jti: str = "j1") -> Grant:
    return Grant(
        "token", principal, "conn1", principal.removeprefix("cred:"), "gencredX", exp, jti=jti
    )


def sends(outs: list[Output]) -> list[dict[str, Any]]:
    return [o.frame for o in outs if isinstance(o, Send)]


def login(s: Session, g: Grant | LoginFailed, now: float = T0, req_id: str = "L1") -> list[Output]:
    outs = s.receive(
        json.dumps(
            {
                "jsonrpc": "2.0",
                "id": req_id,
                "method": "login",
                "params": {"login_token": "t", "User-Agent": {"data": "UA/1"}},
            }
        ),
        now,
    )
    assert len(outs) == 1 and isinstance(outs[0], Authenticate)
    assert outs[0].request_id == req_id
    return s.login_result(req_id, g, now)


def new() -> Session:
    return Session(CFG, "198.51.100.7", 5000, T0)


def test_first_login_replies_then_client_ready_then_registers() -> None:
    s = new()
    outs = login(s, grant())
    frames = sends(outs)
    assert frames[0] == {
        "jsonrpc": "2.0",
        "id": "L1",
        "result": {"message": "logged in", "sessid": s.sessid},
        "voice_sdk_id": s.voice_sdk_id,
    }
    assert frames[1]["method"] == "telnyx_rtc.clientReady" and frames[1]["params"] == {
        "reattached_sessions": []
    }
    assert "state" not in json.dumps(frames[0])  # result.params.state would hijack the login reply
    assert any(isinstance(o, Register) and o.user_agent == "UA/1" for o in outs)
    assert any(isinstance(o, Audit) and o.kind == "login_ok" for o in outs)
    assert s.state is State.READY
    gw = sends(
        s.receive(
            {"jsonrpc": "2.0", "id": "G", "method": "telnyx_rtc.gatewayState", "params": {}}, T0
        )
    )
    reged = {"state": "REGED", "dc": "n1", "region": "local"}  # no report key: no report id
    assert gw == [{"jsonrpc": "2.0", "id": "G", "result": {"params": reged, "sessid": s.sessid}}]
    assert s.state is State.READY


def test_failed_login_is_one_32001_never_32000() -> None:
    s = new()
    outs = login(s, LoginFailed("JWT token authentication failed"))
    assert sends(outs) == [
        {
            "jsonrpc": "2.0",
            "id": "L1",
            "error": {"code": -32001, "message": "JWT token authentication failed"},
        }
    ]
    assert s.state is State.CONNECTED and not any(isinstance(o, Register) for o in outs)


def test_unauthenticated_requests_get_32000_but_ping_is_answered() -> None:
    s = new()
    assert (
        sends(
            s.receive(
                {"jsonrpc": "2.0", "id": "x", "method": "telnyx_rtc.invite", "params": {}}, T0
            )
        )[0]["error"]["code"]
        == -32000
    )
    assert (
        sends(
            s.receive({"jsonrpc": "2.0", "id": "p", "method": "telnyx_rtc.ping", "params": {}}, T0)
        )[0]["result"]["message"]
        == "PONG"
    )


def test_refresh_same_credential_keeps_sessid_and_moves_expiry() -> None:
    s = new()
    login(s, grant(exp=T0 + 100))
    sid = s.sessid
    outs = login(s, grant(exp=T0 + 90_000, jti="j2"), now=T0 + 50, req_id="L2")
    assert sends(outs)[0]["result"] == {"message": "logged in", "sessid": sid}
    assert not any(isinstance(o, Register) for o in outs)  # no new registration, no new handshake
    assert all(f.get("method") != "telnyx_rtc.clientReady" for f in sends(outs))
    assert s.grant is not None and s.grant.expires_at == T0 + 90_000 and s.sessid == sid
    assert any(isinstance(o, Audit) and o.kind == "refreshed" for o in outs)


def test_refresh_with_another_credential_is_refused_and_changes_nothing() -> None:
    s = new()
    login(s, grant(exp=T0 + 1000))
    outs = login(s, grant("cred:other", exp=T0 + 90_000), req_id="L2")
    assert sends(outs)[0]["error"]["code"] == -32001
    assert (
        s.grant is not None and s.grant.principal == "cred:c1" and s.grant.expires_at == T0 + 1000
    )


def test_failed_refresh_keeps_the_old_expiry() -> None:
    s = new()
    login(s, grant(exp=T0 + 1000))
    outs = login(s, LoginFailed("JWT token expired"), req_id="L2")
    assert (
        sends(outs)[0]["error"]["code"] == -32001
        and s.grant.expires_at == T0 + 1000
        and s.state is State.READY
    )


def test_notice_at_lead_then_punt_and_close_at_exp() -> None:
    s = new()
    login(s, grant(exp=T0 + 7200))
    assert s.next_deadline() == T0 + 3600
    assert s.on_timer(T0 + 3599) == []
    outs = s.on_timer(T0 + 3600)
    notice = sends(outs)[0]
    assert notice["method"] == "telnyx_rtc.event"
    p = notice["params"]
    assert p["eventType"] == "voxgate.token_expiring" and p["code"] == 34001
    assert (
        p["server_time"] == T0 + 3600 and p["expires_in"] == 3600 and p["eventChannel"] != s.sessid
    )
    assert s.next_deadline() == T0 + 7200
    end = s.on_timer(T0 + 7200)
    methods = [f["method"] for f in sends(end)]
    assert methods == ["telnyx_rtc.event", "telnyx_rtc.punt"]
    assert isinstance(end[-1], Close) and end[-1].code == 4002
    assert any(isinstance(o, Audit) and o.kind == "expired" for o in end)
    assert s.state is State.CLOSED and s.next_deadline() is None


def test_short_token_gets_the_notice_right_after_login() -> None:
    s = new()
    frames = sends(login(s, grant(exp=T0 + 60)))
    assert (
        frames[-1]["params"]["eventType"] == "voxgate.token_expiring"
        and frames[-1]["params"]["expires_in"] == 60
    )


def test_refresh_before_expiry_rearms_the_notice() -> None:
    s = new()
    login(s, grant(exp=T0 + 3700))
    s.on_timer(T0 + 100)
    assert s.notice_sent
    login(s, grant(exp=T0 + 100 + 86_400, jti="j2"), now=T0 + 200, req_id="L2")
    assert not s.notice_sent and s.next_deadline() == T0 + 100 + 86_400 - 3600
    assert s.on_timer(T0 + 3700) == []  # the old expiry no longer ends the session


def test_handshake_timeout_closes_a_silent_socket() -> None:
    s = new()
    assert s.next_deadline() == T0 + 10
    outs = s.on_timer(T0 + 10)
    assert isinstance(outs[0], Close) and outs[0].code == 4001


def test_revocation_and_displacement() -> None:
    s = new()
    login(s, grant())
    disp = s.displaced(taker("Other"), T0 + 5)
    assert sends(disp)[0]["params"]["eventType"] == "voxgate.displaced"
    assert sends(disp)[0]["params"]["by"]["user_agent"] == "Other"
    assert s.state is not State.CLOSED  # displaced sessions stay connected
    outs = s.revoke("credential deactivated", T0 + 6)
    assert [f["method"] for f in sends(outs)] == ["telnyx_rtc.event", "telnyx_rtc.punt"]
    assert isinstance(outs[-1], Close) and outs[-1].code == 4003
    assert s.receive({"jsonrpc": "2.0", "id": "z", "method": "telnyx_rtc.ping"}, T0 + 7) == []


def test_anonymous_never_registers() -> None:
    s = new()
    g = Grant("anonymous", "anon:a1", "", None, "", None, assistant_id="a1")
    outs = login(s, g)
    assert not any(isinstance(o, Register) for o in outs)
    assert s.next_deadline() is None


def test_bad_frames_get_json_rpc_errors() -> None:
    s = new()
    assert sends(s.receive("not json", T0))[0]["error"]["code"] == -32700
    assert sends(s.receive("[1,2]", T0))[0]["error"]["code"] == -32600
    assert (
        sends(s.receive({"jsonrpc": "2.0", "id": "a", "method": "login", "params": [1]}, T0))[0][
            "error"
        ]["code"]
        == -32602
    )
    login(s, grant())
    assert (
        sends(s.receive({"jsonrpc": "2.0", "id": "b", "method": "nope"}, T0))[0]["error"]["code"]
        == -32601
    )
    # method-less requests (the SDK's debug reports) still get an answer
    assert (
        sends(s.receive({"jsonrpc": "2.0", "id": "d", "type": "debug_report_start"}, T0))[0][
            "result"
        ]
        == {}
    )
    assert (
        s.receive({"jsonrpc": "2.0", "id": 1001, "result": {"method": "telnyx_rtc.ringing"}}, T0)
        == []
    )


def test_flood_closes_with_policy_code() -> None:
    s = new()
    outs: list[Output] = []
    for _ in range(CFG.frame_burst + 1):
        outs = s.receive({"jsonrpc": "2.0", "id": "p", "method": "telnyx_rtc.ping"}, T0)
    assert isinstance(outs[0], Close) and outs[0].code == 1008


frames_st = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
methods_st = st.sampled_from(
    [
        "login",
        "anonymous_login",
        "telnyx_rtc.ping",
        "telnyx_rtc.gatewayState",
        "telnyx_rtc.invite",
        "x",
        None,
        5,
    ]
)


@settings(max_examples=2000, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error"]),
        frames_st,
        max_size=6,
    ),
    methods_st,
    st.one_of(st.none(), st.text(max_size=8), st.integers(), frames_st),
)
def test_generated_frames_never_raise_and_every_id_is_answered(
    frame: dict[str, Any], method: Any, frame_id: Any
) -> None:
    s = new()
    login(s, grant(), req_id="setup")
    frame = {**frame, "method": method, "id": frame_id}
    outs = s.receive(frame, T0 + 1)
    if (
        isinstance(frame_id, str | int)
        and not isinstance(frame_id, bool)
        and method is not None
        and s.state is not State.CLOSED
    ):
        answered = [o for o in outs if isinstance(o, Send | Authenticate)]
        assert answered, frame
    for text in (json.dumps(frame), "{", "\x00", "[]"):
        s.receive(text, T0 + 2)
