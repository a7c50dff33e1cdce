"""kill -9 during a write load, then restart: every acknowledged change is there, and no
revocation is lost. On SQLite (WAL) and on Postgres."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from pathlib import Path

import httpx
import pytest
import websockets

from tests.harness import Voxgate, create_pg_database, drop_pg_database


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill9_during_writes_keeps_every_acknowledged_change(backend: str, tmp_path: Path) -> None:
    db = create_pg_database() if backend == "postgres" else None
    vg = Voxgate(tmp_path / "vg", database_url=db).start()
    try:
        h = {"Authorization": f"Bearer {vg.api_key}"}
        conn = httpx.post(
            f"{vg.base_url}/credential_connections", json={"connection_name": "dur"}, headers=h
        ).json()["data"]
        acked_creates: list[str] = []
        acked_deactivations: dict[str, str] = {}  # credential id -> a token minted before it
        stop = threading.Event()

        def writer() -> None:
            with httpx.Client(base_url=vg.base_url, headers=h, timeout=5) as http:
                while not stop.is_set():
                    try:
                        cred = http.post(
                            "/telephony_credentials", json={"connection_id": conn["id"]}
                        )
                        if cred.status_code != 201:
                            continue
                        cid = cred.json()["data"]["id"]
                        acked_creates.append(cid)
                        if len(acked_creates) % 2 == 0:
                            token = http.post(f"/telephony_credentials/{cid}/token").text
                            if (
                                http.post(
                                    f"/telephony_credentials/{cid}/actions/deactivate"
                                ).status_code
                                == 200
                            ):
                                acked_deactivations[cid] = token
                    except httpx.HTTPError:
                        return

        threads = [threading.Thread(target=writer) for _ in range(3)]
        for t in threads:
            t.start()
        while len(acked_creates) < 40:
            threading.Event().wait(0.05)
        assert vg.proc is not None
        os.kill(vg.proc.pid, signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        vg.proc.wait(5)
        vg.start()
        with httpx.Client(base_url=vg.base_url, headers=h) as http:
            for cid in acked_creates:
                assert http.get(f"/telephony_credentials/{cid}").status_code == 200, cid
            for cid in acked_deactivations:
                assert (
                    http.get(f"/telephony_credentials/{cid}").json()["data"]["status"] == "inactive"
                )
        assert acked_deactivations

        async def refused(token: str) -> bool:
            async with websockets.connect(vg.rtc_url) as ws:
                await ws.send(
                    json.dumps(
                        {
                            "jsonrpc": "2.0",
                            "id": "1",
                            "method": "login",
                            "params": {"login_token": token},
                        }
                    )
                )
                return "error" in json.loads(await ws.recv())

        for token in acked_deactivations.values():
            assert asyncio.run(refused(token))
    finally:
        vg.stop()
        if db:
            drop_pg_database(db)
