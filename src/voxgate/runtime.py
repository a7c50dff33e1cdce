"""Building the pieces from settings: store, bus, control plane. Shared by CLI and server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from voxgate import metrics
from voxgate.auth.keyring import Sealer
from voxgate.auth.turn import IceConfig
from voxgate.bus.base import Bus
from voxgate.bus.local import LocalBus
from voxgate.config import Settings
from voxgate.domain.ids import new_kid
from voxgate.services.control import ControlPlane
from voxgate.services.logins import LoginService
from voxgate.store.base import Store
from voxgate.store.sql import open_store

__all__ = ["Runtime", "open_runtime"]


@dataclass(slots=True)
class Runtime:
    settings: Settings
    control: ControlPlane
    logins: LoginService
    bus: Bus


async def sip_realm(settings: Settings, store: Store) -> str:
    """The SIP domain, which is the digest realm: ``--sip-domain``, else the one a SIP node
    recorded, else this machine's name. A SIP node records its own, so that API nodes and
    the CLI compute the HA1s of new passwords under the realm it challenges with."""
    recorded = await store.deployment_value("sip_realm")
    realm = settings.sip_domain or recorded or socket.getfqdn()
    if settings.sip and realm != recorded:
        await store.set_deployment_value("sip_realm", realm)
    return realm


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    store = await open_store(settings.database_url, migrate=settings.migrate)
    node_id = settings.node_id or new_kid()
    bus: Bus
    if settings.clustered:
        from voxgate.bus.redis import RedisBus  # redis-py: only for a deployment that uses it

        bus = RedisBus(settings.redis_target(), node_id=node_id, prefix=settings.redis_prefix)
    else:
        bus = LocalBus(node_id)
    await bus.start()
    ice = IceConfig(settings.turn_url, settings.stun_url, settings.turn_key(), settings.turn_ttl)
    sealer = Sealer.from_file(settings.secret_file)
    realm = await sip_realm(settings, store)
    targets = settings.webhook_targets()
    control = ControlPlane(store, bus, sealer, ice=ice, realm=realm, webhook_targets=targets)
    audit = control.audit_log
    metrics.AUDIT_QUEUE.labels("pending").set_function(lambda: audit.pending)
    metrics.AUDIT_QUEUE.labels("dropped").set_function(lambda: audit.dropped)
    try:
        await control.load_keys()
        if settings.bootstrap_api_key:
            await control.api_keys.ensure(settings.bootstrap_api_key)
        yield Runtime(settings, control, LoginService(control), bus)
    finally:
        await control.audit_log.close()
        await bus.close()
        await store.close()
