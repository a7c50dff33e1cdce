"""Call reports: the ``call_report_id`` a session hands its SDK, and what a call's reports say.

``@telnyx/webrtc`` measures a call (RTT, jitter, loss, levels, ICE) and posts it to
``/call_report`` on the host it signals through, with the ``call_report_id`` of its ``REGED``
reply. The id is ``<sessid>.<mac>``, an HMAC of the session id under a key derived from the
deployment's secret: unguessable, bound to its session, checked on any node without a look-up.

``summarize`` turns a call's reports into the figures an operator asks for. The MOS estimate
is the simplified E-model (ITU-T G.107 reduced to delay, jitter and loss, as in common VoIP
monitors): effective latency = RTT/2 + 2 x jitter + 10 ms; R = 93.2 - latency term - 2.5 x
loss %; MOS = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), kept within 1..4.5.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

__all__ = ["mos", "report_id", "series", "summarize", "verify_report_id"]

_MAC_BYTES = 18


def report_id(key: bytes, sessid: str) -> str:
    mac = hmac.new(key, sessid.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return f"{sessid}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def verify_report_id(key: bytes, value: str) -> str | None:
    """The session id ``value`` was issued for, or None (forged, malformed, another key)."""
    if not key or len(value) > 200 or value.count(".") != 1:
        return None
    sessid = value.split(".", 1)[0]
    return sessid if hmac.compare_digest(report_id(key, sessid), value) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _series(intervals: Iterable[dict[str, Any]], *path: str) -> list[float]:
    found = []
    for interval in intervals:
        node: Any = interval
        for step in path:
            node = node.get(step) if isinstance(node, dict) else None
        value = _number(node)
        if value is not None:
            found.append(value)
    return found


def mos(rtt_ms: float, jitter_ms: float, loss_percent: float) -> float:
    latency = rtt_ms / 2 + 2 * jitter_ms + 10
    r = 93.2 - (latency / 40 if latency < 160 else (latency - 120) / 10) - 2.5 * loss_percent
    r = max(0.0, min(100.0, r))
    return round(max(1.0, min(4.5, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r))), 2)


def summarize(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """One leg's reports (intermediate segments and the final one) as one summary."""
    intervals = _intervals(bodies)
    rtts = [v * 1000 for v in _series(intervals, "connection", "roundTripTimeAvg")]
    worst_rtts = [v * 1000 for v in _series(intervals, "connection", "currentRoundTripTime")]
    jitters = [v * 1000 for v in _series(intervals, "audio", "inbound", "jitterAvg")]
    # counters are cumulative: the largest seen is the call's (the interval taken as the call
    # hangs up may have none at all)
    cumulative = {
        "packets_received": _series(intervals, "audio", "inbound", "packetsReceived"),
        "bytes_received": _series(intervals, "audio", "inbound", "bytesReceived"),
        "packets_lost": _series(intervals, "audio", "inbound", "packetsLost"),
        "packets_sent": _series(intervals, "audio", "outbound", "packetsSent"),
        "bytes_sent": _series(intervals, "audio", "outbound", "bytesSent"),
    }
    totals = {k: int(max(v)) if v else None for k, v in cumulative.items()}
    received, lost = totals["packets_received"] or 0, totals["packets_lost"] or 0
    loss = 100.0 * lost / (received + lost) if received + lost else 0.0
    summary: dict[str, Any] = next(
        (b["summary"] for b in reversed(bodies) if isinstance(b.get("summary"), dict)), {}
    )
    avg_rtt = sum(rtts) / len(rtts) if rtts else None
    avg_jitter = sum(jitters) / len(jitters) if jitters else None
    return {
        "duration_seconds": _number(summary.get("durationSeconds")),
        "intervals": len(intervals),
        "rtt_ms_avg": _round(avg_rtt),
        "rtt_ms_worst": _round(max(rtts + worst_rtts, default=None)),
        "jitter_ms_avg": _round(avg_jitter),
        "jitter_ms_worst": _round(max(jitters, default=None)),
        "packet_loss_percent": round(loss, 2),
        **totals,
        "mos": mos(avg_rtt or 0.0, avg_jitter or 0.0, loss) if intervals else None,
        "mos_formula": "simplified E-model (ITU-T G.107): RTT/2 + 2 x jitter + 10 ms, loss",
    }


def series(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per interval, for a chart: when, RTT and jitter in ms, packets lost so far."""
    rows = []
    for interval in _intervals(bodies):
        rtt = _series([interval], "connection", "roundTripTimeAvg")
        jitter = _series([interval], "audio", "inbound", "jitterAvg")
        lost = _series([interval], "audio", "inbound", "packetsLost")
        rows.append(
            {
                "at": interval.get("intervalEndUtc"),
                "rtt_ms": _round(rtt[0] * 1000) if rtt else None,
                "jitter_ms": _round(jitter[0] * 1000) if jitter else None,
                "packets_lost": int(lost[0]) if lost else None,
            }
        )
    return rows


def _intervals(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every interval once (a segment re-sent after a failed upload repeats its own)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for body in bodies:
        for interval in body.get("stats") or []:
            if isinstance(interval, dict):
                when = (str(interval.get("intervalStartUtc")), str(interval.get("intervalEndUtc")))
                found[when] = interval
    return [found[k] for k in sorted(found)]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
