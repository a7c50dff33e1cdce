"""The browser helper as an npm package: ``npm pack`` works, the tarball installs, its types
check against the real SDK's, and a page imports it by name and logs in through it."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.conformance.conftest import HERE, REPO, PageServer
from tests.conformance.test_browser import wait_event
from tests.harness import Voxgate
from tests.rtc.conftest import api_for

HELPER = REPO / "clients" / "browser"
TSC = HERE / "node_modules" / ".bin" / "tsc"
SDK_TYPES = HERE / "node_modules" / "@telnyx" / "webrtc" / "lib" / "src" / "index.d.ts"

USAGE = """
import { TelnyxRTC } from '@telnyx/webrtc';
import { install, type InstallOptions } from 'voxgate-telnyx';

const options: InstallOptions = {
  shareAcrossTabs: true,
  getToken: () => fetch('/api/telnyx-token').then((r) => r.text()),
};
install(TelnyxRTC, options);
const client = new TelnyxRTC({ login_token: 'x.y.z' });
client.on('telnyx.warning', async (w: { code?: number }) => {
  if (w.code === 34001) await client.updateToken(await (options.getToken as () => string)());
});
"""

PAGE = """<!doctype html><meta charset="utf-8">
<script type="importmap">
{"imports": {"@telnyx/webrtc": "/sdk/bundle.mjs",
             "voxgate-telnyx": "/app/node_modules/voxgate-telnyx/voxgate-telnyx.mjs"}}
</script>
<script type="module">
  import { TelnyxRTC } from '@telnyx/webrtc';
  import { install } from 'voxgate-telnyx';
  install(TelnyxRTC, { host: new URLSearchParams(location.search).get('host') });
  window.vxEvents = [];
  window.vxGo = (token) => {
    const client = new TelnyxRTC({ login_token: token });
    client.on('telnyx.ready', () => window.vxEvents.push({ name: 'telnyx.ready' }));
    client.connect();
    window.client = client;
  };
</script>
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An app directory with the packed helper installed from its tarball."""
    work = tmp_path_factory.mktemp("helper")
    packed = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(work)],
        cwd=HELPER,
        capture_output=True,
        text=True,
        check=True,
    )
    tarball = work / json.loads(packed.stdout)[0]["filename"]
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    expected = {"voxgate-telnyx.mjs", "share-tabs.mjs", "voxgate-telnyx.d.ts", "package.json"}
    assert {f"package/{n}" for n in expected} <= names
    app = work / "app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "app", "private": true}')
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--omit=peer", str(tarball)],
        cwd=app,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (app / "node_modules" / "voxgate-telnyx" / "share-tabs.mjs").is_file()
    yield app


def _tsc(app: Path, source: str) -> subprocess.CompletedProcess[str]:
    (app / "use.ts").write_text(source)
    config = {
        "compilerOptions": {
            "strict": True,
            "noEmit": True,
            "module": "esnext",
            "moduleResolution": "bundler",
            "target": "es2020",
            "lib": ["es2020", "dom"],
            "skipLibCheck": True,
            "types": [],
            "paths": {"@telnyx/webrtc": [str(SDK_TYPES)]},
        },
        "files": ["use.ts"],
    }
    (app / "tsconfig.json").write_text(json.dumps(config))
    return subprocess.run(
        [str(TSC), "-p", str(app)], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_types_check_against_the_real_sdk(installed: Path) -> None:
    ok = _tsc(installed, USAGE)
    assert ok.returncode == 0, ok.stdout
    wrong = _tsc(installed, USAGE.replace("shareAcrossTabs: true", "shareAcrossTabs: 'yes'"))
    assert wrong.returncode != 0 and "use.ts(6," in wrong.stdout  # the shareAcrossTabs line
    wrong = _tsc(installed, USAGE + "\nclient.updateToken(42);\n")
    assert wrong.returncode != 0 and "'number' is not assignable" in wrong.stdout


def test_a_page_imports_the_package_by_name(
    installed: Path, server: Voxgate, open_page: Callable[..., Page], pages: PageServer
) -> None:
    (installed / "page.html").write_text(PAGE)
    pages.mounts["/app/"] = installed
    try:
        page = open_page(server, f"/app/page.html?host={server.rtc_url}")
        page.wait_for_function("() => typeof window.vxGo === 'function'")
        api = api_for(server)
        page.evaluate("t => window.vxGo(t)", api.token(api.credential()["id"]))
        wait_event(page, "telnyx.ready")
        assert page.evaluate("() => typeof window.client.updateToken") == "function"
    finally:
        pages.mounts.pop("/app/", None)
