"""SIP final statuses and the hang-up cause names @telnyx/webrtc shows (``call.cause``).

Both directions follow FreeSWITCH, the engine behind Telnyx's own SIP legs: statuses to causes
as ``sofia_glue_sip_cause_to_freeswitch`` (RFC 4497 8.4.4), causes to statuses as
``hangup_cause_to_sip`` (Q.1912.5 / RFC 3398). Two choices differ from a plain reading:

- 480 is NO_USER_RESPONSE (FreeSWITCH, RFC 3398 8.2.6.1), not SUBSCRIBER_ABSENT: a phone that
  is registered but does not pick up answers 480 through most proxies.
- 408 and our own INVITE timeout are NO_ANSWER (FreeSWITCH says RECOVERY_ON_TIMER_EXPIRE):
  Kamailio answers 408 when its ring timer (``fr_inv_timer``) runs out, which a caller knows as
  "no answer". A request *inside* a call that times out is RECOVERY_ON_TIMER_EXPIRE.

Only names live here; their Q.850 codes are voxgate's one table, ``domain/causes.py`` (a test
holds every name here to it).
"""

from __future__ import annotations

__all__ = [
    "DIALOG_TIMEOUT",
    "INVITE_TIMEOUT",
    "cancel_reason",
    "cause_for_cancel",
    "cause_for_status",
    "status_for_cause",
]

INVITE_TIMEOUT = "NO_ANSWER"  # Timer B: nobody answered the INVITE at all
DIALOG_TIMEOUT = "RECOVERY_ON_TIMER_EXPIRE"  # a request in a call went unanswered (or 408/481)

_BY_STATUS: dict[int, str] = {
    400: "NORMAL_TEMPORARY_FAILURE",
    401: "CALL_REJECTED",
    402: "CALL_REJECTED",
    403: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER",
    405: "SERVICE_UNAVAILABLE",
    406: "SERVICE_NOT_IMPLEMENTED",
    407: "CALL_REJECTED",
    408: "NO_ANSWER",
    410: "NUMBER_CHANGED",
    413: "INTERWORKING",
    414: "INTERWORKING",
    415: "SERVICE_NOT_IMPLEMENTED",
    416: "INTERWORKING",
    420: "INTERWORKING",
    421: "INTERWORKING",
    423: "INTERWORKING",
    480: "NO_USER_RESPONSE",
    481: "NORMAL_TEMPORARY_FAILURE",
    482: "EXCHANGE_ROUTING_ERROR",
    483: "EXCHANGE_ROUTING_ERROR",
    484: "INVALID_NUMBER_FORMAT",
    485: "NO_ROUTE_DESTINATION",
    486: "USER_BUSY",
    487: "ORIGINATOR_CANCEL",
    488: "INCOMPATIBLE_DESTINATION",
    500: "NORMAL_TEMPORARY_FAILURE",
    501: "SERVICE_NOT_IMPLEMENTED",
    502: "NETWORK_OUT_OF_ORDER",
    503: "NORMAL_TEMPORARY_FAILURE",
    504: "NO_ANSWER",  # a gateway's timeout, like 408
    505: "INTERWORKING",
    513: "INTERWORKING",
    600: "USER_BUSY",
    603: "CALL_REJECTED",
    604: "NO_ROUTE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
    608: "CALL_REJECTED",
}

_BY_CAUSE: dict[str, tuple[int, str]] = {
    "UNALLOCATED_NUMBER": (404, "Not Found"),
    "NO_ROUTE_DESTINATION": (404, "Not Found"),
    "USER_BUSY": (486, "Busy Here"),
    "NO_USER_RESPONSE": (408, "Request Timeout"),
    "NO_ANSWER": (480, "Temporarily Unavailable"),
    "SUBSCRIBER_ABSENT": (480, "Temporarily Unavailable"),
    "CALL_REJECTED": (603, "Decline"),
    "NUMBER_CHANGED": (410, "Gone"),
    "INVALID_NUMBER_FORMAT": (484, "Address Incomplete"),
    "NORMAL_TEMPORARY_FAILURE": (503, "Service Unavailable"),
    "NETWORK_OUT_OF_ORDER": (503, "Service Unavailable"),
    "SERVICE_UNAVAILABLE": (503, "Service Unavailable"),
    "INCOMPATIBLE_DESTINATION": (488, "Not Acceptable Here"),
    "RECOVERY_ON_TIMER_EXPIRE": (408, "Request Timeout"),
    "ORIGINATOR_CANCEL": (487, "Request Terminated"),
    "LOSE_RACE": (487, "Request Terminated"),  # another device answered (FreeSWITCH: 487)
    "INTERWORKING": (500, "Server Internal Error"),
    "SERVICE_NOT_IMPLEMENTED": (501, "Not Implemented"),
    "EXCHANGE_ROUTING_ERROR": (483, "Too Many Hops"),
}


def cause_for_status(status: int) -> str:
    """The cause a caller is shown for a final non-2xx answer to its INVITE."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if 200 <= status < 300:
        return "NORMAL_CLEARING"
    return "NORMAL_UNSPECIFIED"  # FreeSWITCH's answer for any other status


def status_for_cause(cause: str) -> tuple[int, str]:
    """The final status (and reason phrase) that refuses a SIP INVITE for ``cause``.

    Anything unknown, NORMAL_CLEARING included (the callee hung up before answering), is 480,
    as FreeSWITCH answers a cause without a SIP equivalent."""
    return _BY_CAUSE.get(cause, (480, "Temporarily Unavailable"))


def cause_for_cancel(reason: str | None) -> str:
    """The cause a CANCEL carries (its ``Reason``, RFC 3326): a forking proxy cancels the
    branches that lost with ``SIP;cause=200`` (Kamailio's tm does, ``local_cancel_reason``),
    which the WebRTC session it rang shows as LOSE_RACE; any other is the caller giving up."""
    for value in (reason or "").split(","):
        protocol, _, params = value.strip().partition(";")
        fields = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in params.split(";"))}
        if protocol.strip().upper() == "SIP" and fields.get("cause") == "200":
            return "LOSE_RACE"
    return "ORIGINATOR_CANCEL"


def cancel_reason(cause: str) -> str:
    """The ``Reason`` of our CANCEL: a phone that lost a forked call to another device
    hears it was answered elsewhere (and shows no missed call); otherwise none."""
    return 'SIP;cause=200;text="Call completed elsewhere"' if cause == "LOSE_RACE" else ""
