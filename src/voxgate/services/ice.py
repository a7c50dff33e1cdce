"""ICE servers over REST, for backends that build their own pages (the gateway hands every
session its own at login)."""

from __future__ import annotations

import time

from voxgate.domain.principals import Principal
from voxgate.domain.records import IceServers
from voxgate.services.control import ControlPlane

__all__ = ["credential_ice_servers"]


async def credential_ice_servers(control: ControlPlane, cred_id: str) -> IceServers:
    """TURN credentials named after the credential, expiring no later than it does, and none
    for an inactive, expired or unknown one."""
    cred = await control.usable_credential(cred_id, "ICE servers")
    ice = control.ice.issue(Principal.credential(cred.id), time.time(), cred.expires_at.timestamp())
    control.audit_log.record(cred.id, "ice_servers_minted", {"expires_at": ice.expires_at})
    return ice
