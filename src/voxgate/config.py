"""Settings from CLI flags and ``VOXGATE_*`` variables; one frozen object passed around."""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from voxgate.bus.target import RedisTarget, parse_sentinel
from voxgate.domain.errors import ConfigurationError
from voxgate.domain.forwarded import TrustedProxies
from voxgate.domain.webhook_targets import WebhookTargets
from voxgate.rtc.config import SessionConfig

__all__ = ["DEFAULT_DATABASE_URL", "HOME", "MAX_WORKERS", "Settings"]

MAX_WORKERS = 256

# Where the embedded database and the secret file live unless told otherwise: VOXGATE_HOME, or
# the per-user data directory (~/.local/share/voxgate on Linux). Not the current directory: a
# CLI run from elsewhere must open the server's database, not start a new one.
HOME = Path(os.environ.get("VOXGATE_HOME") or user_data_dir("voxgate", appauthor=False))
DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{HOME / 'voxgate.db'}"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    api_port: int = 8000
    rtc_port: int = 8001
    role: str = "all"  # all | api | rtc
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    # or the Sentinels that name the master (HOST:PORT each), which voxgate follows on failover
    redis_sentinel: tuple[str, ...] = ()
    redis_master_name: str = "mymaster"  # the name the Sentinels monitor the master under
    redis_password: str | None = None  # the master's and replicas' (requirepass)
    redis_sentinel_password: str | None = None  # the Sentinels' own (their requirepass)
    redis_prefix: str = "voxgate:"
    secret_file: Path = HOME / "voxgate.secret"
    bootstrap_api_key: str | None = None
    expiry_notice: float = 3600.0
    expiry_grace: float = 0.0
    reattach_window: float = 60.0  # seconds a dropped session keeps its calls for a reconnect
    max_detached_per_credential: int = 10  # dropped sessions with calls one credential keeps
    ping_interval: float = 30.0  # server telnyx_rtc.ping to every logged-in session
    idle_timeout: float = 75.0  # a session that sent nothing this long is treated as dropped
    log_level: str = "INFO"
    node_id: str = ""
    max_frame_bytes: int = 64 * 1024
    handshake_timeout: float = 10.0
    max_frames_per_second: int = 50
    max_sockets_per_address: int = 2000
    tls_cert: Path | None = None
    tls_key: Path | None = None
    housekeeping_interval: float = 1.0
    turn_url: tuple[str, ...] = ()  # turn:host:3478?transport=udp, turns:host:5349, ...
    stun_url: tuple[str, ...] = ()
    turn_secret: str | None = None  # coturn's static-auth-secret (prefer turn_secret_file)
    turn_secret_file: Path | None = None
    turn_ttl: float | None = None  # seconds; default: the token's remaining life, at most 24 h
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose forwarding header we believe
    forwarded_header: str = "x-forwarded-for"  # or "forwarded" (RFC 7239): what they write
    webhook_allow: tuple[str, ...] = ()  # CIDRs webhooks may reach beyond public addresses
    migrate: bool = True  # upgrade the schema at start (off: refuse an older schema)
    region: str = "local"  # told to clients in REGED (with the node as ``dc``)
    call_reports: bool = True  # accept the SDK's call reports (POST /call_report)
    call_report_retention_days: float = 7.0
    call_report_max_bytes: int = 1024 * 1024
    call_recordings: bool = False  # accept the SDK's raw audio uploads (SECURITY.md)
    # The SIP edge (Kamailio): off unless --sip. The domain is also the digest realm, which
    # every stored HA1 is computed under: a SIP node records it in the store, where API nodes
    # and the CLI read it (runtime.py).
    sip: bool = False
    sip_edge: str = "managed"  # managed: voxgate runs Kamailio | external: a system service
    sip_domain: str = ""
    sip_address: str = ""  # where Kamailio listens (default: --host)
    sip_port: int = 5060  # UDP and TCP
    sip_tls_port: int = 5061  # with --tls-cert/--tls-key
    sip_ws_port: int = 7443  # SIP over WebSocket (RFC 7118); WSS with --tls-cert
    sip_hook_port: int = 5090  # voxgate's verdict endpoint for Kamailio, on 127.0.0.1
    sip_leg_port: int = 5070  # voxgate's SIP user agent (calls to and from phones), 127.0.0.1
    sip_dir: Path = HOME / "sip"  # the generated configuration and Kamailio's runtime files
    sip_kamailio: str = "kamailio"  # the binary (looked up on PATH and in /usr/sbin)
    sip_rtpengine: str = "rtpengine"  # the media relay's binary (Debian: rtpengine-daemon)
    sip_flood_limit: int = 60  # SIP requests per source address per 2 s before it is banned
    # rtpengine, the SIP edge's media relay (started by voxgate, or external: --sip-edge)
    media_address: str = ""  # where rtpengine relays media (default: --host); LOCAL!PUBLIC
    media_ports: str = "30000-40000"  # MIN-MAX: the UDP ports rtpengine relays media on
    rtpengine_ng: str = ""  # HOST:PORT of its ng control socket (default: a free loopback port)
    anchor_media: bool = False  # browser-to-browser media through rtpengine too (needs --sip)
    workers: str = "1"  # gateway processes on the signaling port: a number, or auto (cores)
    worker: int = 0  # set by the parent in each worker it starts (1..N); 0: not a worker

    def worker_count(self) -> int:
        """``--workers`` as a number: ``auto`` is the cores this process may run on.
        ``ConfigurationError`` for anything but 1..MAX_WORKERS or auto."""
        if self.workers == "auto":
            return min(len(os.sched_getaffinity(0)), MAX_WORKERS)
        if self.workers.isdigit() and 1 <= int(self.workers) <= MAX_WORKERS:
            return int(self.workers)
        raise ConfigurationError(f"--workers must be auto or a number from 1 to {MAX_WORKERS}")

    def to_json(self) -> str:
        """For a worker process: every field, secrets included (it is handed over in the
        worker's environment, which only this user can read, never in its argv)."""
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        hints = typing.get_type_hints(cls)
        values = json.loads(text)
        for name, value in values.items():
            kind = hints[name]
            if value is not None and Path in (kind, *typing.get_args(kind)):
                values[name] = Path(value)
            elif isinstance(value, list):
                values[name] = tuple(value)
        return cls(**values)

    @property
    def clustered(self) -> bool:
        """A shared Redis (by URL or through Sentinel) instead of the in-process bus."""
        return bool(self.redis_url or self.redis_sentinel)

    def redis_target(self) -> RedisTarget:
        """Where the bus connects. ``ConfigurationError`` for a Sentinel address that is not
        HOST:PORT, or for both a URL and Sentinels (which of the two would be the master?)."""
        if self.redis_url and self.redis_sentinel:
            raise ConfigurationError(
                "--redis-url and --redis-sentinel: give one (with Sentinel, the Sentinels "
                "name the master)"
            )
        return RedisTarget(
            url=self.redis_url,
            sentinels=tuple(parse_sentinel(a) for a in self.redis_sentinel),
            master_name=self.redis_master_name,
            password=self.redis_password,
            sentinel_password=self.redis_sentinel_password,
        )

    def proxies(self) -> TrustedProxies:
        """Raises ``ConfigurationError`` for a bad CIDR or header name."""
        return TrustedProxies.parse(self.trusted_proxies, self.forwarded_header)

    def webhook_targets(self) -> WebhookTargets:
        """Raises ``ConfigurationError`` for a bad CIDR."""
        return WebhookTargets.parse(self.webhook_allow)

    def turn_key(self) -> bytes | None:
        """The TURN REST API secret shared with coturn, from the setting or its file."""
        if self.turn_secret_file is not None:
            return self.turn_secret_file.read_text().strip().encode()
        return self.turn_secret.encode() if self.turn_secret else None

    def session_config(self, node_id: str) -> SessionConfig:
        """The gateway core's limits and timers (the core takes plain values, not Settings)."""
        return SessionConfig(
            expiry_notice=self.expiry_notice,
            handshake_timeout=self.handshake_timeout,
            max_frames_per_second=self.max_frames_per_second,
            frame_burst=max(4 * self.max_frames_per_second, 20),
            node_id=node_id,
            expiry_grace=self.expiry_grace,
            reattach_window=self.reattach_window,
            ping_interval=self.ping_interval,
            idle_timeout=self.idle_timeout,
            region=self.region,
        )

    @property
    def serves_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def serves_rtc(self) -> bool:
        return self.role in ("all", "rtc")
