"""``voxgate serve``: REST API and signaling gateway in one event loop, plus housekeeping."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import structlog
import uvicorn

from voxgate import metrics
from voxgate.api.app import create_api
from voxgate.config import DEFAULT_DATABASE_URL, HOME, Settings
from voxgate.domain.timeutil import utcnow
from voxgate.runtime import Runtime, open_runtime

__all__ = ["serve"]

log = structlog.get_logger("voxgate.server")


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``serve`` owns SIGTERM/SIGINT for all parts."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _housekeeping(rt: Runtime) -> None:
    """Expires credentials whose time ran out (ending their sessions), picks up key changes
    made by other processes (``voxgate keys rotate-signing``), and drops call reports past
    their retention (a cheap indexed delete)."""
    keep = timedelta(days=rt.settings.call_report_retention_days)
    swept = 0.0
    while True:
        await asyncio.sleep(rt.settings.housekeeping_interval)
        try:
            await rt.control.expire_due()
            await rt.control.load_keys()
            if time.monotonic() - swept >= min(60.0, keep.total_seconds() / 2):
                swept = time.monotonic()  # not every round: it takes SQLite's writer lock
                await rt.control.store.delete_call_reports_before(utcnow() - keep)
        except Exception as exc:  # store briefly down: try again next round
            log.warning("housekeeping failed", error=type(exc).__name__)


async def serve(settings: Settings, *, ready: asyncio.Event | None = None) -> None:
    async with open_runtime(settings) as rt:
        tasks: list[asyncio.Task[None]] = [asyncio.create_task(_housekeeping(rt))]
        api_server: uvicorn.Server | None = None
        if settings.serves_api:
            config = uvicorn.Config(
                create_api(rt.control, settings.proxies()),
                host=settings.host,
                port=settings.api_port,
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
                ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
                ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
                proxy_headers=False,  # ours (api/app.py), as the gateway's; uvicorn's own
            )
            api_server = _ApiServer(config)
            tasks.append(asyncio.create_task(api_server.serve()))
        gateway, pool, workers = None, None, settings.worker_count()
        if settings.serves_rtc and workers > 1:
            from voxgate.workers import WorkerPool

            pool = WorkerPool(settings, workers, rt.bus.node_id)
            await pool.start()
        elif settings.serves_rtc:
            from voxgate.gateway.server import Gateway
            from voxgate.webhooks import WebhookSigner
            from voxgate.webhooks.signing import PURPOSE

            signer = WebhookSigner(rt.control.sealer.derive(PURPOSE))
            control = rt.control
            gateway = Gateway(settings, rt.bus, rt.logins, control.audit_log, control.store, signer)
            await gateway.start(settings.host, settings.rtc_port)
            metrics.DEADLINES.set_function(partial(len, gateway.timers.heap))
        sip, sip_lines = None, []
        if settings.sip and settings.serves_rtc:
            from voxgate.gateway.phones import from_phone
            from voxgate.gateway.trunk_calls import missed_call
            from voxgate.sip.anchor import Anchor
            from voxgate.sip.edge import SipEdge

            sip = SipEdge(settings, rt.logins, rt.bus, rt.control.audit_log)
            try:
                await sip.start()
            except BaseException:
                await sip.stop()
                raise
            if gateway is not None and sip.phones is not None:
                gateway.calls.phones = sip.phones  # calls to SIP phones go out through it
                sip.phones.ring = partial(from_phone, gateway.calls)  # and from them ring here
                gateway.calls.trunks = rt.control.trunks  # calls to numbers: out on a trunk
                gateway.calls.lines = sip.invites.carriers  # while its registration is up
                sip.invites.carriers.opener = rt.control.trunks.password  # to register
                sip.invites.missed = partial(missed_call, gateway.calls)  # nobody to ring
                if settings.anchor_media:  # browser-to-browser media through rtpengine too
                    gateway.calls.anchor = Anchor(sip.phones.ng, gateway.node_id)
            sip_lines = sip.banner()
        if api_server is not None:
            while not api_server.started:  # noqa: ASYNC110 - uvicorn exposes no event for this
                await asyncio.sleep(0.02)
        _freeze_startup_heap()
        if not settings.worker:  # a worker's parent speaks for it
            signaling = gateway is not None or pool is not None
            _announce(settings, signaling, [*(pool.banner() if pool else []), *sip_lines])
        loop = asyncio.get_running_loop()
        metrics.TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
        if ready is not None:
            ready.set()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        if sip is not None:
            await sip.stop()
        if gateway is not None:
            await gateway.stop()
        if pool is not None:
            await pool.stop()
        if api_server is not None:
            api_server.should_exit = True
        for task in tasks[:1]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _freeze_startup_heap() -> None:
    """Move everything alive after startup out of the garbage collector's sight.

    The libraries (SQLAlchemy, FastAPI, pydantic, aiortc) leave ~150k tracked objects; a full
    collection walked them all, ~170 ms on the bench machine, a pause every socket and request
    in the process would wait out. Frozen, a full collection only walks what the running server
    made since.
    """
    gc.collect()
    gc.freeze()


def _announce(settings: Settings, signaling: bool, more: list[str]) -> None:
    lines = ["voxgate is running"]
    if settings.serves_api:
        scheme = "https" if settings.tls_cert else "http"
        base = f"{scheme}://{settings.host}:{settings.api_port}"
        lines += [f"  REST API:   {base}/v2   (docs: {base}/docs)"]
    if signaling:
        scheme = "wss" if settings.tls_cert else "ws"
        lines += [f"  signaling:  {scheme}://{settings.host}:{settings.rtc_port}"]
        turn = "TURN on" if settings.turn_url else "no TURN: calls across NATs need --turn-url"
        lines += [f"  media:      {turn} (README: Calls across NATs)"]
        lines += more
    # the CLI of this very installation, by full path: it works from any shell and directory
    installed = Path(sys.executable).with_name("voxgate")
    command = shlex.quote(str(installed)) if installed.exists() else "voxgate"
    shared = ""
    if os.environ.get("VOXGATE_HOME"):  # a home of its own: the CLI needs to be told too
        command = f"VOXGATE_HOME={shlex.quote(str(HOME))} {command}"
    database, secret_url = _shown(settings.database_url)
    if settings.database_url != DEFAULT_DATABASE_URL:
        # a URL with a password is not printed (logs keep banners): the CLI reads it from the
        # environment instead, where the operator keeps it for the server too
        url = '"$VOXGATE_DATABASE_URL"' if secret_url else shlex.quote(settings.database_url)
        shared += f" --database-url {url}"
    if settings.secret_file != Settings().secret_file:
        shared += f" --secret-file {shlex.quote(str(settings.secret_file))}"
    lines += [
        f"  database:   {database}",
        f"  secret:     {settings.secret_file}",
        f"  API key:    {command}{shared} keys create --label me",
        "              (from any directory; or start with VOXGATE_BOOTSTRAP_API_KEY set)",
    ]
    print("\n".join(lines), flush=True)


def _shown(url: str) -> tuple[str, bool]:
    """The database URL as the banner prints it (password masked), and whether it has one."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.render_as_string(hide_password=True), parsed.password is not None
