"""Where the Redis bus connects: one ``redis://`` URL, or the master that Redis Sentinel names.

With Sentinel, redis-py's ``SentinelConnectionPool`` asks the Sentinels for the master's
address at every new connection and refuses a master they consider down, so after a failover
every reconnect lands on the promoted replica without voxgate tracking addresses itself. What
the bus must still do on top (take its presence back, re-read revocations) it does on any
reconnect, which a failover always causes: the old master dies, or Sentinel, demoting it, kills
its clients' connections (``CLIENT KILL TYPE normal|pubsub``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from voxgate.domain.errors import ConfigurationError

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.sentinel import Sentinel

__all__ = ["RedisTarget", "parse_sentinel"]

# How long one Redis command or connect may take before it counts as a failure: short, because a
# login waits on it and fails closed rather than hanging.
COMMAND_TIMEOUT = 2.0
# Sentinels are asked in turn at every connect: one that does not answer must not stall the rest
SENTINEL_TIMEOUT = 1.0


def parse_sentinel(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a pair; ``ConfigurationError`` otherwise."""
    host, sep, port = address.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    bad_host = not host or any(c.isspace() for c in host)
    if not sep or bad_host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"--redis-sentinel {address!r}: expected HOST:PORT, e.g. 10.0.0.5:26379"
        )
    return host, int(port)


@dataclass(frozen=True, slots=True)
class RedisTarget:
    url: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master_name: str = "mymaster"
    password: str | None = None  # the master's (and replicas'); a URL's own password wins
    sentinel_password: str | None = None  # the Sentinels' own (requirepass on the Sentinels)

    def connect(self) -> tuple[aioredis.Redis, Sentinel | None]:
        """A client for the master, and the Sentinel handle to close with it (or None)."""
        import redis.asyncio as aioredis  # here: settings are checked without importing redis
        from redis.asyncio.sentinel import Sentinel

        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_timeout": COMMAND_TIMEOUT,
            "socket_connect_timeout": COMMAND_TIMEOUT,
            "health_check_interval": 5,
        }
        if self.password:
            options["password"] = self.password
        if not self.sentinels:
            if not self.url:
                raise ConfigurationError("the Redis bus needs --redis-url or --redis-sentinel")
            return aioredis.from_url(self.url, **options), None
        asked: dict[str, Any] = {
            "socket_timeout": SENTINEL_TIMEOUT,
            "socket_connect_timeout": SENTINEL_TIMEOUT,
            "decode_responses": True,
        }
        if self.sentinel_password:
            asked["password"] = self.sentinel_password
        sentinel = Sentinel(list(self.sentinels), sentinel_kwargs=asked)  # type: ignore[no-untyped-call]
        return sentinel.master_for(self.master_name, **options), sentinel
