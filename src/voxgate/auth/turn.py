"""TURN credentials in coturn's REST API scheme (``use-auth-secret``).

The gateway and coturn share a secret; a credential is ``<expiry unix time>:<identity>`` with
the password ``base64(HMAC-SHA1(secret, username))``. coturn checks both and the expiry, so a
credential needs no store and dies by itself; nothing can revoke one before its expiry, which
is why they are short-lived (never past the session's token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from voxgate.domain.records import IceServers

__all__ = ["IceConfig", "turn_credential"]

MAX_TTL = 86_400.0


def turn_credential(secret: bytes, identity: str, expires_at: float) -> tuple[str, str]:
    username = f"{int(expires_at)}:{identity}"
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class IceConfig:
    """The ICE servers this deployment hands to clients."""

    turn_urls: tuple[str, ...]
    stun_urls: tuple[str, ...]
    secret: bytes | None
    ttl: float | None

    @property
    def configured(self) -> bool:
        return bool(self.stun_urls or (self.turn_urls and self.secret))

    def expiry(self, now: float, limit: float | None) -> float:
        """No later than ``limit`` (the token's expiry), ``ttl`` or a day from now."""
        until = now + min(self.ttl or MAX_TTL, MAX_TTL)
        return min(until, limit) if limit is not None else until

    def servers(self, identity: str, expires_at: float) -> list[dict[str, Any]]:
        """``RTCIceServer`` dicts, as ``RTCPeerConnection`` and the SDK's ``iceServers`` take."""
        servers: list[dict[str, Any]] = []
        if self.stun_urls:
            servers.append({"urls": list(self.stun_urls)})
        if self.turn_urls and self.secret:
            username, password = turn_credential(self.secret, identity, expires_at)
            servers.append(
                {"urls": list(self.turn_urls), "username": username, "credential": password}
            )
        return servers

    def issue(self, identity: str, now: float, limit: float | None) -> IceServers:
        """ICE servers for ``identity`` (a principal; coturn's logs show it), expiring no later
        than ``limit``."""
        until = self.expiry(now, limit)
        return IceServers(tuple(self.servers(identity.replace(":", "-"), until)), until)
