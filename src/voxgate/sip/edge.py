"""The SIP edge of one gateway node, put together: Kamailio and rtpengine (started and
supervised here, or run by the system: ``--sip-edge external``), the hook Kamailio asks, the
registrar and invite policy behind the hook, and the bus events that remove its contacts."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import structlog
import uvicorn

from voxgate.bus.base import Bus
from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError
from voxgate.services.audit import AuditLog
from voxgate.services.logins import LoginService
from voxgate.sip.engines import Engine, find_binary
from voxgate.sip.hook import hook_app
from voxgate.sip.invites import InvitePolicy
from voxgate.sip.kamailio import KAMAILIO_PACKAGES, KamailioFiles, contacts_of
from voxgate.sip.phones import Phones
from voxgate.sip.registrar import Registrar
from voxgate.sip.rpc import KamailioRpc, RpcError
from voxgate.sip.rtpengine import RTPENGINE_PACKAGES, Rtpengine, answers

__all__ = ["SipEdge"]

log = structlog.get_logger("voxgate.sip")
CARRIER_SYNC = 5.0  # seconds between syncs of the carrier registrations with the trunks


class _HookServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield  # voxgate's serve owns the signals


class SipEdge:
    def __init__(self, settings: Settings, logins: LoginService, bus: Bus, audit: AuditLog):
        self.settings = settings
        self.files = KamailioFiles.of(settings, logins.control.secrets.realm)
        self.managed = settings.sip_edge == "managed"
        self.rpc = KamailioRpc(self.files.rpc_socket)
        self.registrar = Registrar(logins, bus, audit, self.rpc)
        self.invites = InvitePolicy(self.registrar.identities, bus)
        self.bus = bus
        # the media relay: ours, or the system's when --rtpengine-ng names one
        self.media = Rtpengine.of(settings, self.files.dir)
        self.ng = self.media.client()
        self.engine: Engine | None = None
        self.media_engine: Engine | None = None
        self.phones: Phones | None = None
        self._hook: _HookServer | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        if self.settings.sip_edge not in ("managed", "external"):
            raise ConfigurationError("--sip-edge must be managed or external")
        if self.managed:
            binary = find_binary(self.settings.sip_kamailio, KAMAILIO_PACKAGES)
            relay = find_binary(self.settings.sip_rtpengine, RTPENGINE_PACKAGES)
            secret = self.files.write(binary)
        else:
            secret = self.files.read_secret()
        app = hook_app(secret, self.registrar, self.invites)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.settings.sip_hook_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self._hook = _HookServer(config)
        self._tasks.append(asyncio.create_task(self._hook.serve()))
        while not self._hook.started:
            if self._tasks[0].done():
                await self._tasks[0]
                raise ConfigurationError(f"SIP hook port {self.settings.sip_hook_port} is not free")
            await asyncio.sleep(0.02)
        if self.managed:
            self.engine = Engine(
                "kamailio",
                self.files.argv(binary),
                self.files.log,
                self._answers,
                on_restart=self._kamailio_restarted,
            )
            await self.engine.start()
            probe = self.media.client(timeout=0.25, attempts=1)
            self.media_engine = Engine(
                "rtpengine",
                self.media.argv(relay),
                self.media.log,
                lambda: answers(probe),
                on_restart=self._check_media,
            )
            await self.media_engine.start()
        else:
            if not await self._answers():
                path = str(self.files.rpc_socket)
                log.warning("Kamailio's control socket does not answer", path=path)
            if not await answers(self.ng):
                address = self.media.ng_address
                log.warning("rtpengine's ng socket does not answer", address=address)
        proxy = self.files.address if self.files.address not in ("0.0.0.0", "::") else "127.0.0.1"
        self.phones = Phones(
            self.settings.sip_leg_port, (proxy, self.settings.sip_port), self.files.domain,
            secret, self.ng, self.bus.node_id,
        )  # fmt: skip
        await self.phones.start()
        self.bus.subscribe(self.registrar.on_event)
        hooks = getattr(self.bus, "on_reconnect", None)
        if isinstance(hooks, list):
            hooks.append(self.registrar.reclaim)
        with contextlib.suppress(RpcError):
            adopted = await self.registrar.adopt(
                contacts_of(await self.rpc.call("ul.dump")), time.time()
            )
            if adopted:
                log.info("SIP contacts adopted from Kamailio", contacts=adopted)
        self._tasks.append(asyncio.create_task(self._sweep()))
        self._tasks.append(asyncio.create_task(self._carriers()))

    async def _carriers(self) -> None:
        """Registrations with the carriers whose trunks want one, kept as the trunks are."""
        while True:
            try:
                await self.invites.carriers.keep_registered(self.rpc)
            except Exception as exc:  # Kamailio restarting, the store down: next round
                log.warning("carrier registrations not synced", error=type(exc).__name__)
            await asyncio.sleep(CARRIER_SYNC)

    async def _answers(self) -> bool:
        try:
            await self.rpc.call("core.version")
        except RpcError:
            return False
        return True

    async def _kamailio_restarted(self) -> None:
        """A restarted Kamailio reloads its table from its own store (usrloc db_mode); what
        it no longer holds leaves presence."""
        held = {(c["aor"], c["contact"]) for c in contacts_of(await self.rpc.call("ul.dump"))}
        for bid, binding in list(self.registrar.bindings.items()):
            if (binding.aor, binding.reg.contact) not in held:
                await self.registrar.drop(bid, "edge_restarted")

    async def _check_media(self) -> None:
        if self.phones is not None:
            await self.phones.check_media()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval)
            with contextlib.suppress(Exception):
                await self.registrar.sweep(time.time())
            with contextlib.suppress(Exception):
                await self._check_media()  # an external rtpengine restarts unseen

    async def stop(self) -> None:
        if self.phones is not None:
            await self.phones.stop()
        for task in self._tasks[1:]:
            task.cancel()
        for engine in (self.engine, self.media_engine):
            if engine is not None:
                await engine.stop()
        if self._hook is not None:
            self._hook.should_exit = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.rpc.close()
        self.ng.close()

    def banner(self) -> list[str]:
        s, domain = self.settings, self.files.domain
        ws = "wss" if s.tls_cert else "ws"
        lines = [
            f"  SIP:        sip:<user>@{domain}  udp/tcp {self.files.address}:{s.sip_port}"
            + (f", tls :{s.sip_tls_port}" if s.tls_cert else "")
            + f", {ws}://{self.files.address}:{s.sip_ws_port}"
            + ("" if self.managed else "  (external Kamailio)"),
            f"  SIP media:  rtpengine on {self.media.interface} ports "
            f"{self.media.port_min}-{self.media.port_max}, ng {self.media.ng_address}"
            + ("" if self.managed else " (external)"),
        ]
        return lines
