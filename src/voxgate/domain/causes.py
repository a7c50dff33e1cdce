"""Hang-up causes by name, with their Q.850 codes, as the SDKs show them (iOS ByeMessage.swift,
FreeSWITCH's names: Telnyx runs it). WebRTC legs and SIP legs (``sipleg/causes.py`` maps SIP
statuses to these names) share the one table."""

from __future__ import annotations

__all__ = ["CAUSES", "cause_code"]

CAUSES: dict[str, int] = {
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_DESTINATION": 3,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22,
    "EXCHANGE_ROUTING_ERROR": 25,
    "INVALID_NUMBER_FORMAT": 28,
    "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34,  # a trunk's limit (calls at once, calls per minute)
    "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "OUTGOING_CALL_BARRED": 52,  # a destination outside the connection's whitelist
    "SERVICE_UNAVAILABLE": 63,
    "SERVICE_NOT_IMPLEMENTED": 79,
    "INCOMPATIBLE_DESTINATION": 88,
    "RECOVERY_ON_TIMER_EXPIRE": 102,  # a party did not come back (reattach window, SIP timers)
    "INTERWORKING": 127,
    "ORIGINATOR_CANCEL": 487,
    "LOSE_RACE": 502,  # another registration answered first
}


def cause_code(cause: str, default: int = 16) -> int:
    return CAUSES.get(cause, default)
