"""The real SDK in Chromium through nginx (the documented configuration): wss:// to nginx,
which ends TLS and forwards the socket; two pages log in and talk, audio both ways."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser

from tests.conformance.conftest import CHROMIUM, CHROMIUM_ARGS, PageServer
from tests.conformance.test_browser import start, wait_event
from tests.conformance.test_media import audio_flows, wait_state
from tests.harness import Voxgate
from tests.nginx import Nginx, run_nginx
from tests.rtc.conftest import api_for

pytestmark = pytest.mark.media


def spki_hash(cert: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: base64(sha256(SPKI))."""
    public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_two_browsers_call_through_nginx(
    make_server: type[Voxgate], browser: Browser, pages: PageServer, tmp_path: Path
) -> None:
    vg = make_server(extra_args=["--trusted-proxies", "127.0.0.1/32"]).start()
    with run_nginx(tmp_path, vg.api_port, vg.rtc_port) as nginx:
        # The test CA is not in Chromium's store: this browser trusts nginx's key, and only it
        # (WebSockets do not honour a context's ignore_https_errors).
        trusting = browser.browser_type.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_hash(nginx.cert)}"],
            headless=True,
        )
        try:
            _call(vg, nginx, trusting, pages)
        finally:
            trusting.close()


def _call(vg: Voxgate, nginx: Nginx, trusting: Browser, pages: PageServer) -> None:
    api = api_for(vg)
    conn = api.connection()
    alice_cred, bob_cred = api.credential(conn["id"]), api.credential(conn["id"])
    alice, bob = trusting.new_page(), trusting.new_page()
    for page in (alice, bob):
        page.goto(pages.origin + "/harness.html")
    for page, cred in ((alice, alice_cred), (bob, bob_cred)):
        start(page, vg, host=nginx.wss, login_token=api.token(cred["id"]))
        wait_event(page, "telnyx.ready")
    sockets = alice.evaluate("() => window.vxSockets.map(s => s.url)")
    assert sockets and all(url.startswith(nginx.wss) for url in sockets)
    bob.evaluate("() => { window.vxAutoAnswer = true; }")
    alice.evaluate("dest => window.vxDial(dest)", bob_cred["sip_username"])
    wait_state(alice, "active")
    audio_flows(alice)
    audio_flows(bob)
    status = api.registration(conn["id"])
    assert status["status"] == "Registered" and status["ip_address"] == "127.0.0.1"
