"""Browser SIP clients' test pages: sip.js 0.21's ``SimpleUser`` (set up as Telnyx's demo
app's SIP.js tab does: register, call, answer, hang up) and JsSIP, served next to the SDK's
pages (the ``sip_pages`` fixture in conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.conformance.conftest import PageServer

HERE = Path(__file__).resolve().parent

NODE_MODULES = HERE / "node_modules"
SIPJS = NODE_MODULES / "sip.js"  # ES modules with relative imports: the page imports lib/
# JsSIP's npm package is CommonJS with no browser build: bundled here, as an app's build would
JSSIP_MAIN = NODE_MODULES / "jssip" / "lib-es5" / "JsSIP.js"
ESBUILD = NODE_MODULES / ".bin" / "esbuild"

SIPJS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>sip.js SimpleUser</title>
<script type="module">
  import { Web } from '/sipjs/lib/index.js';
  window.vxStates = [];
  window.vxLog = [];
  // As Telnyx's webrtc-demo-js SIP.js tab (@telnyx/rtc-sipjs-simple-user's TelnyxDevice) builds it
  const note = (s) => window.vxStates.push(s);
  const failed = (e) => note(`failed:${e && e.message}`);
  window.vxSipJs = (o) => {
    const user = new Web.SimpleUser(o.server, {
      aor: o.aor,
      delegate: {
        onServerConnect: () => note('connected'),
        onServerDisconnect: () => note('disconnected'),
        onRegistered: () => note('registered'),
        onUnregistered: () => note('unregistered'),
        onCallReceived: () => {
          note('incoming');
          if (window.vxAutoAnswer) user.answer().catch(failed);
        },
        onCallAnswered: () => note('answered'),
        onCallHangup: () => note('hangup'),
      },
      media: {
        constraints: { audio: true, video: false },
        remote: { audio: document.getElementById('remote') },
      },
      userAgentOptions: {
        displayName: 'Phone User',
        authorizationUsername: o.username,
        authorizationPassword: o.password,
        logLevel: 'error',  // the demo's default; our connector keeps warnings too
        logBuiltinEnabled: false,
        logConnector: (level, category, label, content) => {
          if (level === 'warn' || level === 'error') window.vxLog.push(`${category}: ${content}`);
        },
      },
    });
    window.vxUser = user;
    user.connect().then(() => user.register()).catch(failed);
    return true;
  };
  window.vxUnregister = () => { window.vxUser.unregister().catch(failed); };
  window.vxAutoAnswer = false;
  window.vxCall = (target) => { window.vxUser.call(target).catch(failed); };
  window.vxHangup = () => { window.vxUser.hangup().catch(failed); };
  window.vxBytesIn = async () => {  // audio bytes the call's peer connection received
    const session = window.vxUser.session;
    const pc = session && session.sessionDescriptionHandler
      && session.sessionDescriptionHandler.peerConnection;
    let received = 0;
    if (pc) {
      (await pc.getStats()).forEach((r) => {
        if (r.type === 'inbound-rtp' && (r.kind || r.mediaType) === 'audio') {
          received += r.bytesReceived || 0;
        }
      });
    }
    return received;
  };
  window.vxReady = true;
</script>
</head><body><h1>sip.js</h1><audio id="remote" autoplay></audio></body></html>
"""

JSSIP_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>JsSIP</title>
<script src="/sip-pages/jssip.js"></script>
<script>
  window.vxStates = [];
  window.vxJsSip = (o) => {
    const ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(o.server)],
      uri: o.uri,
      password: o.password,
    });
    for (const name of ['connected', 'disconnected', 'registered', 'unregistered',
                        'registrationFailed']) {
      const failed = name === 'registrationFailed';
      ua.on(name, (e) => window.vxStates.push(failed ? `failed:${e && e.cause}` : name));
    }
    window.vxUA = ua;
    ua.start();  // register: true is JsSIP's default
    return JsSIP.version;
  };
  window.vxReady = typeof JsSIP === 'object';
</script>
</head><body><h1>JsSIP</h1></body></html>
"""


def mount_sip_pages(pages: PageServer, root: Path) -> Iterator[None]:
    """The two pages and JsSIP's browser bundle under /sip-pages/ (built into ``root``),
    sip.js's modules under /sipjs/, until the generator is closed."""
    for need in (SIPJS / "lib" / "index.js", JSSIP_MAIN, ESBUILD):
        if not need.exists():
            pytest.fail(f"{need} is missing: `make test` runs npm ci in tests/conformance")
    built = subprocess.run(
        [
            str(ESBUILD),
            str(JSSIP_MAIN),
            "--bundle",
            "--format=iife",
            "--global-name=JsSIP",
            "--platform=browser",
            f"--outfile={root / 'jssip.js'}",
            "--log-level=warning",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    (root / "sipjs.html").write_text(SIPJS_PAGE)
    (root / "jssip.html").write_text(JSSIP_PAGE)
    pages.mounts["/sip-pages/"] = root
    pages.mounts["/sipjs/"] = SIPJS
    yield
    pages.mounts.pop("/sip-pages/", None)
    pages.mounts.pop("/sipjs/", None)
