"""The call state machine and call timers in the sans-I/O core, with a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_session import T0, config, grant, login, sends
from voxgate.rtc import Session, State
from voxgate.rtc.legs import CallState, InvalidTransition, transition
from voxgate.rtc.outputs import Audit, Close, Offer, Output, Relay, RouteCall
from voxgate.rtc.renegotiation import UPDATE_TIMEOUT
from voxgate.rtc.trickle import TRICKLE_WAIT, with_candidates


def session(**cfg: Any) -> Session:
    s = Session(config(expiry_notice=10, **cfg), "198.51.100.1", 1, T0)
    login(s, grant(exp=T0 + 1000))
    return s


def invite(s: Session, call_id: str = "c1", dest: str = "bob", now: float = T0) -> list[Output]:
    return s.receive(
        {
            "jsonrpc": "2.0",
            "id": "inv",
            "method": "telnyx_rtc.invite",
            "params": {
                "sdp": "v=0",
                "dialogParams": {"callID": call_id, "destination_number": dest},
            },
        },
        now,
    )


def test_transition_table() -> None:
    assert transition(CallState.NEW, "routed") is CallState.RINGING
    assert transition(CallState.RINGING, "answered") is CallState.ACTIVE
    assert transition(CallState.ACTIVE, "hold") is CallState.HELD
    assert transition(CallState.HELD, "unhold") is CallState.ACTIVE
    for state in (CallState.NEW, CallState.RINGING, CallState.ACTIVE, CallState.HELD):
        assert transition(state, "hangup") is CallState.HANGUP
    with pytest.raises(InvalidTransition):
        transition(CallState.NEW, "answered")
    with pytest.raises(InvalidTransition):
        transition(CallState.HANGUP, "hangup")


def test_outbound_invite_routes_and_rings_then_times_out() -> None:
    s = session()
    outs = invite(s)
    assert sends(outs)[0]["result"]["message"] == "CALL CREATED"
    route = next(o for o in outs if isinstance(o, RouteCall))
    assert route.destination == "bob" and route.offer.sdp == "v=0"
    ringing = sends(s.on_call(lambda c: c.routed("c1", 30, T0 + 1)))
    assert ringing[0]["method"] == "telnyx_rtc.ringing"
    assert s.next_deadline() == T0 + 31
    timeout = s.on_timer(T0 + 31)
    bye = sends(timeout)[0]
    assert (
        bye["method"] == "telnyx_rtc.bye"
        and bye["params"]["cause"] == "NO_ANSWER"
        and bye["params"]["causeCode"] == 19
    )
    assert next(o for o in timeout if isinstance(o, Relay)).kind == "bye"
    assert s.calls.legs == {}


def test_inbound_answer_hold_and_bye_relay() -> None:
    s = session()
    call_id, outs = s.incoming_call(Offer("offer", caller_number="alice"), T0)
    assert call_id and sends(outs)[0]["params"]["sdp"] == "offer"
    assert s.busy and s.incoming_call(Offer("x"), T0)[0] is None  # one call at a time
    ans = s.receive(
        {
            "jsonrpc": "2.0",
            "id": "a",
            "method": "telnyx_rtc.answer",
            "params": {"sdp": "answer", "dialogParams": {"callID": call_id}},
        },
        T0,
    )
    assert [o for o in ans if isinstance(o, Relay)] == [Relay(call_id, "answer", {"sdp": "answer"})]
    held = s.receive(
        {
            "jsonrpc": "2.0",
            "id": "h",
            "method": "telnyx_rtc.modify",
            "params": {"action": "toggleHold", "dialogParams": {"callID": call_id}},
        },
        T0,
    )
    assert sends(held)[0]["result"]["holdState"] == "held"
    bye = s.receive(
        {
            "jsonrpc": "2.0",
            "id": "b",
            "method": "telnyx_rtc.bye",
            "params": {
                "cause": "NORMAL_CLEARING",
                "causeCode": 16,
                "dialogParams": {"callID": call_id},
            },
        },
        T0,
    )
    assert sends(bye)[0]["result"]["message"] == "CALL ENDED"
    assert next(o for o in bye if isinstance(o, Relay)).params == {
        "cause": "NORMAL_CLEARING",
        "causeCode": 16,
    }
    assert not s.busy


def test_revocation_byes_calls_first() -> None:
    s = session()
    invite(s)
    s.on_call(lambda c: c.routed("c1", 30, T0))
    outs = s.revoke("credential deactivated", T0 + 1)
    methods = [f["method"] for f in sends(outs)]
    assert methods[0] == "telnyx_rtc.bye" and methods[-1] == "telnyx_rtc.punt"
    assert any(isinstance(o, Relay) and o.kind == "bye" for o in outs)


def test_expiry_grace_then_end_when_the_call_ends() -> None:
    s = session(expiry_grace=60)
    invite(s)
    s.on_call(lambda c: c.routed("c1", 30, T0))
    s.on_call(lambda c: c.relayed("c1", "answer", {"sdp": "a"}))
    assert s.on_timer(T0 + 1000) == []  # expired, but the call is up: grace
    assert s.grace_until == T0 + 1060 and s.next_deadline() == T0 + 1060
    refused = invite(s, "c2", now=T0 + 1001)
    assert any(
        f.get("params", {}).get("cause") == "CALL_REJECTED" for f in sends(refused)
    )  # no new calls
    ended = s.on_call(
        lambda c: c.relayed("c1", "bye", {"cause": "NORMAL_CLEARING", "causeCode": 16})
    )
    assert isinstance(ended[-1], Close) and ended[-1].code == 4002


def test_grace_runs_out() -> None:
    s = session(expiry_grace=5)
    invite(s)
    s.on_call(lambda c: c.routed("c1", 30, T0))
    s.on_call(lambda c: c.relayed("c1", "answer", {"sdp": "a"}))
    s.on_timer(T0 + 1000)
    outs = s.on_timer(T0 + 1005)
    assert isinstance(outs[-1], Close) and outs[-1].code == 4002
    assert sends(outs)[0]["method"] == "telnyx_rtc.bye"


def test_anonymous_invite_is_routed_to_its_assistant_only() -> None:
    from voxgate.domain.records import Grant

    s = Session(config(), "198.51.100.1", 1, T0)
    login(s, Grant("anonymous", "anon:a1", "", None, "", None, assistant_id="a1"))
    outs = invite(s, dest="")
    assert next(o for o in outs if isinstance(o, RouteCall)).destination == "assistant:a1"
    other = invite(s, "c2", dest="alice")
    assert sends(other)[-1]["params"]["cause"] == "CALL_REJECTED"


TRICKLE_OFFER = (
    "v=0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-options:trickle\r\n"
)


def _frame(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": method, "method": method, "params": params}


def test_a_trickled_offer_rings_once_its_candidates_are_in() -> None:
    s = session()
    dialog = {"callID": "t1", "destination_number": "bob"}
    outs = s.receive(
        _frame("telnyx_rtc.invite", {"sdp": TRICKLE_OFFER, "dialogParams": dialog}), T0
    )
    assert sends(outs)[0]["result"]["message"] == "CALL CREATED"
    assert not [o for o in outs if isinstance(o, RouteCall)]  # waits for candidates
    cand = {"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMLineIndex": 0}
    assert not [
        o
        for o in s.receive(_frame("telnyx_rtc.candidate", {**cand, "dialogParams": dialog}), T0)
        if isinstance(o, RouteCall)
    ]
    end = s.receive(
        _frame("telnyx_rtc.endOfCandidates", {"endOfCandidates": True, "dialogParams": dialog}), T0
    )
    route = next(o for o in end if isinstance(o, RouteCall))
    assert route.offer.sdp.endswith("a=ice-options:trickle\r\na=" + cand["candidate"] + "\r\n")


def test_a_trickled_offer_without_end_of_candidates_rings_after_the_wait() -> None:
    s = session()
    dialog = {"callID": "t2", "destination_number": "bob"}
    s.receive(_frame("telnyx_rtc.invite", {"sdp": TRICKLE_OFFER, "dialogParams": dialog}), T0)
    assert s.next_deadline() == T0 + TRICKLE_WAIT
    route = next(o for o in s.on_timer(T0 + TRICKLE_WAIT) if isinstance(o, RouteCall))
    assert route.offer.sdp == TRICKLE_OFFER  # nothing came: the offer as it was


def test_candidates_go_into_the_m_section_they_name() -> None:
    sdp = "v=0\r\nm=audio 9 X 0\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\n"
    merged = with_candidates(sdp, [(1, "candidate:v"), (0, "a-without-prefix"), (7, "candidate:x")])
    assert merged == (
        "v=0\r\nm=audio 9 X 0\r\na=mid:0\r\na=candidate:a-without-prefix\r\n"
        "m=video 9 X 96\r\na=mid:1\r\na=candidate:v\r\n"
    )


def _answered(s: Session, call_id: str = "c1") -> None:
    invite(s, call_id)
    s.on_call(lambda c: c.routed(call_id, 30, T0))
    s.on_call(lambda c: c.relayed(call_id, "answer", {"sdp": "a"}))


def test_hold_is_told_to_both_parties() -> None:
    s = session()
    _answered(s)
    outs = s.receive(_frame("telnyx_rtc.modify", {"action": "hold", "callID": "c1"}), T0)
    frames = sends(outs)
    assert frames[0]["result"]["holdState"] == "held"
    assert (
        frames[1]["params"]["eventType"] == "voxgate.hold" and frames[1]["params"]["by"] == "local"
    )
    assert [o for o in outs if isinstance(o, Relay)] == [Relay("c1", "hold", {"held": True})]
    again = s.receive(_frame("telnyx_rtc.modify", {"action": "hold", "callID": "c1"}), T0)
    assert not [o for o in again if isinstance(o, Relay)]  # no change, nothing to tell
    told = sends(s.on_call(lambda c: c.relayed("c1", "hold", {"held": False})))
    assert told[0]["params"]["held"] is False and told[0]["params"]["by"] == "remote"


def test_an_ice_restart_waits_for_the_other_party_then_gives_up_in_time() -> None:
    s = session()
    _answered(s)
    params = {"action": "updateMedia", "callID": "c1", "sdp": "v=0 restart"}
    outs = s.receive(_frame("telnyx_rtc.modify", params), T0 + 1)
    assert sends(outs) == []  # answered when the other party renegotiated
    assert [o for o in outs if isinstance(o, Relay)] == [
        Relay("c1", "update_media", {"sdp": "v=0 restart"})
    ]
    busy = s.receive({**_frame("telnyx_rtc.modify", params), "id": "m2"}, T0 + 1)
    assert "already in progress" in sends(busy)[0]["error"]["message"]
    answered = sends(s.on_call(lambda c: c.relayed("c1", "update_media_answer", {"sdp": "v=0 ok"})))
    assert answered[0]["id"] == "telnyx_rtc.modify" and answered[0]["result"]["sdp"] == "v=0 ok"
    s.receive({**_frame("telnyx_rtc.modify", params), "id": "m3"}, T0 + 2)
    assert s.next_deadline() == T0 + 2 + UPDATE_TIMEOUT
    late = sends(s.on_timer(T0 + 2 + UPDATE_TIMEOUT))
    assert late[0]["id"] == "m3" and "could not renegotiate" in late[0]["error"]["message"]


def _new_tab(takeover: bool) -> Session:
    """The socket a reconnecting client opened; its login may say it takes a session over."""
    tab = Session(config(), "198.51.100.9", 2, T0)
    variables = {"voxgate_takeover": True} if takeover else {}
    frame = {"login_token": "t", "reconnection": True, "sessid": "x", "userVariables": variables}
    tab.receive({"jsonrpc": "2.0", "id": "L", "method": "login", "params": frame}, T0 + 2)
    return tab


@pytest.mark.parametrize("takeover", [True, False])
def test_a_tab_taking_a_session_over_is_rung_again_for_the_calls_still_ringing(
    takeover: bool,
) -> None:
    s = session(reattach_window=60)
    call_id, outs = s.incoming_call(Offer("offer", caller_number="alice"), T0)
    first = sends(outs)[0]
    s.lost(T0 + 1, clean=False)
    resumed = sends(s.resume("L", grant(exp=T0 + 1000), T0 + 2, socket=_new_tab(takeover)))
    invites = [f["params"] for f in resumed if f.get("method") == "telnyx_rtc.invite"]
    # the same invite again (callID, SDP, ids) for a tab that holds no calls; a client that
    # reconnected on its own still has the call and is not rung twice
    assert invites == ([first["params"]] if takeover else [])
    answered = s.receive(
        {
            "jsonrpc": "2.0",
            "id": "a",
            "method": "telnyx_rtc.answer",
            "params": {"sdp": "v=0 tab", "dialogParams": {"callID": call_id}},
        },
        T0 + 3,
    )
    assert [o.kind for o in answered if isinstance(o, Relay)] == ["answer"]


def test_a_dropped_socket_without_a_call_ends_the_session_with_nothing_kept() -> None:
    """Nothing to reattach (the SDK keeps only listed calls): the session ends at once, its
    drop audited, instead of holding its memory for the reattach window."""
    s = session(reattach_window=60)
    outs = s.lost(T0 + 1, clean=False)
    assert s.state is State.CLOSED and s.next_deadline() is None
    assert [o.kind for o in outs if isinstance(o, Audit)] == ["dropped"]
    assert not sends(outs)


def test_a_dropped_socket_with_a_call_detaches_and_giving_up_ends_the_call() -> None:
    s = session(reattach_window=60)
    invite(s, "c1")
    outs = s.lost(T0 + 1, clean=False)
    assert s.state is State.DETACHED and s.next_deadline() == T0 + 61
    assert [o.kind for o in outs if isinstance(o, Audit)] == ["detached"]
    ended = s.give_up()  # its credential keeps too many detached sessions here
    assert s.state is State.CLOSED
    assert [o.kind for o in ended if isinstance(o, Audit)] == ["detach_expired"]
    byes = [o for o in ended if isinstance(o, Relay) and o.kind == "bye"]
    assert [b.params["cause"] for b in byes] == ["RECOVERY_ON_TIMER_EXPIRE"]
    assert s.give_up() == []  # once


def test_a_session_without_a_call_taken_over_by_a_newer_socket_carries_on() -> None:
    """The old socket still looked open (a frozen path, another tab): the newer socket takes
    the session over with its sessid, call or not."""
    s = session(reattach_window=60)
    s.lost(T0 + 1, clean=False, takeover=True)
    assert s.state is State.DETACHED
    resumed = s.resume("L", grant(exp=T0 + 1000), T0 + 2, socket=_new_tab(False))
    assert sends(resumed)[0]["result"]["sessid"] == s.sessid and s.state is State.READY
