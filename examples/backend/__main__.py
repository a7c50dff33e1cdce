"""``make demo``: voxgate and the demo backend together, on loopback."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time

import httpx
import uvicorn

from examples.backend.app import DemoConfig, create_demo


def main() -> None:
    api_port, rtc_port = (
        int(os.environ.get("VOXGATE_API_PORT", "8000")),
        int(os.environ.get("VOXGATE_RTC_PORT", "8001")),
    )
    demo_port = int(os.environ.get("DEMO_PORT", "3000"))
    key = os.environ.get("VOXGATE_BOOTSTRAP_API_KEY") or "KEYdemo" + secrets.token_urlsafe(24)
    workdir = tempfile.mkdtemp(prefix="voxgate-demo-")
    env = {**os.environ, "VOXGATE_BOOTSTRAP_API_KEY": key}
    voxgate = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable,
            "-m",
            "voxgate",
            "serve",
            "--api-port",
            str(api_port),
            "--rtc-port",
            str(rtc_port),
            "--log-level",
            "WARNING",
        ],
        cwd=workdir,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        cfg = DemoConfig(f"http://127.0.0.1:{api_port}/v2", f"ws://127.0.0.1:{rtc_port}", key)
        print(
            f"demo: open http://127.0.0.1:{demo_port}, log in as alice/alice-demo or bob/bob-demo",
            flush=True,
        )
        uvicorn.run(create_demo(cfg), host="127.0.0.1", port=demo_port, log_level="warning")
    finally:
        voxgate.terminate()
        voxgate.wait(10)


if __name__ == "__main__":
    main()
