"""Postgres unreachable (a proxy we cut): REST answers 503 in the Telnyx envelope with
retry-after, logins fail closed, live sessions go on, and recovery is automatic."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import Voxgate, create_pg_database, drop_pg_database, free_port
from voxgate.client import Client, ClientError


class CuttableProxy:
    """A TCP proxy to Postgres in its own thread and loop; ``cut()`` drops and refuses."""

    def __init__(self, target_port: int = 5432) -> None:
        self.port = free_port()
        self.target = target_port
        self.up = True
        self.loop = asyncio.new_event_loop()
        self.conns: set[asyncio.StreamWriter] = set()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(5)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            w.close()

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if not self.up:
                w.close()
                return
            tr, tw = await asyncio.open_connection("127.0.0.1", self.target)
            self.conns |= {w, tw}
            await asyncio.gather(pipe(r, tw), pipe(tr, w))

        async def main() -> None:
            await asyncio.start_server(handle, "127.0.0.1", self.port)
            ready.set()
            await asyncio.Event().wait()

        self.loop.run_until_complete(main())

    def cut(self) -> None:
        def do() -> None:
            self.up = False
            for w in list(self.conns):
                w.transport.abort()
            self.conns.clear()

        self.loop.call_soon_threadsafe(do)

    def restore(self) -> None:
        self.loop.call_soon_threadsafe(lambda: setattr(self, "up", True))


@pytest.fixture
def pg_behind_proxy(tmp_path: Path) -> Iterator[tuple[Voxgate, CuttableProxy]]:
    url = create_pg_database()
    proxy = CuttableProxy()
    proxied = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    vg = Voxgate(tmp_path / "vg", database_url=proxied).start()
    yield vg, proxy
    vg.stop()
    drop_pg_database(url)


async def test_store_down_503_fail_closed_and_recover(
    pg_behind_proxy: tuple[Voxgate, CuttableProxy],
) -> None:
    vg, proxy = pg_behind_proxy
    h = {"Authorization": f"Bearer {vg.api_key}"}
    async with httpx.AsyncClient(base_url=vg.base_url, headers=h, timeout=15) as http:
        conn = (
            await http.post("/credential_connections", json={"connection_name": "down"})
        ).json()["data"]
        live_cred = (
            await http.post("/telephony_credentials", json={"connection_id": conn["id"]})
        ).json()["data"]
        other = (
            await http.post("/telephony_credentials", json={"connection_id": conn["id"]})
        ).json()["data"]
        live_token = (await http.post(f"/telephony_credentials/{live_cred['id']}/token")).text
        other_token = (await http.post(f"/telephony_credentials/{other['id']}/token")).text
        live = Client(vg.rtc_url, login_token=live_token, reconnect=False)
        await live.connect()
        await asyncio.sleep(2.5)  # let the login caches age out
        proxy.cut()
        r = await http.get("/telephony_credentials")
        assert r.status_code == 503, r.text
        assert (
            r.json()["errors"][0]["title"] == "Service unavailable"
            and int(r.headers["retry-after"]) >= 1
        )
        with pytest.raises(ClientError) as refused:
            await Client(vg.rtc_url, login_token=other_token, reconnect=False).connect()
        assert refused.value.code == -32001 and "unavailable" in refused.value.message
        assert (await live.request("telnyx_rtc.ping", {}))["message"] == "PONG"
        proxy.restore()
        for _ in range(60):
            if (await http.get("/telephony_credentials")).status_code == 200:
                break
            await asyncio.sleep(0.5)
        assert (await http.get("/telephony_credentials")).status_code == 200
        again = Client(vg.rtc_url, login_token=other_token, reconnect=False)
        await again.connect()
        await again.close()
        await live.close()
