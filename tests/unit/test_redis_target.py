"""Which Redis the bus connects to: a URL or the master the Sentinels name, never both."""

from __future__ import annotations

import pytest

from voxgate.bus.target import RedisTarget, parse_sentinel
from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError


def test_sentinel_addresses_are_host_and_port() -> None:
    assert parse_sentinel("10.0.0.5:26379") == ("10.0.0.5", 26379)
    assert parse_sentinel("sentinel-1.internal:26379") == ("sentinel-1.internal", 26379)
    assert parse_sentinel("[::1]:26379") == ("::1", 26379)
    for bad in ("10.0.0.5", ":26379", "host:", "host:port", "host:0", "host:65536", "", "a b:1"):
        with pytest.raises(ConfigurationError, match="expected HOST:PORT"):
            parse_sentinel(bad)


def test_settings_name_one_redis() -> None:
    target = Settings(
        redis_sentinel=("127.0.0.1:26379", "127.0.0.1:26380"),
        redis_master_name="vx",
        redis_password="pw",
        redis_sentinel_password="spw",
    ).redis_target()
    assert target == RedisTarget(
        sentinels=(("127.0.0.1", 26379), ("127.0.0.1", 26380)),
        master_name="vx",
        password="pw",
        sentinel_password="spw",
    )
    assert Settings(redis_url="redis://h/0").redis_target() == RedisTarget(url="redis://h/0")
    assert not Settings().clustered and Settings(redis_sentinel=("h:1",)).clustered
    both = Settings(redis_url="redis://h/0", redis_sentinel=("h:26379",))
    with pytest.raises(ConfigurationError, match="give one"):
        both.redis_target()


def test_a_target_without_url_or_sentinels_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigurationError) as refused:
        RedisTarget(password="sekrit").connect()
    assert "sekrit" not in str(refused.value.detail)
