"""The SIP leg as a UAC: voxgate calls a phone through Kamailio. Scripted exchanges with a fake
clock; the phone's side is ``Phone`` (or real baresip responses from tests/golden/sip)."""

from __future__ import annotations

import pytest

from tests.unit.sipleg_kit import (
    ANSWER,
    HOLD,
    OFFER,
    PHONE_CONTACT,
    PROXY_RR,
    Clock,
    Phone,
    golden,
    new_leg,
    only,
    request,
    run_timers,
    said,
    sent,
)
from voxgate.sipleg import InvalidCommand, Leg, State, Transport
from voxgate.sipleg.messages import Request
from voxgate.sipleg.outputs import (
    Answered,
    Dtmf,
    EarlyMedia,
    Ended,
    Failed,
    Renegotiated,
    RenegotiationFailed,
    Ringing,
    Send,
)

BOB = "sip:bob@voxgate.test"
ALICE = "sip:alice@voxgate.test"


def dial(leg: Leg, now: float) -> Request:
    invite = only(leg.invite(OFFER, now, target=BOB, caller=ALICE, caller_name="Alice"))
    assert isinstance(invite, Request)
    return invite


def answered(clock: Clock, phone: Phone, transport: Transport = Transport.UDP) -> Leg:
    leg = new_leg(transport)
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 200, "OK", ANSWER), clock(0.1))
    assert leg.state is State.CONFIRMED
    return leg


def test_the_invite_goes_to_the_proxy_with_everything_a_dialog_needs() -> None:
    leg = new_leg()
    outs = leg.invite(OFFER, 5.0, target=BOB, caller=ALICE, caller_name='Al "the" ice\r\nX: y')
    (send,) = outs
    assert isinstance(send, Send) and (send.host, send.port) == ("10.0.0.2", 5060)
    invite = send.message
    assert isinstance(invite, Request)
    assert invite.method == "INVITE" and invite.uri == BOB
    assert invite.cseq == (1, "INVITE")
    assert invite.branch.startswith("z9hG4bK")
    assert invite.get("From") == f'"Al \\"the\\" iceX: y" <{ALICE}>;tag={leg.dialog.local_tag}'  # type: ignore[union-attr]
    assert invite.get("To") == f"<{BOB}>" and invite.to_tag is None
    assert invite.get("Contact") == "<sip:10.0.0.1:5070>"
    assert invite.get("Via") == f"SIP/2.0/UDP 10.0.0.1:5070;branch={invite.branch};rport"
    assert invite.sdp == OFFER and invite.call_id == leg.call_id
    assert new_leg().invite(OFFER, 5.0, target=BOB, caller=ALICE) == new_leg().invite(
        OFFER, 5.0, target=BOB, caller=ALICE
    )  # seeded ids: the same messages every run


def test_happy_path_100_180_200_ack_and_our_bye() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    assert leg.receive(phone.reply(invite, 100, "Trying", tag=""), clock(0.05)) == []
    assert leg.state is State.PROCEEDING
    assert leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1)) == [Ringing()]
    assert leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1)) == []  # said once
    outs = leg.receive(phone.reply(invite, 200, "OK", ANSWER), clock(2))
    assert said(outs) == [Answered(ANSWER)]
    ack = request(outs, "ACK")
    assert ack.uri == "sip:bob@10.0.0.9:5080;transport=udp"  # the phone's Contact
    assert ack.values("Route") == [PROXY_RR]  # the route set (RFC 3261 12.1.2)
    assert ack.cseq == (1, "ACK") and ack.branch != invite.branch
    assert ack.to_tag == "ph0ne" and ack.from_tag == invite.from_tag
    assert leg.state is State.CONFIRMED

    outs = leg.bye(clock(60))
    assert said(outs) == [Ended("NORMAL_CLEARING", by_remote=False)]
    bye = request(outs, "BYE")
    assert bye.uri == ack.uri and bye.values("Route") == [PROXY_RR]
    assert bye.cseq == (2, "BYE") and bye.to_tag == "ph0ne"
    assert leg.state is State.ENDING
    assert leg.receive(phone.reply(bye, 200, "OK"), clock(0.1)) == []
    assert leg.state is State.ENDED
    assert leg.bye(clock()) == []  # hanging up twice is nothing
    run_timers(leg, clock(100))
    assert leg.finished


def test_happy_path_with_the_phone_hanging_up() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    bye = phone.in_dialog(leg, "BYE")
    outs = leg.receive(bye, clock(30))
    assert said(outs) == [Ended("NORMAL_CLEARING", by_remote=True)]
    (ok,) = sent(outs)
    assert ok.status == 200 and ok.values("Via") == bye.values("Via")  # type: ignore[union-attr]
    assert ok.to_tag == leg.dialog.local_tag  # type: ignore[union-attr]
    assert (outs[0].host, outs[0].port) == ("10.0.0.2", 5060)  # type: ignore[union-attr]
    assert leg.state is State.ENDED
    again = leg.receive(bye, clock(0.5))  # the BYE retransmitted: the same 200, nothing said
    assert sent(again) == [ok] and said(again) == []
    run_timers(leg, clock(100))
    assert leg.finished


def test_183_with_sdp_is_early_media() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    assert leg.receive(phone.reply(invite, 183, "Session Progress", ANSWER), clock(1)) == [
        EarlyMedia(ANSWER)
    ]
    assert leg.receive(phone.reply(invite, 183, "Session Progress", ANSWER), clock(1)) == []
    assert said(leg.receive(phone.reply(invite, 200, "OK", ANSWER), clock(5))) == [Answered(ANSWER)]


def test_486_is_acked_in_its_transaction_and_said_as_user_busy() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1))
    busy = phone.reply(invite, 486, "Busy Here")
    at = clock(3)
    outs = leg.receive(busy, at)
    assert said(outs) == [Failed(486, "Busy Here", "USER_BUSY", by_remote=True)]
    ack = request(outs, "ACK")
    assert ack.branch == invite.branch and ack.uri == invite.uri  # RFC 3261 17.1.1.3
    assert ack.cseq == (1, "ACK") and ack.to_tag == "ph0ne"
    assert leg.state is State.ENDED and not leg.finished
    assert sent(leg.receive(busy, clock(0.5))) == [ack]  # 486 again: ACK again, nothing said
    assert [round(when - at, 6) for when, _ in run_timers(leg, at + 100)] == [32.0]  # Timer D
    assert leg.finished


def test_cancel_while_ringing_then_487() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1))
    outs = leg.cancel(clock(5))
    assert said(outs) == [Failed(487, "Request Terminated", "ORIGINATOR_CANCEL", False)]
    cancel = request(outs, "CANCEL")
    assert cancel.branch == invite.branch and cancel.cseq == (1, "CANCEL")
    assert cancel.uri == invite.uri and cancel.get("To") == invite.get("To")
    assert leg.state is State.CANCELLING
    assert leg.cancel(clock()) == [] and leg.bye(clock()) == []
    assert leg.receive(phone.reply(cancel, 200, "OK"), clock(0.05)) == []
    outs = leg.receive(phone.reply(invite, 487, "Request Terminated"), clock(0.05))
    assert said(outs) == []  # Failed was said at cancel()
    assert request(outs, "ACK").branch == invite.branch
    assert leg.state is State.ENDED
    run_timers(leg, clock(40))
    assert leg.finished


def test_a_fork_that_lost_cancels_saying_the_call_was_answered_elsewhere() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1))
    cancel = request(leg.bye(clock(1), "LOSE_RACE"), "CANCEL")  # RFC 3326: no missed call
    assert cancel.get("Reason") == 'SIP;cause=200;text="Call completed elsewhere"'
    other = new_leg()
    invite = dial(other, clock())
    other.receive(phone.reply(invite, 180, "Ringing"), clock(0.1))
    assert request(other.bye(clock(1), "NORMAL_CLEARING"), "CANCEL").get("Reason") is None


def test_cancel_before_any_provisional_waits_for_one() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    outs = leg.cancel(clock(0.1))
    assert sent(outs) == []  # RFC 3261 9.1: no CANCEL before a provisional
    assert said(outs) == [Failed(487, "Request Terminated", "ORIGINATOR_CANCEL", False)]
    (retransmitted,) = run_timers(leg, clock(0.5))  # the INVITE goes on being retransmitted
    assert sent(retransmitted[1]) == [invite]
    cancel = request(leg.receive(phone.reply(invite, 100, "Trying", tag=""), clock(0.2)), "CANCEL")
    assert cancel.branch == invite.branch
    leg.receive(phone.reply(cancel, 200, "OK"), clock(0.1))
    assert request(leg.receive(phone.reply(invite, 487, ""), clock(0.1)), "ACK")
    assert leg.state is State.ENDED


def test_an_answer_racing_our_cancel_is_acked_and_byed() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1))
    leg.cancel(clock(1))
    outs = leg.receive(phone.reply(invite, 200, "OK", ANSWER), clock(0.01))
    assert said(outs) == []
    ack, bye = request(outs, "ACK"), request(outs, "BYE")
    assert ack.to_tag == bye.to_tag == "ph0ne" and bye.values("Route") == [PROXY_RR]
    assert leg.state is State.ENDING
    leg.receive(phone.reply(bye, 200, "OK"), clock(0.1))
    assert leg.state is State.ENDED


def test_a_cancel_never_answered_gives_the_invite_up_after_64_t1() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 180, "Ringing"), clock(0.1))
    start = clock(1)
    leg.cancel(start)
    run_timers(leg, start + 31.9)
    assert leg.state is State.CANCELLING
    run_timers(leg, start + 32.0)
    assert leg.state is State.ENDED
    late = leg.receive(phone.reply(invite, 200, "OK", ANSWER), start + 40)  # a 2xx after all
    assert {m.method for m in sent(late)} == {"ACK", "BYE"}  # type: ignore[union-attr]


def test_udp_retransmits_the_invite_doubling_then_timer_b_says_no_answer() -> None:
    leg = new_leg()
    start = 1000.0
    invite = dial(leg, start)
    fired = run_timers(leg, start + 40)
    retransmissions = [round(when - start, 3) for when, outs in fired if sent(outs) == [invite]]
    assert retransmissions == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # Timer A: T1, doubling
    when, outs = fired[-1]
    assert when - start == 32.0  # Timer B: 64*T1
    assert said(outs) == [Failed(408, "Request Timeout", "NO_ANSWER", by_remote=False)]
    assert leg.state is State.ENDED and leg.finished


def test_tcp_never_retransmits_but_timer_b_still_fires() -> None:
    leg = new_leg(Transport.TCP)
    invite = dial(leg, 0.0)
    assert invite.get(
        "Via",
    ).startswith("SIP/2.0/TCP ")  # type: ignore[union-attr]
    assert invite.get("Contact") == "<sip:10.0.0.1:5070;transport=tcp>"
    fired = run_timers(leg, 100)
    assert [when for when, _ in fired] == [32.0]
    assert said(fired[0][1]) == [Failed(408, "Request Timeout", "NO_ANSWER", False)]


def test_provisional_stops_retransmissions_and_timer_b() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 100, "Trying", tag=""), clock(0.2))
    assert leg.next_deadline() is None  # it may ring for minutes: the B2BUA's ring timer ends it


def test_a_retransmitted_2xx_is_acked_again() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    ok = phone.reply(invite, 200, "OK", ANSWER)
    ack = request(leg.receive(ok, clock(1)), "ACK")
    for dt in (0.5, 1.0, 2.0):
        assert leg.receive(ok, clock(dt)) == [Send(ack, Transport.UDP, "10.0.0.2", 5060)]
    run_timers(leg, clock(40))  # the INVITE transaction is gone (Timer M) ...
    assert sent(leg.receive(ok, clock(1))) == [ack]  # ... and the dialog still re-ACKs


def test_a_second_phone_answering_a_forked_invite_is_acked_and_byed() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    invite = dial(leg, clock())
    leg.receive(phone.reply(invite, 200, "OK", ANSWER), clock(1))
    other = Phone(tag="desk", contact="<sip:bob@10.0.0.7:5090>")
    outs = leg.receive(other.reply(invite, 200, "OK", ANSWER), clock(0.1))
    assert said(outs) == []
    ack, bye = request(outs, "ACK"), request(outs, "BYE")
    assert ack.to_tag == bye.to_tag == "desk" and bye.uri == "sip:bob@10.0.0.7:5090"
    assert leg.state is State.CONFIRMED and leg.dialog.remote_tag == "ph0ne"  # type: ignore[union-attr]
    assert leg.receive(other.reply(bye, 200, "OK"), clock(0.1)) == []


def test_hold_with_a_reinvite() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    reinvite = request(leg.reinvite(HOLD, clock(10)), "INVITE")
    assert reinvite.cseq == (2, "INVITE") and reinvite.sdp == HOLD
    assert reinvite.uri == "sip:bob@10.0.0.9:5080;transport=udp"
    assert reinvite.values("Route") == [PROXY_RR] and reinvite.to_tag == "ph0ne"
    assert leg.state is State.REINVITING
    with pytest.raises(InvalidCommand):
        leg.reinvite(OFFER, clock())  # one INVITE at a time (RFC 3261 14.1)
    held = ANSWER + "a=recvonly\r\n"
    outs = leg.receive(phone.reply(reinvite, 200, "OK", held), clock(0.1))
    assert said(outs) == [Renegotiated(held)]
    assert request(outs, "ACK").cseq == (2, "ACK")
    assert leg.state is State.CONFIRMED


def test_a_refused_reinvite_leaves_the_call_as_it_was() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    reinvite = request(leg.reinvite(HOLD, clock(10)), "INVITE")
    outs = leg.receive(phone.reply(reinvite, 488, "Not Acceptable Here"), clock(0.1))
    assert said(outs) == [RenegotiationFailed(488, "Not Acceptable Here")]
    assert request(outs, "ACK").branch == reinvite.branch
    assert leg.state is State.CONFIRMED


def test_a_491_is_retried_after_a_random_wait() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    reinvite = request(leg.reinvite(HOLD, clock(10)), "INVITE")
    start = clock(0.1)
    assert said(leg.receive(phone.reply(reinvite, 491, "Request Pending"), start)) == []
    assert leg.state is State.CONFIRMED
    due = leg.next_deadline()
    assert due is not None and 2.1 <= due - start <= 4.0  # we own the Call-ID (RFC 3261 14.1)
    again = request(leg.on_timer(due), "INVITE")
    assert again.cseq == (3, "INVITE") and again.sdp == HOLD
    assert leg.state is State.REINVITING


@pytest.mark.parametrize("answer", [None, 408, 481])
def test_a_reinvite_that_times_out_or_finds_no_dialog_ends_the_call(answer: int | None) -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    reinvite = request(leg.reinvite(HOLD, clock(10)), "INVITE")
    if answer is None:
        outs = [o for _, fired in run_timers(leg, clock(32)) for o in fired]
    else:
        outs = leg.receive(phone.reply(reinvite, answer, "Gone"), clock(1))
    assert said(outs) == [Ended("RECOVERY_ON_TIMER_EXPIRE", by_remote=False)]
    assert request(outs, "BYE").cseq == (3, "BYE")
    assert leg.state is State.ENDING


def test_dtmf_both_ways_with_info() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    info = request(leg.info_dtmf("#", 250, clock(5)), "INFO")
    assert info.content_type == "application/dtmf-relay"
    assert info.body == b"Signal=#\r\nDuration=250\r\n"
    assert leg.receive(phone.reply(info, 200, "OK"), clock(0.1)) == []
    with pytest.raises(ValueError):
        leg.info_dtmf("x", 100, clock())
    theirs = phone.in_dialog(leg, "INFO", "Signal=11\r\nDuration=100\r\n", "application/dtmf-relay")
    outs = leg.receive(theirs, clock(1))
    assert [m.status for m in sent(outs)] == [200]  # type: ignore[union-attr]
    assert said(outs) == [Dtmf("#", 100)]


def test_an_info_that_times_out_ends_the_call() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    info = request(leg.info_dtmf("1", 160, clock(5)), "INFO")
    fired = run_timers(leg, clock(40))
    retransmitted = [when for when, outs in fired if info in sent(outs)]
    assert len(retransmitted) == 10  # Timer E: 0.5, 1, 2, then 4 s (T2) until Timer F
    outs = [o for _, f in fired for o in f]
    assert Ended("RECOVERY_ON_TIMER_EXPIRE", by_remote=False) in said(outs)


def test_a_bye_that_is_never_answered_ends_with_timer_f() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    start = clock(10)
    bye = request(leg.bye(start), "BYE")
    fired = run_timers(leg, start + 100)
    times = [round(when - start, 3) for when, outs in fired if sent(outs) == [bye]]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert leg.state is State.ENDED and leg.finished


def test_commands_the_state_does_not_allow_are_refused() -> None:
    clock, phone, leg = Clock(), Phone(), new_leg()
    for command in (
        lambda: leg.reinvite(HOLD, clock()),
        lambda: leg.answer(ANSWER, clock()),
        lambda: leg.ringing(clock()),
        lambda: leg.cancel(clock()),
        lambda: leg.info_dtmf("1", 100, clock()),
    ):
        with pytest.raises(InvalidCommand):
            command()
    invite = dial(leg, clock())
    with pytest.raises(InvalidCommand):
        dial(leg, clock())
    with pytest.raises(InvalidCommand):
        leg.reject(486, "Busy Here", clock())
    leg.receive(phone.reply(invite, 200, "OK", ANSWER), clock(1))
    with pytest.raises(InvalidCommand):
        leg.answer(ANSWER, clock())


def test_a_request_for_another_dialog_gets_481() -> None:
    clock, phone = Clock(), Phone()
    leg = answered(clock, phone)
    stranger = Phone(tag="zz").in_dialog(leg, "BYE")
    wrong = Request(
        stranger.method,
        stranger.uri,
        tuple(
            (k, v.replace(leg.dialog.local_tag, "nottag")) if k == "To" else (k, v)  # type: ignore[union-attr]
            for k, v in stranger.headers
        ),
    )
    outs = leg.receive(wrong, clock(1))
    assert [m.status for m in sent(outs)] == [481] and said(outs) == []  # type: ignore[union-attr]
    assert leg.state is State.CONFIRMED


def test_a_whole_call_with_baresips_real_answers_through_kamailio() -> None:
    """tests/golden/sip/to-baresip-*: what Kamailio 5.6 relayed from baresip 1.0 to a caller.
    The capture's ids (sipp's) are swapped for the leg's, everything else is as captured."""
    clock, leg = Clock(), new_leg()
    invite = dial(leg, clock())
    ids = [
        ("1-31653@127.59.208.169", leg.call_id),
        (";tag=31653-1", f";tag={invite.from_tag}"),
        ("z9hG4bK-31653-1-4", invite.branch),
        ("2 INVITE", "1 INVITE"),
    ]
    assert leg.receive(golden("to-baresip-02-100-invite.sip", *ids), clock(0.01)) == []
    assert leg.state is State.PROCEEDING
    assert leg.receive(golden("to-baresip-03-180-invite.sip", *ids), clock(0.01)) == [Ringing()]
    outs = leg.receive(golden("to-baresip-04-200-invite.sip", *ids), clock(1))
    (answer,) = said(outs)
    assert isinstance(answer, Answered) and "a=sendrecv" in answer.sdp
    ack = request(outs, "ACK")
    assert ack.uri == "sip:gencredloHqFiXfwFbLya0xcj6QYh3yuy7s-0x55ee52e7c0d0@127.0.0.1:53561"
    assert ack.values("Route") == ["<sip:127.0.0.1:58705;lr>"]
    hold = request(leg.reinvite(HOLD, clock(5)), "INVITE")
    ids[2:] = [("z9hG4bK-31653-1-13", hold.branch), ("4 INVITE", "2 INVITE")]
    outs = leg.receive(golden("to-baresip-07-200-invite.sip", *ids), clock(0.1))
    assert said(outs) == [Renegotiated(outs[-1].sdp)]  # type: ignore[union-attr]
    assert "a=recvonly" in outs[-1].sdp  # type: ignore[union-attr]
    bye = request(leg.bye(clock(5)), "BYE")
    ids[2:] = [("z9hG4bK-31653-1-18", bye.branch), ("5 BYE", "3 BYE")]
    assert leg.receive(golden("to-baresip-08-200-bye.sip", *ids), clock(0.1)) == []
    assert leg.state is State.ENDED
    assert PHONE_CONTACT  # (the scripted phone is not used here)
