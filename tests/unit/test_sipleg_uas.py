"""The SIP leg as a UAS: a phone calls voxgate through Kamailio. The INVITE, ACKs, INFO,
re-INVITE and BYE of the main scenario are the ones Kamailio 5.6 relayed in a real call
(tests/golden/sip/from-kamailio-*); the rest is scripted with ``Phone``."""

from __future__ import annotations

import pytest

from tests.unit.sipleg_kit import (
    ANSWER,
    HOLD,
    OFFER,
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
    status,
)
from voxgate.sipleg import InvalidCommand, Leg, State, Transport
from voxgate.sipleg.messages import Request, Response
from voxgate.sipleg.outputs import (
    Confirmed,
    Dtmf,
    Ended,
    Failed,
    Offered,
    OfferWanted,
    Renegotiated,
    Send,
)

SIPP_TAG = "31071uas1"  # the tag the captured callee (sipp) gave the dialog


def kamailio(name: str, leg: Leg) -> Request:
    """A captured request from Kamailio, addressed to this leg's tag."""
    message = golden(name, (SIPP_TAG, leg.dialog.local_tag))  # type: ignore[union-attr]
    assert isinstance(message, Request)
    return message


def offered(clock: Clock, phone: Phone, transport: Transport = Transport.UDP) -> Leg:
    leg = new_leg(transport)
    leg.receive(phone.invite(), clock())
    return leg


def up(clock: Clock, phone: Phone) -> Leg:
    leg = offered(clock, phone)
    leg.answer(ANSWER, clock(1))
    leg.receive(phone.ack(leg, phone.seq), clock(0.05))
    assert leg.state is State.CONFIRMED
    return leg


def test_a_real_call_from_kamailio() -> None:
    clock, leg = Clock(), new_leg()
    invite = golden("from-kamailio-01-invite-invite.sip")
    assert isinstance(invite, Request)
    outs = leg.receive(invite, clock())
    trying, offer = outs
    assert isinstance(trying, Send) and (trying.host, trying.port) == ("127.0.0.1", 50053)
    assert isinstance(trying.message, Response) and trying.message.status == 100
    assert trying.message.values("Via") == invite.values("Via")  # both Vias, in order
    assert trying.message.to_tag is None
    assert offer == Offered(
        invite.sdp or "",
        "sip:gencred5Xqd3pDsiDF6r9p2Uu6a2AiwTvDT@voxgate.test",
        "",
        "sip:gencredKBh4LooQYAvgxzY7oUTQlafkxeRl@127.151.146.45:37197;transport=UDP",
        "1-31072@127.22.83.188",
    )
    assert leg.state is State.OFFERED

    ringing = only(leg.ringing(clock(0.1)))
    assert isinstance(ringing, Response) and ringing.status == 180
    assert ringing.to_tag == leg.dialog.local_tag  # type: ignore[union-attr]
    assert ringing.values("Record-Route") == ["<sip:127.0.0.1:50053;lr>"]
    assert ringing.get("Contact") == "<sip:10.0.0.1:5070>"
    assert sent(leg.receive(invite, clock(0.1))) == [ringing]  # INVITE again: 180 again

    ok = only(leg.answer(ANSWER, clock(2)))
    assert isinstance(ok, Response) and ok.status == 200 and ok.sdp == ANSWER
    assert leg.state is State.ANSWERED
    assert said(leg.receive(kamailio("from-kamailio-02-ack-ack.sip", leg), clock(0.1))) == [
        Confirmed()
    ]
    assert leg.state is State.CONFIRMED

    outs = leg.receive(kamailio("from-kamailio-03-info-info.sip", leg), clock(1))
    assert status(outs) == [200] and said(outs) == [Dtmf("5", 160)]

    outs = leg.receive(kamailio("from-kamailio-04-invite-invite.sip", leg), clock(1))
    assert status(outs) == [100]
    (wanted,) = said(outs)
    assert isinstance(wanted, OfferWanted) and wanted.sdp.startswith("v=0")
    assert leg.state is State.REOFFERED
    held = ANSWER + "a=recvonly\r\n"
    (ok2,) = sent(leg.answer(held, clock(0.2)))
    assert ok2.status == 200 and ok2.cseq == (4, "INVITE") and ok2.sdp == held  # type: ignore[union-attr]
    assert leg.receive(kamailio("from-kamailio-05-ack-ack.sip", leg), clock(0.1)) == []
    assert leg.state is State.CONFIRMED

    outs = leg.receive(kamailio("from-kamailio-06-bye-bye.sip", leg), clock(3))
    assert status(outs) == [200] and said(outs) == [Ended("NORMAL_CLEARING", by_remote=True)]
    assert leg.state is State.ENDED
    run_timers(leg, clock(100))
    assert leg.finished


def test_the_200_is_retransmitted_until_the_ack() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    start = clock(1)
    ok = only(leg.answer(ANSWER, start))
    fired = run_timers(leg, start + 5)
    assert [round(when - start, 3) for when, outs in fired if sent(outs) == [ok]] == [0.5, 1.5, 3.5]
    outs = leg.receive(phone.ack(leg, phone.seq), start + 5)
    assert said(outs) == [Confirmed()]
    assert leg.next_deadline() is None or leg.next_deadline() > start + 30  # type: ignore[operator]
    assert all(ok not in sent(outs) for _, outs in run_timers(leg, start + 100))


def test_no_ack_within_64_t1_ends_the_call_with_a_bye() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    start = clock(1)
    ok = only(leg.answer(ANSWER, start))
    fired = run_timers(leg, start + 100)
    resent = [round(when - start, 3) for when, outs in fired if sent(outs) == [ok]]
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]  # T2 caps at 4 s
    (when, outs) = next((w, o) for w, o in fired if said(o))
    assert round(when - start, 3) == 32.0  # 64*T1 (RFC 3261 13.3.1.4)
    assert said(outs) == [Ended("RECOVERY_ON_TIMER_EXPIRE", by_remote=False)]
    bye = request(outs, "BYE")
    assert bye.uri == "sip:bob@10.0.0.9:5080;transport=udp"  # the caller's Contact
    assert bye.values("Route") == [PROXY_RR]
    assert bye.to_tag == "ph0ne" and bye.from_tag == leg.dialog.local_tag  # type: ignore[union-attr]
    assert leg.state is State.ENDED  # nobody answered that BYE either (Timer F)


def test_over_tcp_the_200_is_not_retransmitted_but_the_ack_is_still_awaited() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone, Transport.TCP)
    start = clock(1)
    leg.answer(ANSWER, start)
    fired = run_timers(leg, start + 100)
    assert [round(when - start, 3) for when, _ in fired][:1] == [32.0]
    assert said(fired[0][1]) == [Ended("RECOVERY_ON_TIMER_EXPIRE", False)]


def test_hanging_up_before_the_ack_waits_for_it() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    leg.answer(ANSWER, clock(1))
    outs = leg.bye(clock(0.1))
    assert sent(outs) == [] and said(outs) == [Ended("NORMAL_CLEARING", False)]  # RFC 3261 15
    outs = leg.receive(phone.ack(leg, phone.seq), clock(0.2))
    assert said(outs) == [] and request(outs, "BYE").cseq == (2, "BYE")


def test_a_cancel_answered_elsewhere_is_lose_race() -> None:
    """Kamailio forked a phone's call to our agent and to the callee's phones: one of them
    answered, and the CANCEL says so (RFC 3326); the WebRTC session shows LOSE_RACE."""
    for reason, cause in [
        ('SIP;cause=200;text="Call completed elsewhere"', "LOSE_RACE"),
        ("Q.850;cause=16, SIP ; cause = 200", "LOSE_RACE"),
        ("SIP;cause=487", "ORIGINATOR_CANCEL"),
        ("Q.850;cause=31", "ORIGINATOR_CANCEL"),
        ("garbage;;=;", "ORIGINATOR_CANCEL"),
    ]:
        clock, phone = Clock(), Phone()
        leg = offered(clock, phone)
        leg.ringing(clock(0.1))
        outs = leg.receive(phone.cancel(reason), clock(1))
        assert said(outs) == [Failed(487, "Request Terminated", cause, by_remote=True)], reason


def test_cancel_while_ringing() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    leg.ringing(clock(0.1))
    start = clock(2)
    outs = leg.receive(phone.cancel(), start)
    assert status(outs) == [200, 487]
    assert said(outs) == [Failed(487, "Request Terminated", "ORIGINATOR_CANCEL", by_remote=True)]
    assert leg.state is State.ENDED
    fired = run_timers(leg, start + 1.6)  # no ACK yet: Timer G resends the 487
    assert [(round(when - start, 3), status(outs)) for when, outs in fired] == [
        (0.5, [487]),
        (1.5, [487]),
    ]
    assert leg.receive(phone.ack_failure(leg), start + 1.7) == []  # absorbed by its transaction
    assert all(not sent(outs) for _, outs in run_timers(leg, start + 100))
    assert leg.finished


def test_a_non_2xx_never_acked_gives_up_at_timer_h() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    start = clock(1)
    leg.reject(603, "Decline", start)
    fired = run_timers(leg, start + 100)
    assert [round(when - start, 3) for when, outs in fired if status(outs) == [603]] == [
        0.5,
        1.5,
        3.5,
        7.5,
        11.5,
        15.5,
        19.5,
        23.5,
        27.5,
        31.5,
    ]
    assert all(not said(outs) for _, outs in fired)  # Timer H: the leg already said Failed
    assert leg.finished


def test_reject_with_a_status() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    outs = leg.reject(486, "Busy Here", clock(1))
    assert status(outs) == [486]
    assert said(outs) == [Failed(486, "Busy Here", "USER_BUSY", by_remote=False)]
    with pytest.raises(ValueError):
        leg.reject(200, "OK", clock())
    with pytest.raises(InvalidCommand):
        leg.answer(ANSWER, clock())
    assert leg.bye(clock()) == [] and leg.cancel(clock()) == []


def test_a_cancel_after_the_answer_does_nothing_but_200() -> None:
    clock, phone = Clock(), Phone()
    leg = up(clock, phone)
    outs = leg.receive(phone.cancel(), clock(1))
    assert status(outs) == [200] and said(outs) == []
    assert leg.state is State.CONFIRMED
    unknown = Phone()
    unknown.invite(call_id="other")
    assert status(leg.receive(unknown.cancel(), clock(1))) == [481]


def test_a_bye_on_the_early_dialog_ends_the_call_like_a_cancel() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    leg.ringing(clock(0.1))
    outs = leg.receive(phone.in_dialog(leg, "BYE"), clock(1))
    assert status(outs) == [200, 487]
    assert said(outs) == [Failed(487, "Request Terminated", "ORIGINATOR_CANCEL", True)]


def test_a_reinvite_while_ours_is_out_gets_491_and_one_while_theirs_waits_500() -> None:
    clock, phone = Clock(), Phone()
    leg = up(clock, phone)
    leg.reinvite(HOLD, clock(1))
    outs = leg.receive(phone.in_dialog(leg, "INVITE", HOLD), clock(0.01))
    assert status(outs) == [491] and said(outs) == []
    assert leg.state is State.REINVITING

    leg2 = up(clock, Phone())
    phone2 = Phone()
    phone2.seq = 100
    leg2.receive(phone2.in_dialog(leg2, "INVITE", HOLD), clock(1))
    outs = leg2.receive(phone2.in_dialog(leg2, "INVITE", OFFER), clock(0.1))
    (refused,) = sent(outs)
    assert isinstance(refused, Response) and refused.status == 500
    assert (
        refused.get("Retry-After") is not None and 0 <= int(refused.get("Retry-After") or "") <= 10
    )


def test_an_offerless_reinvite_is_answered_with_our_offer_and_the_ack_answers() -> None:
    clock, phone = Clock(), Phone()
    leg = up(clock, phone)
    outs = leg.receive(phone.in_dialog(leg, "INVITE"), clock(1))
    assert said(outs) == [OfferWanted("")]
    leg.answer(OFFER, clock(0.1))
    outs = leg.receive(phone.ack(leg, phone.seq, ANSWER), clock(0.1))
    assert said(outs) == [Renegotiated(ANSWER)]


def test_a_refused_reinvite_keeps_the_call() -> None:
    clock, phone = Clock(), Phone()
    leg = up(clock, phone)
    leg.receive(phone.in_dialog(leg, "INVITE", HOLD), clock(1))
    assert status(leg.reject(488, "Not Acceptable Here", clock(0.1))) == [488]
    assert leg.state is State.CONFIRMED


def test_what_is_not_ours_is_refused() -> None:
    clock, phone = Clock(), Phone()
    leg = up(clock, phone)
    old = phone.in_dialog(leg, "INFO", seq=phone.seq - 1)
    assert status(leg.receive(old, clock(1))) == [500]  # CSeq out of order (RFC 3261 12.2.2)
    assert status(leg.receive(phone.in_dialog(leg, "OPTIONS"), clock(1))) == [200]
    refer = leg.receive(phone.in_dialog(leg, "REFER"), clock(1))
    assert status(refer) == [405] and sent(refer)[0].get("Allow")
    weird = phone.in_dialog(leg, "INFO", "hello", "text/plain")
    assert status(leg.receive(weird, clock(1))) == [415]
    again = Phone().invite()  # the same call again, a new transaction: a loop
    assert status(leg.receive(again, clock(1))) == [482]


def test_an_invite_requiring_an_extension_we_lack_gets_420() -> None:
    clock, invite = Clock(), Phone().invite()
    headers = (*invite.headers, ("Require", "100rel"))
    invite = Request(invite.method, invite.uri, headers, invite.body)
    leg = new_leg()
    outs = leg.receive(invite, clock())
    (bad,) = sent(outs)
    assert isinstance(bad, Response) and bad.status == 420 and bad.get("Unsupported") == "100rel"
    assert said(outs) == [Failed(420, "Bad Extension", "INTERWORKING", False)]


def test_progress_sends_183_with_sdp() -> None:
    clock, phone = Clock(), Phone()
    leg = offered(clock, phone)
    (early,) = sent(leg.progress(ANSWER, clock(0.1)))
    assert isinstance(early, Response) and early.status == 183 and early.sdp == ANSWER
    assert leg.state is State.EARLY
