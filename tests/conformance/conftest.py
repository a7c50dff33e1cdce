"""Real ``@telnyx/webrtc`` 2.27.10 in Debian's Chromium, driven by Playwright; pages on loopback."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http import cookies
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conformance.sip_pages import mount_sip_pages
from tests.harness import ARTIFACTS, Voxgate

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SDK_LIB = HERE / "node_modules" / "@telnyx" / "webrtc" / "lib"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]
STATIC = {
    "/harness.html": (HERE / "harness.html", "text/html"),
    "/seed.html": (HERE / "seed.html", "text/html"),
    "/sdk/bundle.js": (SDK_LIB / "bundle.js", "text/javascript"),
    "/sdk/bundle.mjs": (SDK_LIB / "bundle.mjs", "text/javascript"),
    **{
        f"/voxgate/{name}": (REPO / "clients" / "browser" / name, "text/javascript")
        for name in ("voxgate-telnyx.mjs", "share-tabs.mjs")
    },
}


class PageServer:
    """Serves the test pages and plays "your backend": /api/telnyx-token mints for the
    credential named by the ``vx_cred`` cookie, as the seed's backend does per user."""

    def __init__(self) -> None:
        self.voxgate: Voxgate | None = None
        self.mounts: dict[str, Path] = {}  # URL prefix -> directory (a test's own files)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/api/telnyx-token":
                    return self._token()
                found = STATIC.get(path) or outer.mounted(path)
                if found is None:
                    self.send_error(404)
                    return
                file, ctype = found
                body = file.read_bytes()
                self._reply(200, body, ctype)

            def _token(self) -> None:
                jar = cookies.SimpleCookie(self.headers.get("cookie", ""))
                cred = jar.get("vx_cred")
                vg = outer.voxgate
                if cred is None or vg is None:
                    self._reply(401, b'{"error":"Not authenticated"}', "application/json")
                    return
                r = httpx.post(
                    f"{vg.base_url}/telephony_credentials/{cred.value}/token",
                    headers={"Authorization": f"Bearer {vg.api_key}"},
                )
                if r.status_code != 201:
                    self._reply(500, b'{"error":"Token generation failed"}', "application/json")
                    return
                self._reply(200, r.content, "text/plain", {"Cache-Control": "no-store"})

            def _reply(
                self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)  # a tab closed while its request was answered

            def log_message(self, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def mounted(self, path: str) -> tuple[Path, str] | None:
        for prefix, root in self.mounts.items():
            if path.startswith(prefix) and ".." not in path:
                file = root / path.removeprefix(prefix)
                if file.is_file():
                    types = {".mjs": "text/javascript", ".js": "text/javascript"}
                    return file, types.get(file.suffix, "text/html")
        return None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.fixture(scope="session")
def pages() -> Iterator[PageServer]:
    ps = PageServer()
    yield ps
    ps.close()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Package-scoped: sync Playwright runs an event loop in this thread while it is open,
    which must be gone before any asyncio test elsewhere runs."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian chromium is missing: `make test` installs it (apt-get install chromium)"
        )
    if not SDK_LIB.exists():
        pytest.fail("@telnyx/webrtc is missing: `make test` runs npm ci in tests/conformance")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def sip_pages(pages: PageServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """sip.js's and JsSIP's pages, next to the SDK's (tests/conformance/sip_pages.py)."""
    yield from mount_sip_pages(pages, tmp_path_factory.mktemp("sip-pages"))


@pytest.fixture
def open_page(
    browser: Browser, pages: PageServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Page]]:
    contexts = []

    def _open(
        vg: Voxgate,
        path: str = "/harness.html",
        *,
        user_agent: str | None = None,
        credential: str | None = None,
        tab_of: Page | None = None,
        insecure: bool = False,
    ) -> Page:
        """A page in a browser of its own, or (``tab_of``) another tab of that page's browser:
        same origin storage, cookies, locks and broadcast channels. ``insecure``: it takes a
        test CA's certificates (wss:// to a node with a certificate of tests/certs.py)."""
        pages.voxgate = vg
        if tab_of is not None:
            ctx = tab_of.context
        else:
            options: dict[str, Any] = {"ignore_https_errors": insecure}
            if user_agent:
                options["user_agent"] = user_agent
            ctx = browser.new_context(**options)
            contexts.append(ctx)
        if credential:
            ctx.add_cookies([{"name": "vx_cred", "value": credential, "url": pages.origin}])
        page = ctx.new_page()
        page.goto(pages.origin + path)
        return page

    yield _open
    failed = getattr(request.node, "rep_call", None)
    for i, ctx in enumerate(contexts):
        if failed is not None and failed.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            for j, p in enumerate(ctx.pages):
                p.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}-{j}.png"))
        ctx.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, "rep_" + rep.when, rep)
