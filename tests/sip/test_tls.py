"""With voxgate's certificate (--tls-cert/--tls-key) its Kamailio speaks SIP over TLS on the
TLS port and WSS (RFC 7118) on the WebSocket port, with the same digest and verdicts."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from tests.certs import make_ca_and_cert
from tests.harness import SECRETS, Voxgate, free_port
from tests.rtc.conftest import api_for
from tests.sip.peers import DOMAIN, SipNode, free_udp_port, registrations, sip_args


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SipNode, int, Path]]:
    work = tmp_path_factory.mktemp("siptls")
    ca, cert, key = make_ca_and_cert(work)
    tls_port = free_port()
    vg = Voxgate(work / "vg", extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca=ca)
    sip_port, ws_port, hook_port = free_udp_port(), free_port(), free_port()
    vg.extra_args += [
        *sip_args(sip_port, ws_port, hook_port, vg.workdir),
        "--sip-tls-port",
        str(tls_port),
    ]
    node = SipNode(vg, sip_port, ws_port, hook_port).start()
    yield node, tls_port, ca
    vg.stop()


def _register(user: str, via: str, contact: str, auth: str = "", cseq: int = 1) -> str:
    return (
        f"REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/{via};branch=z9hG4bK{cseq}x{user[-6:]}\r\n"
        f"From: <sip:{user}@{DOMAIN}>;tag=t{cseq}\r\nTo: <sip:{user}@{DOMAIN}>\r\n"
        f"Call-ID: tls-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\n{auth}"
        "Max-Forwards: 70\r\nExpires: 300\r\nUser-Agent: tls-test\r\nContent-Length: 0\r\n\r\n"
    )


def _authorization(challenge: str, user: str, password: str, uri: str) -> str:
    realm = re.search(r'realm="([^"]+)"', challenge)
    nonce = re.search(r'nonce="([^"]+)"', challenge)
    assert realm and nonce
    h = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731 (RFC 2617 digest)
    ha1, ha2, cnonce = h(f"{user}:{realm.group(1)}:{password}"), h(f"REGISTER:{uri}"), "abc123"
    response = h(f"{ha1}:{nonce.group(1)}:00000001:{cnonce}:auth:{ha2}")
    return (
        f'Authorization: Digest username="{user}", realm="{realm.group(1)}", '
        f'nonce="{nonce.group(1)}", uri="{uri}", response="{response}", algorithm=MD5, '
        f'qop=auth, nc=00000001, cnonce="{cnonce}"\r\n'
    )


def test_sip_over_tls_registers(tls_node: tuple[SipNode, int, Path]) -> None:
    node, tls_port, ca = tls_node
    api = api_for(node.vg)
    cred = api.credential()
    SECRETS.add(cred["sip_password"])
    user = cred["sip_username"]
    context = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        local = tls.getsockname()
        via, contact = (
            f"TLS 127.0.0.1:{local[1]}",
            f"sip:{user}@127.0.0.1:{local[1]};transport=tls",
        )
        tls.sendall(_register(user, via, contact).encode())
        challenge = tls.recv(65535).decode()
        assert challenge.startswith("SIP/2.0 401"), challenge
        auth = _authorization(challenge, user, cred["sip_password"], f"sip:{DOMAIN}")
        tls.sendall(_register(user, via, contact, auth, cseq=2).encode())
        reply = tls.recv(65535).decode()
        assert reply.startswith("SIP/2.0 200"), reply
        regs = registrations(node.vg, node.vg.api_key, credential_id=cred["id"])
        assert [r["transport"] for r in regs] == ["tls"]
    api.http.close()


def test_sip_over_wss_registers(tls_node: tuple[SipNode, int, Path]) -> None:
    node, _, ca = tls_node
    api = api_for(node.vg)
    cred = api.credential()
    SECRETS.add(cred["sip_password"])
    user = cred["sip_username"]

    async def register() -> None:
        context = ssl.create_default_context(cafile=str(ca))
        url = f"wss://127.0.0.1:{node.ws_port}"
        async with websockets.connect(url, subprotocols=["sip"], ssl=context) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "sip"
            via, contact = "WSS abc.invalid", f"sip:{user}@abc.invalid;transport=ws"
            await ws.send(_register(user, via, contact))
            challenge = str(await asyncio.wait_for(ws.recv(), 5))
            assert challenge.startswith("SIP/2.0 401"), challenge
            auth = _authorization(challenge, user, cred["sip_password"], f"sip:{DOMAIN}")
            await ws.send(_register(user, via, contact, auth, cseq=2))
            reply = str(await asyncio.wait_for(ws.recv(), 5))
            assert reply.startswith("SIP/2.0 200"), reply
            regs = registrations(node.vg, node.vg.api_key, credential_id=cred["id"])
            assert [r["transport"] for r in regs] == ["wss"]
            assert len(node.contacts(user)) == 1

    asyncio.run(register())
    api.http.close()
