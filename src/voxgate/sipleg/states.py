"""A SIP call leg's life as one table: every (state, input) pair has a next state or a refusal.

The leg first lets its transactions absorb what is theirs (retransmissions, a repeated final,
the ACK of a non-2xx) and checks a request belongs to its dialog (RFC 3261 12.2.2: the
tags, CSeq order). Whatever is left is classified as an ``Input`` and looked up here; nothing
else decides whether something is allowed.

A leg is a UAC (it sends the INVITE: IDLE -> CALLING) or a UAS (it receives one: IDLE ->
OFFERED); both meet in CONFIRMED. Its one terminal output (``Failed`` or ``Ended``) is said as
soon as its fate is known; CANCELLING and ENDING finish the protocol after that (the 487 and
its ACK, the BYE and its 200) and say nothing more.
"""

from __future__ import annotations

import enum

__all__ = ["COMMANDS", "TABLE", "Input", "Refusal", "State", "step"]


class State(enum.Enum):
    IDLE = "idle"  # a new leg: nothing sent or received
    CALLING = "calling"  # UAC: INVITE sent, no provisional yet (a CANCEL must wait)
    PROCEEDING = "proceeding"  # UAC: a provisional came (100, 180, 183)
    CANCELLING = "cancelling"  # UAC: we gave up; waiting for the INVITE's final (487)
    OFFERED = "offered"  # UAS: INVITE received, 100 sent
    EARLY = "early"  # UAS: 180/183 sent
    ANSWERED = "answered"  # UAS: 2xx sent, retransmitted until its ACK
    CONFIRMED = "confirmed"  # the call is up
    REINVITING = "reinviting"  # our re-INVITE is out (hold, resume)
    REOFFERED = "reoffered"  # their re-INVITE waits for our answer
    ENDING = "ending"  # we hung up: our BYE is out (or waits for the ACK of our 2xx)
    ENDED = "ended"


class Input(enum.Enum):
    # commands from the B2BUA
    DIAL = "dial"  # invite()
    CANCEL = "cancel"  # cancel()
    BYE = "bye"  # bye()
    REINVITE = "reinvite"  # reinvite()
    SEND_INFO = "send_info"  # info_dtmf()
    RING = "ring"  # ringing(), progress()
    ANSWER = "answer"  # answer(): the INVITE's or a re-INVITE's offer
    REJECT = "reject"  # reject(): the INVITE or a re-INVITE
    # requests from the remote
    OFFER = "offer"  # the INVITE that creates a UAS leg
    BAD_OFFER = "bad_offer"  # ... requiring an extension we lack (Require:)
    REOFFER = "reoffer"  # a re-INVITE
    ACK = "ack"  # the ACK of a 2xx
    CANCELLED = "cancelled"  # CANCEL of an INVITE still unanswered
    HANGUP = "hangup"  # BYE
    INFO = "info"
    OTHER_REQUEST = "other_request"  # OPTIONS (200), anything else (405)
    # responses to what we sent
    PROVISIONAL = "provisional"  # 1xx to our INVITE
    ACCEPTED = "accepted"  # the first 2xx to our INVITE
    REFUSED = "refused"  # a final >= 300 to our INVITE
    REINVITE_OK = "reinvite_ok"
    REINVITE_GLARE = "reinvite_glare"  # 491: both sides re-INVITEd at once
    REINVITE_REFUSED = "reinvite_refused"  # any other failure: the session is unchanged
    DIALOG_LOST = "dialog_lost"  # 408/481 or a timeout for a request in the call
    BYE_DONE = "bye_done"  # our BYE's final, or its Timer F
    # timers
    NO_RESPONSE = "no_response"  # Timer B: our INVITE was never answered at all
    CANCEL_EXPIRED = "cancel_expired"  # 64*T1 after our CANCEL, still no final (9.1)
    ACK_TIMEOUT = "ack_timeout"  # 64*T1 after our 2xx, no ACK (13.3.1.4)
    RETRY_REINVITE = "retry_reinvite"  # the random wait after a 491 is over (14.1)


class Refusal(enum.Enum):
    """What a refused pair does; each is answered the same way wherever it occurs."""

    IGNORE = "ignore"  # a late response or timer, a hang-up of a leg that is done
    INVALID = "invalid"  # a command this state does not allow: ``InvalidCommand``
    NO_DIALOG = "no_dialog"  # 481 Call/Transaction Does Not Exist
    PENDING = "pending"  # 491 Request Pending: a re-INVITE while ours is out (14.2)
    RETRY_LATER = "retry_later"  # 500 + Retry-After: a re-INVITE while one waits (14.2)


COMMANDS = frozenset(
    {
        Input.DIAL,
        Input.CANCEL,
        Input.BYE,
        Input.REINVITE,
        Input.SEND_INFO,
        Input.RING,
        Input.ANSWER,
        Input.REJECT,
    }
)
_REQUESTS = frozenset(
    {Input.REOFFER, Input.CANCELLED, Input.HANGUP, Input.INFO, Input.OTHER_REQUEST}
)

S, E, R = State, Input, Refusal
Outcome = State | Refusal
_IGNORE, _PENDING, _LATER = R.IGNORE, R.PENDING, R.RETRY_LATER

# What each state allows; a pair not listed is refused by the input's kind: a command is
# INVALID, a request is NO_DIALOG (481), a response or a timer is IGNOREd.
# - CANCEL and BYE are both the B2BUA's "hang up": before an answer a UAC cancels (9.1),
#   after it a BYE goes, and once over hanging up again is ignored. A UAS refuses with REJECT.
# - BYE while ANSWERED waits for the ACK (15: the callee MUST NOT BYE before it).
# - A 2xx that arrives after we gave up (cancelled, timed out) is ACKed and BYEd (ENDING).
# - A BYE on the early dialog (EARLY) ends the call like a CANCEL (15).
_TABLE: dict[State, dict[Input, Outcome]] = {
    S.IDLE: {E.DIAL: S.CALLING, E.OFFER: S.OFFERED, E.BAD_OFFER: S.ENDED},
    S.CALLING: {
        E.CANCEL: S.CANCELLING,
        E.BYE: S.CANCELLING,
        E.PROVISIONAL: S.PROCEEDING,
        E.ACCEPTED: S.CONFIRMED,
        E.REFUSED: S.ENDED,
        E.NO_RESPONSE: S.ENDED,
    },
    S.PROCEEDING: {
        E.CANCEL: S.CANCELLING,
        E.BYE: S.CANCELLING,
        E.PROVISIONAL: S.PROCEEDING,
        E.ACCEPTED: S.CONFIRMED,
        E.REFUSED: S.ENDED,
    },
    S.CANCELLING: {
        E.CANCEL: _IGNORE,
        E.BYE: _IGNORE,
        E.PROVISIONAL: S.CANCELLING,  # now the waiting CANCEL may go
        E.ACCEPTED: S.ENDING,
        E.REFUSED: S.ENDED,
        E.NO_RESPONSE: S.ENDED,
        E.CANCEL_EXPIRED: S.ENDED,
    },
    S.OFFERED: {
        E.RING: S.EARLY,
        E.ANSWER: S.ANSWERED,
        E.REJECT: S.ENDED,
        E.CANCELLED: S.ENDED,
    },
    S.EARLY: {
        E.RING: S.EARLY,
        E.ANSWER: S.ANSWERED,
        E.REJECT: S.ENDED,
        E.CANCELLED: S.ENDED,
        E.HANGUP: S.ENDED,
        E.INFO: S.EARLY,
        E.OTHER_REQUEST: S.EARLY,
    },
    S.ANSWERED: {
        E.BYE: S.ENDING,
        E.ACK: S.CONFIRMED,
        E.HANGUP: S.ENDED,
        E.REOFFER: _LATER,
        E.INFO: S.ANSWERED,
        E.OTHER_REQUEST: S.ANSWERED,
        E.ACK_TIMEOUT: S.ENDING,
    },
    S.CONFIRMED: {
        E.CANCEL: S.ENDING,
        E.BYE: S.ENDING,
        E.REINVITE: S.REINVITING,
        E.SEND_INFO: S.CONFIRMED,
        E.REOFFER: S.REOFFERED,
        E.ACK: S.CONFIRMED,
        E.HANGUP: S.ENDED,
        E.INFO: S.CONFIRMED,
        E.OTHER_REQUEST: S.CONFIRMED,
        E.DIALOG_LOST: S.ENDING,
        E.ACK_TIMEOUT: S.ENDING,
        E.RETRY_REINVITE: S.REINVITING,
    },
    S.REINVITING: {
        E.CANCEL: S.ENDING,
        E.BYE: S.ENDING,
        E.SEND_INFO: S.REINVITING,
        E.REOFFER: _PENDING,
        E.ACK: S.REINVITING,
        E.HANGUP: S.ENDED,
        E.INFO: S.REINVITING,
        E.OTHER_REQUEST: S.REINVITING,
        E.REINVITE_OK: S.CONFIRMED,
        E.REINVITE_GLARE: S.CONFIRMED,
        E.REINVITE_REFUSED: S.CONFIRMED,
        E.DIALOG_LOST: S.ENDING,
        E.ACK_TIMEOUT: S.ENDING,
    },
    S.REOFFERED: {
        E.CANCEL: S.ENDING,
        E.BYE: S.ENDING,
        E.SEND_INFO: S.REOFFERED,
        E.ANSWER: S.CONFIRMED,
        E.REJECT: S.CONFIRMED,
        E.REOFFER: _LATER,
        E.ACK: S.REOFFERED,
        E.CANCELLED: S.CONFIRMED,  # a re-INVITE cancelled: 487, the call goes on
        E.HANGUP: S.ENDED,
        E.INFO: S.REOFFERED,
        E.OTHER_REQUEST: S.REOFFERED,
        E.DIALOG_LOST: S.ENDING,
        E.ACK_TIMEOUT: S.ENDING,
        E.RETRY_REINVITE: S.REOFFERED,  # wait again
    },
    S.ENDING: {
        E.CANCEL: _IGNORE,
        E.BYE: _IGNORE,
        E.ACK: S.ENDING,  # the deferred BYE may go now
        E.ACK_TIMEOUT: S.ENDING,  # ... or now
        E.HANGUP: S.ENDING,  # both hung up at once: 200, our BYE finishes
        E.BYE_DONE: S.ENDED,
    },
    S.ENDED: {
        E.CANCEL: _IGNORE,
        E.BYE: _IGNORE,
        E.ACCEPTED: S.ENDING,  # answered after we gave up
    },
}


def _default(event: Input) -> Refusal:
    if event in COMMANDS:
        return R.INVALID
    return R.NO_DIALOG if event in _REQUESTS else R.IGNORE


TABLE: dict[tuple[State, Input], Outcome] = {
    (state, event): _TABLE[state].get(event, _default(event)) for state in State for event in Input
}


def step(state: State, event: Input) -> Outcome:
    return TABLE[(state, event)]
