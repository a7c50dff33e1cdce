from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import Voxgate, create_pg_database, drop_pg_database, free_port
from tests.rtc.conftest import Api, Receiver, api_for
from tests.sentinel import Sentinels
from tests.sip.peers import SipNode, start_sip_node
from tests.turn import Coturn, run_coturn


def pytest_configure(config: pytest.Config) -> None:
    """Every voxgate this suite starts without an explicit database gets a data home of the
    run's own, never the user's (~/.local/share/voxgate); tests of the default set theirs."""
    os.environ["VOXGATE_HOME"] = tempfile.mkdtemp(prefix="voxgate-test-home-")


# The suite's webhook receivers (``receiver``) listen on 127.0.0.1, which voxgate refuses as a
# webhook target unless allowed (SECURITY.md): the shared servers allow it.
LOOPBACK_WEBHOOKS = ["--webhook-allow", "127.0.0.0/8"]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Voxgate]:
    """One live voxgate (REST + gateway, SQLite) shared by the API and gateway suites."""
    vg = Voxgate(tmp_path_factory.mktemp("voxgate"), extra_args=LOOPBACK_WEBHOOKS).start()
    yield vg
    vg.stop()


@pytest.fixture
def api(server: Voxgate) -> Iterator[Api]:
    a = api_for(server)
    yield a
    a.http.close()


@pytest.fixture(scope="module")
def sip_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipNode]:
    """One voxgate with its SIP edge (Kamailio, rtpengine; SQLite, in-process bus, no TLS:
    ws:// for browsers), shared by a module's tests (tests/sip, the SIP browser suites)."""
    workdir = tmp_path_factory.mktemp("sipnode")
    node = start_sip_node(Voxgate, workdir=workdir, extra_args=LOOPBACK_WEBHOOKS)
    yield node
    node.vg.stop()


@pytest.fixture
def sip_api(sip_node: SipNode) -> Iterator[Api]:
    a = api_for(sip_node.vg)
    yield a
    a.http.close()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[type[Voxgate]]:
    started: list[Voxgate] = []

    class _Factory(Voxgate):
        def __init__(self, **kwargs: object) -> None:
            kwargs.setdefault("workdir", tmp_path / f"vg{len(started)}")
            super().__init__(**kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield _Factory
    for vg in started:
        vg.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser suites last: sync Playwright must not be open while asyncio tests run."""

    def order(item: pytest.Item) -> tuple[bool, bool]:
        path = str(item.path).replace("\\", "/")
        return "test_secrets_scan" in path, "tests/conformance/" in path

    items.sort(key=order)


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A private coturn on a loopback port with a generated secret (tests/turn.py)."""
    yield from run_coturn(tmp_path)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, tuple[Callable[[], None], ...]]]:
    """A redis-server of the test's own on a free loopback port: its URL, and (start, stop)
    to take it down and bring it back."""
    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        procs.append(
            subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(tmp_path),
                ],
                stdout=subprocess.DEVNULL,
            )
        )
        for _ in range(50):
            if (
                subprocess.run(
                    ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                == "PONG"
            ):
                return
            time.sleep(0.1)
        raise RuntimeError("private redis did not start")

    def stop() -> None:
        procs[-1].kill()
        procs[-1].wait(5)

    start()
    yield f"redis://127.0.0.1:{port}/0", (start, stop)
    for p in procs:
        if p.poll() is None:
            p.kill()


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[Sentinels]:
    """A Redis master, its replica and three Sentinels of the test's own (tests/sentinel.py),
    every one of them ended however the test ends."""
    deployment = Sentinels(tmp_path / "redis")
    try:
        yield deployment.start()
    finally:
        deployment.stop_all()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook endpoint on loopback that keeps every delivery."""
    r = Receiver()
    yield r
    r.httpd.shutdown()
