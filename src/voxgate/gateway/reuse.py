"""What a connection does when one token is presented by two sessions at two addresses.

A JWT is a bearer secret: the same one from two places at once means it leaked (or a user
copied it between devices). The audit row is always written (``Authenticator.track``); this
answers as the connection's ``on_token_reuse`` says, and tells the connection's webhook URL
with a ``credential.token_reuse_detected`` event signed like the call webhooks.

Two things that look alike are not reuse, and never get here: a refresh on the same socket
(the same session presents a token again) and a reattach from a new address (the session
moved; its old address is dropped before the new one is recorded). Only two *different live
sessions* presenting one ``jti`` from two addresses count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from voxgate.domain.records import Connection, Grant
from voxgate.domain.registrations import TokenReuse
from voxgate.domain.timeutil import from_epoch, iso
from voxgate.services.control import ControlPlane
from voxgate.webhooks import WebhookSender

__all__ = ["ReuseResponse"]

log = structlog.get_logger("voxgate.gateway")
EVENT = "credential.token_reuse_detected"


@dataclass(slots=True)
class ReuseResponse:
    control: ControlPlane
    webhooks: WebhookSender
    connection: Callable[[str], Awaitable[Connection | None]]

    async def __call__(self, grant: Grant, addresses: list[str]) -> None:
        cred_id, jti, action = grant.credential_id, grant.jti, grant.on_token_reuse
        if cred_id is None or jti is None:
            return
        log.warning("token reuse", credential_id=cred_id, action=action.value)
        await self._notify(grant, addresses)
        reason = "token presented from two addresses"
        if action is TokenReuse.REVOKE_TOKEN:  # refused from now on; its sessions end
            expires = from_epoch(grant.expires_at or 0.0)
            await self.control.revoke_token(jti, cred_id, expires, reason)
        elif action is TokenReuse.DEACTIVATE_CREDENTIAL:
            await self.control.set_credential_active(cred_id, False)

    async def _notify(self, grant: Grant, addresses: list[str]) -> None:
        with contextlib.suppress(Exception):  # a webhook never stands in the way of the answer
            conn = await self.connection(grant.connection_id)
            url = conn.settings.get("webhook_event_url") if conn else None
            if conn is None or not url:
                return
            timeout = conn.settings.get("webhook_timeout_secs")
            payload = {
                "credential_id": grant.credential_id,
                "connection_id": grant.connection_id,
                "jti": grant.jti,
                "addresses": addresses,
                "action": grant.on_token_reuse.value,
                "token_expires_at": iso(from_epoch(grant.expires_at or 0.0)),
            }
            self.webhooks.send(str(url), EVENT, payload, float(timeout) if timeout else None)
