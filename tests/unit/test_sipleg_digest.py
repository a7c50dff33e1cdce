"""Answering a carrier's digest challenge: held against httpx's HTTP digest (the same
RFC 2617/7616 arithmetic) for the same inputs, and driven through the leg: a 407 to our
INVITE brings the INVITE again with the answer, once."""

from __future__ import annotations

import re

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.sipleg_kit import OFFER, Clock, Phone, new_leg, only, said, sent
from voxgate.sipleg import Leg, State
from voxgate.sipleg.digest import Challenge, authorization
from voxgate.sipleg.messages import Request, Response
from voxgate.sipleg.outputs import Answered, Failed

TRUNK = "sip:+15551234567@carrier.test:5060"
ALICE = "sip:+15550001111@voxgate.test"
TEXT = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\'),
    min_size=1,
    max_size=20,
)


def _params(header: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', header)}


@settings(max_examples=200, deadline=None)
@given(
    user=TEXT, password=TEXT, realm=TEXT, nonce=TEXT,
    cnonce=st.text("0123456789abcdef", min_size=1),
    algorithm=st.sampled_from(["MD5", "MD5-SESS", "SHA-256", "SHA-256-SESS"]),
    qop=st.booleans(), opaque=st.one_of(st.none(), TEXT),
)  # fmt: skip
def test_our_answer_is_httpx_answer_for_the_same_challenge(
    user: str, password: str, realm: str, nonce: str, cnonce: str, algorithm: str, qop: bool,
    opaque: str | None,
) -> None:  # fmt: skip
    header = f'Digest realm="{realm}", nonce="{nonce}", algorithm={algorithm}'
    header += ', qop="auth"' if qop else ""
    header += f', opaque="{opaque}"' if opaque is not None else ""
    auth = httpx.DigestAuth(user, password)
    auth._get_client_nonce = lambda nonce_count, nonce: cnonce.encode()  # type: ignore[method-assign]
    request = httpx.Request("INVITE", "http://carrier.test/dir/index")
    response = httpx.Response(401, headers={"WWW-Authenticate": header}, request=request)
    theirs = auth._build_auth_header(request, auth._parse_challenge(request, response, header))
    challenge = Challenge.parse(header)
    assert challenge is not None
    ours = authorization(challenge, "INVITE", "/dir/index", user, password, cnonce)
    assert _params(ours)["response"] == _params(theirs)["response"]
    assert {k: v for k, v in _params(ours).items() if k != "algorithm"} == {
        k: v for k, v in _params(theirs).items() if k != "algorithm"
    }


@pytest.mark.parametrize(
    "header",
    ['Basic realm="x"', 'Digest realm="x"', 'Digest realm="x", nonce="n", algorithm=SHA-1',
     'Digest realm="x", nonce="n", qop="auth-int"'],
)  # fmt: skip
def test_challenges_we_cannot_answer_are_refusals(header: str) -> None:
    assert Challenge.parse(header) is None


def _challenge(phone: Phone, invite: Request, status: int, header: str) -> Response:
    resp = phone.reply(invite, status, "Proxy Authentication Required")
    name = "Proxy-Authenticate" if status == 407 else "WWW-Authenticate"
    return Response(resp.status, resp.reason, (*resp.headers, (name, header)), resp.body)


def _dial(
    auth: tuple[str, str] | None = ("trunkuser", "s3cret"),
) -> tuple[Clock, Phone, Leg, Request]:
    clock, phone, leg = Clock(), Phone(), new_leg()
    secret = (("X-Voxgate-Leg", "hook"),)
    invite = only(leg.invite(OFFER, clock(), target=TRUNK, caller=ALICE, headers=secret, auth=auth))
    assert isinstance(invite, Request)
    return clock, phone, leg, invite


@pytest.mark.parametrize("status", [407, 401])
def test_a_challenge_brings_the_invite_again_with_the_answer_and_the_call_goes_on(
    status: int,
) -> None:
    clock, phone, leg, invite = _dial()
    header = 'Digest realm="carrier.test", nonce="abc123", qop="auth", algorithm=MD5'
    outs = leg.receive(_challenge(phone, invite, status, header), clock(0.1))
    ack, again = sent(outs)
    assert isinstance(ack, Request) and ack.method == "ACK" and ack.branch == invite.branch
    assert isinstance(again, Request) and again.method == "INVITE" and said(outs) == []
    assert again.cseq == (2, "INVITE") and again.branch != invite.branch
    assert again.call_id == invite.call_id and again.get("From") == invite.get("From")
    assert again.get("X-Voxgate-Leg") == "hook" and again.sdp == OFFER and again.uri == TRUNK
    name = "Proxy-Authorization" if status == 407 else "Authorization"
    answer = _params(again.get(name) or "")
    assert answer["username"] == "trunkuser" and answer["uri"] == TRUNK
    assert answer["nonce"] == "abc123" and answer["nc"] == "00000001"
    parsed = Challenge.parse(header)
    assert parsed is not None
    expected = authorization(parsed, "INVITE", TRUNK, "trunkuser", "s3cret", answer["cnonce"])
    assert _params(expected)["response"] == answer["response"]
    assert "s3cret" not in bytes(again).decode()
    outs = leg.receive(phone.reply(again, 200, "OK", OFFER), clock(0.2))
    assert isinstance(said(outs)[0], Answered) and leg.state is State.CONFIRMED


def test_a_second_challenge_for_the_same_credentials_fails_the_call() -> None:
    clock, phone, leg, invite = _dial()
    header = 'Digest realm="carrier.test", nonce="abc123"'
    again = sent(leg.receive(_challenge(phone, invite, 407, header), clock(0.1)))[1]
    assert isinstance(again, Request)
    outs = leg.receive(_challenge(phone, again, 407, header), clock(0.2))
    (failed,) = said(outs)
    assert isinstance(failed, Failed) and failed.status == 407


def test_a_stale_nonce_is_answered_again_and_no_credentials_means_refused() -> None:
    clock, phone, leg, invite = _dial()
    again = sent(
        leg.receive(_challenge(phone, invite, 407, 'Digest realm="c", nonce="n1"'), clock(0.1))
    )[1]
    assert isinstance(again, Request)
    outs = leg.receive(
        _challenge(phone, again, 407, 'Digest realm="c", nonce="n2", stale=true'), clock(0.2)
    )
    third = sent(outs)[1]
    assert (
        isinstance(third, Request)
        and third.cseq == (3, "INVITE")
        and 'nonce="n2"' in (third.get("Proxy-Authorization") or "")
    )
    clock, phone, leg, invite = _dial(auth=None)
    outs = leg.receive(_challenge(phone, invite, 407, 'Digest realm="c", nonce="n1"'), clock(0.1))
    (failed,) = said(outs)
    assert isinstance(failed, Failed) and failed.status == 407
