"""TLS: a generated CA; the official SDK and a websocket client connect with verification on."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
from pathlib import Path

import httpx
import pytest
import telnyx
import websockets
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.harness import Voxgate


def make_ca_and_cert(dirpath: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voxgate test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = dirpath / "ca.pem", dirpath / "cert.pem", dirpath / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


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
