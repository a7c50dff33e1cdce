"""The SIP leg's table, pair by pair, through the leg's public inputs; and random walks through
everything a leg can be told, checking what must always hold."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.sipleg_kit import ANSWER, HOLD, OFFER, Clock, Phone, new_leg, run_timers, sent
from voxgate.sipleg import InvalidCommand, Leg, State
from voxgate.sipleg.messages import Request, Response
from voxgate.sipleg.outputs import Ended, Failed, Output
from voxgate.sipleg.states import COMMANDS, TABLE, Input, Refusal

S, E = State, Input
BOB, ALICE = "sip:bob@voxgate.test", "sip:alice@voxgate.test"


def _last_request(outs: list[Output]) -> Request:
    return [m for m in sent(outs) if isinstance(m, Request)][-1]


def in_state(state: State) -> tuple[Leg, Phone, Clock]:
    """A leg put in ``state`` the way the world would: UAC for the caller's states, UAS for
    the callee's, a UAC call for the states of an answered call."""
    clock, phone, leg = Clock(), Phone(), new_leg()
    if state is S.IDLE:
        return leg, phone, clock
    if state in (S.OFFERED, S.EARLY, S.ANSWERED):
        leg.receive(phone.invite(), clock())
        if state is S.EARLY:
            leg.ringing(clock(0.1))
        if state is S.ANSWERED:
            leg.answer(ANSWER, clock(0.1))
        return leg, phone, clock
    invite = _last_request(leg.invite(OFFER, clock(), target=BOB, caller=ALICE))
    if state is S.CALLING:
        return leg, phone, clock
    leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1))
    if state in (S.PROCEEDING, S.CANCELLING):
        if state is S.CANCELLING:
            leg.cancel(clock(0.1))
        return leg, phone, clock
    leg.receive(phone.reply(invite, 200, "OK", ANSWER), clock(0.1))
    if state is S.REINVITING:
        leg.reinvite(HOLD, clock(1))
    elif state is S.REOFFERED:
        leg.receive(phone.in_dialog(leg, "INVITE", HOLD), clock(1))
    elif state is S.ENDING:
        leg.bye(clock(1))
    elif state is S.ENDED:
        leg.receive(phone.in_dialog(leg, "BYE"), clock(1))
    return leg, phone, clock


@pytest.mark.parametrize("state", list(State))
def test_every_state_can_be_reached(state: State) -> None:
    assert in_state(state)[0].state is state


def test_the_table_answers_every_pair() -> None:
    assert len(TABLE) == len(State) * len(Input)
    for (state, event), outcome in TABLE.items():
        assert isinstance(outcome, State | Refusal), (state, event)
        if event in COMMANDS and outcome is Refusal.NO_DIALOG:
            pytest.fail(f"a command cannot be answered 481: {state} {event}")


COMMAND_CALLS: dict[Input, Callable[[Leg, float], list[Output]]] = {
    E.DIAL: lambda leg, now: leg.invite(OFFER, now, target=BOB, caller=ALICE),
    E.CANCEL: lambda leg, now: leg.cancel(now),
    E.BYE: lambda leg, now: leg.bye(now),
    E.REINVITE: lambda leg, now: leg.reinvite(HOLD, now),
    E.SEND_INFO: lambda leg, now: leg.info_dtmf("1", 100, now),
    E.RING: lambda leg, now: leg.ringing(now),
    E.ANSWER: lambda leg, now: leg.answer(ANSWER, now),
    E.REJECT: lambda leg, now: leg.reject(486, "Busy Here", now),
}


@pytest.mark.parametrize("event", list(COMMAND_CALLS), ids=lambda e: e.value)
@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_every_command_in_every_state_does_what_the_table_says(state: State, event: Input) -> None:
    leg, _, clock = in_state(state)
    outcome = TABLE[(state, event)]
    if outcome is Refusal.INVALID:
        with pytest.raises(InvalidCommand):
            COMMAND_CALLS[event](leg, clock(1))
        assert leg.state is state
        return
    outs = COMMAND_CALLS[event](leg, clock(1))
    if outcome is Refusal.IGNORE:
        assert outs == [] and leg.state is state
    else:
        assert leg.state is outcome


REQUESTS = {E.REOFFER: "INVITE", E.HANGUP: "BYE", E.INFO: "INFO", E.OTHER_REQUEST: "OPTIONS"}
_ANSWERS = {Refusal.NO_DIALOG: 481, Refusal.PENDING: 491, Refusal.RETRY_LATER: 500}
_DIALOG_STATES = [S.EARLY, S.ANSWERED, S.CONFIRMED, S.REINVITING, S.REOFFERED, S.ENDING]


@pytest.mark.parametrize("event", list(REQUESTS), ids=lambda e: e.value)
@pytest.mark.parametrize("state", _DIALOG_STATES, ids=lambda s: s.value)
def test_every_request_in_the_call_is_answered_as_the_table_says(
    state: State, event: Input
) -> None:
    leg, phone, clock = in_state(state)
    outcome = TABLE[(state, event)]
    method = REQUESTS[event]
    outs = leg.receive(phone.in_dialog(leg, method, HOLD if method == "INVITE" else ""), clock(1))
    codes = [m.status for m in sent(outs) if isinstance(m, Response)]
    if isinstance(outcome, Refusal):
        assert codes == [_ANSWERS[outcome]] and leg.state is state
    else:
        assert leg.state is outcome and codes and codes[0] in (100, 200)


# -- random walks ------------------------------------------------------------------------------
_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("command"), st.sampled_from(sorted(COMMAND_CALLS, key=str))),
        st.tuples(st.just("reply"), st.sampled_from([100, 180, 183, 200, 486, 487, 491, 481])),
        st.tuples(st.just("request"), st.sampled_from(["BYE", "INFO", "INVITE", "OPTIONS", "ACK"])),
        st.tuples(st.just("wait"), st.sampled_from([0.1, 0.5, 4.0, 33.0])),
    ),
    max_size=14,
)


@settings(max_examples=400, deadline=None)
@given(st.booleans(), _STEPS)
def test_random_walks_keep_the_promises(caller: bool, steps: list[tuple[str, object]]) -> None:
    """Whatever happens: only InvalidCommand is raised, every message written parses back,
    every 2xx to an INVITE is ACKed, at most one terminal output is said, and a leg that was
    hung up is finished once its timers have run."""
    clock, phone, leg = Clock(), Phone(), new_leg()
    terminal: list[Output] = []
    last: Request | None = None
    if caller:
        last = _last_request(leg.invite(OFFER, clock(), target=BOB, caller=ALICE))
    else:
        leg.receive(phone.invite(), clock())

    def took(outs: list[Output]) -> None:
        nonlocal last
        terminal.extend(o for o in outs if isinstance(o, Failed | Ended))
        requests = [m for m in sent(outs) if isinstance(m, Request) and m.method != "ACK"]
        if requests:
            last = requests[-1]

    for kind, what in steps:
        if kind == "command":
            with contextlib.suppress(InvalidCommand):
                took(COMMAND_CALLS[what](leg, clock(0.01)))  # type: ignore[index]
        elif kind == "reply" and last is not None:
            reply = phone.reply(last, int(what), "x", ANSWER if what in (183, 200) else "")  # type: ignore[call-overload]
            outs = leg.receive(reply, clock(0.01))
            if reply.status // 100 == 2 and last.method == "INVITE":
                assert any(isinstance(m, Request) and m.method == "ACK" for m in sent(outs)), (
                    caller,
                    steps,
                    leg.state,
                )
            took(outs)
        elif kind == "request" and leg.dialog is not None:
            seq = phone.seq if what == "ACK" else None
            took(leg.receive(phone.in_dialog(leg, str(what), HOLD, seq=seq), clock(0.01)))
        elif kind == "wait":
            for _, outs in run_timers(leg, clock(float(what))):  # type: ignore[arg-type]
                took(outs)
        assert len(terminal) <= 1
    for hang_up in (leg.bye, leg.cancel):
        with contextlib.suppress(InvalidCommand):
            took(hang_up(clock(1)))
    if leg.state in (S.OFFERED, S.EARLY, S.REOFFERED):
        took(leg.reject(486, "Busy Here", clock(1)))
    for _, outs in run_timers(leg, clock(300)):
        took(outs)
    assert len(terminal) <= 1
    if leg.state is not S.IDLE:
        assert leg.finished or leg.state is S.CONFIRMED, leg.state


def test_hundreds_of_whole_calls_back_to_back_each_end_cleanly() -> None:
    """A whole UAC call (INVITE, 100, 180, 200, ACK, BYE, 200) through the core, from bytes
    parsed to bytes written, the way the adapter would drive it, 300 times over with fresh
    branch and tag seeds: every one ends, none leaves its leg half-open."""
    from voxgate.sipleg.messages import parse

    calls = 300
    for n in range(calls):
        clock, phone, leg = Clock(), Phone(), new_leg(seed=n)
        out = leg.invite(OFFER, clock(), target=BOB, caller=ALICE)
        invite = parse(bytes(_last_request(out)))
        assert isinstance(invite, Request)
        for code in (100, 180, 200):
            leg.receive(
                parse(bytes(phone.reply(invite, code, "x", ANSWER if code == 200 else ""))),
                clock(0.1),
            )
        bye = _last_request(leg.bye(clock(10)))
        leg.receive(parse(bytes(phone.reply(bye, 200, "OK"))), clock(0.1))
        assert leg.state is S.ENDED
