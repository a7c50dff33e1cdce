"""``POST /call_report`` (and ``/call_recording``): what the SDK uploads about a call, checked
and kept. Reached through the front door on the signaling port, as the SDK expects.

Every check is cheap and comes before any store write: a ``call_report_id`` that this
deployment issued (an HMAC, no look-up) for a session that is live here or ended within the
grace period, or one that another node noted on the bus (a load balancer may send the upload
to any node); a call that belongs to that session; a body within the size limit; at most
``RATE`` uploads a minute per session. Anything else is a 4xx with a reason, and nothing is
kept. Uploads are handled off the socket readers, so signaling never waits on them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from voxgate.bus.base import Bus, SessionCalls
from voxgate.domain.callquality import verify_report_id
from voxgate.domain.ids import new_uuid
from voxgate.domain.records import CallReport
from voxgate.domain.timeutil import utcnow
from voxgate.gateway.directory import Peer
from voxgate.gateway.front_door import HttpReply, HttpRequest
from voxgate.services.audit import AuditLog
from voxgate.store.base import Store

__all__ = ["CallReportDesk", "Reporter"]

RATE = 30  # uploads a minute per session (the SDK sends a few per call)
GRACE = 900.0  # seconds a report is still taken after its session ended
IN_CALL_TTL = 86_400.0  # a session's calls noted on the bus while one is up (bounds a lost one)
MAX_ENDED = 50_000  # ended sessions remembered for their late reports; the oldest go first
CORS = [
    ("access-control-allow-origin", "*"),  # no cookies: the report id is the credential
    ("access-control-allow-methods", "POST, OPTIONS"),
    ("access-control-allow-headers", "content-type, x-call-report-id, x-call-id, x-voice-sdk-id"),
    ("access-control-max-age", "600"),
]
PATHS = {"/call_report": "report", "/call_recording": "recording"}


@dataclass(frozen=True, slots=True)
class Reporter:
    """A session as its uploads need it: who it is and which calls are its own."""

    sessid: str
    credential_id: str | None
    connection_id: str
    call_ids: frozenset[str]


class CallReportDesk:
    def __init__(
        self,
        key: bytes,
        store: Store,
        audit: AuditLog,
        reporter: Callable[[str], Reporter | None],
        *,
        max_bytes: int,
        recordings: bool,
        bus: Bus | None = None,
    ) -> None:
        self.key, self.store, self.audit, self.bus = key, store, audit, bus
        self.reporter = reporter  # a live session, by sessid
        self.max_bytes, self.recordings = max_bytes, recordings
        self._ended: dict[str, tuple[Reporter, float]] = {}  # recently ended sessions
        self._uploads: dict[str, list[float]] = {}

    def ended(self, reporter: Reporter, now: float) -> None:
        """A session ended: its final reports may still be on their way.

        Kept in the order they ended, so the expired (and, past ``MAX_ENDED``, the oldest) are
        dropped from the front: O(1) per session. Rebuilding the whole map on every end once
        it held 50,000 made each end cost ~5 ms: after a 19,500-session drop and two storms,
        a gateway spent minutes at 100 % CPU and logged in 13 clients a second (``make bench``).
        """
        self._ended.pop(reporter.sessid, None)  # ended again (a takeover): now the newest
        if not reporter.call_ids:  # no call, no report to come: kept, a login-and-drop loop
            return  # would hold ~0.4 KB a session for 15 minutes (``make bench``)
        self._ended[reporter.sessid] = (reporter, now + GRACE)
        while self._ended:
            oldest = next(iter(self._ended))
            if self._ended[oldest][1] > now and len(self._ended) <= MAX_ENDED:
                break
            del self._ended[oldest]

    async def note(self, reporter: Reporter, in_call: bool) -> None:
        """Tell every node which calls this session took part in (when one starts or ends,
        and when the session ends), so that a report posted to any of them is taken: kept
        while a call is up, then for the grace period."""
        if self.bus is not None:
            calls = SessionCalls(reporter.credential_id, reporter.connection_id, reporter.call_ids)
            await self.bus.note_calls(reporter.sessid, calls, IN_CALL_TTL if in_call else GRACE)

    async def calls_changed(self, peer: Peer) -> None:
        """After any change to a session: a call that started or ended is noted."""
        legs = peer.session.calls.legs
        if not legs and not peer.noted:  # the common case: no call then, none now
            return
        live = frozenset(legs)
        if live == peer.noted:
            return
        peer.noted = live
        reporter = self.reporter(peer.session.sessid)
        if reporter is not None:
            await self.note(reporter, in_call=bool(live))

    def body_limit(self, request: HttpRequest) -> int:
        return self.max_bytes if request.path in PATHS else 0

    async def handle(self, request: HttpRequest) -> HttpReply:
        kind = PATHS.get(request.path)
        if kind is None:
            return _refuse(404, "not found: the signaling port answers /call_report only")
        if request.method == "OPTIONS":
            return HttpReply(204, headers=CORS)
        if kind == "recording" and not self.recordings:
            return _refuse(403, "call recording uploads are off on this server")
        now = time.time()
        sessid = verify_report_id(self.key, request.headers.get("x-call-report-id", ""))
        reporter = await self._find(sessid, now) if sessid else None
        if reporter is None:
            return _refuse(403, "unknown or expired call_report_id")
        if not self._within_rate(reporter.sessid, now):
            return _refuse(429, f"more than {RATE} uploads a minute from one session")
        try:
            body = json.loads(request.body)
        except (ValueError, RecursionError):
            return _refuse(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _refuse(400, "the body must be a JSON object")
        call_id = _call_id(request, body)
        if not call_id or call_id not in reporter.call_ids:
            return _refuse(403, "that call does not belong to this call_report_id's session")
        segment = body.get("segment")
        report = CallReport(
            id=new_uuid(),
            call_id=call_id,
            session_id=reporter.sessid,
            credential_id=reporter.credential_id,
            connection_id=reporter.connection_id,
            kind=kind,
            final=kind == "report" and "flushReason" not in body,
            segment=segment if isinstance(segment, int) and not isinstance(segment, bool) else None,
            received_at=utcnow(),
            body=body,
        )
        await self.store.add_call_report(report)
        if report.final and reporter.credential_id:
            details = {"call_id": call_id, "call_report_id": report.id}
            self.audit.record(reporter.credential_id, "call_report", details)
        return HttpReply(201, {"data": {"id": report.id, "call_id": call_id}}, CORS)

    async def _find(self, sessid: str, now: float) -> Reporter | None:
        live = self.reporter(sessid)
        if live is not None:
            return live
        ended = self._ended.get(sessid)
        if ended is not None and ended[1] > now:
            return ended[0]
        noted = await self.bus.calls_of(sessid) if self.bus is not None else None
        if noted is None:  # another node's session, or none: unknown
            return None
        return Reporter(sessid, noted.credential_id, noted.connection_id, noted.call_ids)

    def _within_rate(self, sessid: str, now: float) -> bool:
        recent = [t for t in self._uploads.get(sessid, ()) if t > now - 60]
        if len(recent) >= RATE:
            self._uploads[sessid] = recent
            return False
        self._uploads[sessid] = [*recent, now]
        if len(self._uploads) > 50_000:
            self._uploads = {k: v for k, v in self._uploads.items() if v and v[-1] > now - 60}
        return True


def _call_id(request: HttpRequest, body: dict[str, object]) -> str:
    summary = body.get("summary")
    given = request.headers.get("x-call-id") or (
        summary.get("callId") if isinstance(summary, dict) else body.get("call_id")
    )
    return given if isinstance(given, str) and 0 < len(given) <= 64 else ""


def _refuse(status: int, detail: str) -> HttpReply:
    return HttpReply(status, {"errors": [{"detail": detail}]}, CORS)
