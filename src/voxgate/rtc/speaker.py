"""What the server says on its own (requests and notices, not replies), numbered per session.

The SDK acks some of these by id, so ids are unique within a session; they start above the
SDK's own small integers to keep the two apart in logs.
"""

from __future__ import annotations

from typing import Any

from voxgate.domain.callquality import report_id
from voxgate.domain.records import IceServers, Registration
from voxgate.rtc import frames
from voxgate.rtc.config import SessionConfig

__all__ = ["NOTICE_CHANNEL", "Speaker"]

NOTICE_CHANNEL = "voxgate"  # our notices arrive as telnyx_rtc.event on this channel


class Speaker:
    __slots__ = ("_last_id", "sessid", "voice_sdk_id")

    def __init__(self, sessid: str, voice_sdk_id: str) -> None:
        self.sessid = sessid
        self.voice_sdk_id = voice_sdk_id
        self._last_id = 1000

    def request(self, method: str, params: dict[str, Any], **top: Any) -> dict[str, Any]:
        self._last_id += 1
        return frames.request_frame(self._last_id, method, params, **top)

    def notice(self, event: str, data: dict[str, Any]) -> dict[str, Any]:
        """A ``telnyx_rtc.event`` the SDK surfaces as ``telnyx.notification``."""
        params = {
            "eventChannel": NOTICE_CHANNEL,
            "eventType": event,
            "type": event,
            "sessid": self.sessid,
            **data,
        }
        return self.request("telnyx_rtc.event", params)

    def client_ready(self, reattached: list[str]) -> dict[str, Any]:
        """After a login: the calls listed survive a reconnect; the SDK drops the others."""
        params = {"reattached_sessions": reattached}
        return self.request("telnyx_rtc.clientReady", params, voice_sdk_id=self.voice_sdk_id)

    def reged(self, config: SessionConfig) -> dict[str, Any]:
        """REGED's params: the node (``dc``) and region, and the id the SDK uploads its call
        reports with (``domain/callquality.py``)."""
        params = {"state": "REGED", "dc": config.node_id, "region": config.region}
        if config.report_key:
            params["call_report_id"] = report_id(config.report_key, self.sessid)
        return params

    def logged_in(self, request_id: frames.Id) -> dict[str, Any]:
        reply = {"message": "logged in", "sessid": self.sessid}
        return frames.result_frame(request_id, reply, voice_sdk_id=self.voice_sdk_id)

    def punt(self, reason: str) -> dict[str, Any]:
        return self.request("telnyx_rtc.punt", {"reason": reason})

    def ping(self) -> dict[str, Any]:
        """The SDK answers with a ping request of its own, which we answer."""
        return self.request("telnyx_rtc.ping", {})

    def ended(self, event: str, reason: str) -> list[dict[str, Any]]:
        """Why the session ends (a notice), then the punt: the SDK stops reconnecting."""
        return [self.notice(event, {"reason": reason}), self.punt(reason)]

    def expiring(self, now: float, expires_at: float) -> dict[str, Any]:
        """Our lifetime warning, with the server's clock so the client can see any skew."""
        left = max(0.0, expires_at - now)
        body = {"code": 34001, "server_time": now, "expires_at": expires_at, "expires_in": left}
        return self.notice("voxgate.token_expiring", body)

    @staticmethod
    def taker(by: Registration) -> dict[str, Any]:
        """Who took a displaced session's registration, as its client is told."""
        return {
            "user_agent": by.user_agent,
            "address": by.address,
            "port": by.port,
            "at": by.registered_at,
            "node_id": by.node_id,
        }

    def ice_servers(self, ice: IceServers) -> dict[str, Any]:
        """The login's ICE servers; the browser helper sets them as the SDK's iceServers."""
        body = {"iceServers": list(ice.servers), "expires_at": ice.expires_at}
        return self.notice("voxgate.ice_servers", body)
