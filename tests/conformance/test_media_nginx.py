"""The real SDK in Chromium through nginx (the documented configuration): wss:// to nginx,
which ends TLS and forwards the socket; two pages log in and talk, audio both ways."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, Page

from tests.conformance.conftest import CHROMIUM, CHROMIUM_ARGS, PageServer
from tests.conformance.test_media import _call_between_pages
from tests.harness import Voxgate
from tests.nginx import run_nginx
from tests.rtc.conftest import api_for

pytestmark = pytest.mark.media


def spki_hash(cert: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: base64(sha256(SPKI))."""
    public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@contextmanager
def trusting_browser(browser: Browser, cert: Path) -> Iterator[Browser]:
    """A Chromium that trusts this certificate's key, and only it: the test CA is not in its
    store, and WebSockets do not honour a context's ignore_https_errors."""
    trusting = browser.browser_type.launch(
        executable_path=CHROMIUM,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_hash(cert)}"],
        headless=True,
    )
    try:
        yield trusting
    finally:
        trusting.close()


def pages_of(trusting: Browser, pages: PageServer) -> Callable[[Voxgate], Page]:
    """``open_page`` for that browser: the test harness in a page of its own."""

    def open_page(_vg: Voxgate) -> Page:
        page = trusting.new_page()
        page.goto(pages.origin + "/harness.html")
        return page

    return open_page


def test_two_browsers_call_through_nginx(
    make_server: type[Voxgate], browser: Browser, pages: PageServer, tmp_path: Path
) -> None:
    vg = make_server(extra_args=["--trusted-proxies", "127.0.0.1/32"]).start()
    with (
        run_nginx(tmp_path, vg.api_port, vg.rtc_port) as nginx,
        trusting_browser(browser, nginx.cert) as trusting,
    ):
        through = nginx.wss
        alice, _bob, alice_cred = _call_between_pages(
            vg, pages_of(trusting, pages), alice_host=through, bob_host=through
        )  # audio both ways
        sockets = alice.evaluate("() => window.vxSockets.map(s => s.url)")
        assert sockets and all(url.startswith(nginx.wss) for url in sockets)
        status = api_for(vg).registration(alice_cred["connection_id"])
        assert status["status"] == "Registered" and status["ip_address"] == "127.0.0.1"
