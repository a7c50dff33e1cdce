"""TLS: a generated CA; the official SDK and a websocket client connect with verification on."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

import httpx
import pytest
import telnyx
import websockets

from tests.certs import make_ca_and_cert
from tests.harness import Voxgate


async def test_https_and_wss_with_verification(tmp_path: Path, make_server: type[Voxgate]) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    vg = make_server(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca=ca)
    await asyncio.to_thread(vg.start)
    base = f"https://127.0.0.1:{vg.api_port}/v2"
    sdk = telnyx.AsyncTelnyx(
        api_key=vg.api_key,
        base_url=base,
        http_client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(ca))),
        max_retries=0,
    )
    conn = (
        await sdk.credential_connections.create(
            connection_name="tls", user_name="tlsuser1", password="password123"
        )
    ).data
    assert conn is not None
    cred = (await sdk.telephony_credentials.create(connection_id=str(conn.id))).data
    assert cred is not None
    token = await sdk.telephony_credentials.create_token(str(cred.id))
    context = ssl.create_default_context(cafile=str(ca))
    async with websockets.connect(f"wss://127.0.0.1:{vg.rtc_port}", ssl=context) as ws:
        await ws.send(
            json.dumps(
                {"jsonrpc": "2.0", "id": "1", "method": "login", "params": {"login_token": token}}
            )
        )
        assert json.loads(await ws.recv())["result"]["message"] == "logged in"
    with pytest.raises(ssl.SSLCertVerificationError):  # verification is really on
        await websockets.connect(f"wss://127.0.0.1:{vg.rtc_port}", ssl=ssl.create_default_context())
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"https://127.0.0.1:{vg.api_port}/healthz")
