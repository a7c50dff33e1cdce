"""``voxgate serve --workers N``: N gateway processes on one signaling port, one node outside.

The workers share the port with ``SO_REUSEPORT`` rather than through a parent that accepts and
hands sockets over: the kernel spreads new connections over the workers' listeners with no hop
through a parent (which would be one core again for every handshake, and a single point of
failure), and a worker that dies leaves the group by itself. The price: connections still
waiting in a dying worker's accept queue are reset, and the SDK reconnects as after any drop.

Inside, each worker is a cluster member on the shared Redis bus, under a node id of its own
that is new at every start: a restarted worker must not revive its dead predecessor's
registrations; its clients reattach their calls as after the loss of any node. The workers run
behind the warden that keeps Kamailio (``sip/warden.py``): one that dies is restarted, and the
end of voxgate, even a ``kill -9``, ends them all. The parent keeps what there is one of: the
schema migration, the bootstrap key, the REST API and the banner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from voxgate.config import Settings
from voxgate.sip.engines import Engine

__all__ = ["DRAIN", "WORKER_ENV", "WorkerPool"]

WORKER_ENV = "VOXGATE_WORKER_SETTINGS"  # the worker's settings, as JSON (never in its argv)
DRAIN = 5.0  # seconds a stopping worker has to close its sockets before it is killed


class WorkerPool:
    def __init__(self, settings: Settings, count: int, node_id: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="voxgate-workers-"))
        self.members: dict[int, dict[str, Any]] = {}  # number -> its node id and pid, as started
        env = {k: v for k, v in os.environ.items() if k != "VOXGATE_BOOTSTRAP_API_KEY"}
        self.engines = []
        for number in range(1, count + 1):
            mine = replace(
                settings,
                role="rtc",  # the REST API stays in the parent
                worker=number,
                workers="1",
                node_id=f"{node_id}-w{number}",
                migrate=False,  # the parent did
                bootstrap_api_key=None,  # the parent did
            )
            ready_file = self._dir / f"{number}.json"
            self.engines.append(
                Engine(
                    f"worker {number}",
                    [sys.executable, "-m", "voxgate.worker", str(ready_file)],
                    None,  # its log lines go where voxgate's go
                    partial(self._ready, number, ready_file),
                    env={**env, WORKER_ENV: mine.to_json()},
                    grace=DRAIN,
                )
            )

    async def _ready(self, number: int, ready_file: Path) -> bool:
        return self._take(number, ready_file)  # a few bytes on the local disk: no thread

    def _take(self, number: int, ready_file: Path) -> bool:
        """A worker writes its file once it listens; taken (and removed) here, so that the
        next start of the same worker is waited for afresh."""
        try:
            self.members[number] = json.loads(ready_file.read_text())
        except (OSError, ValueError):
            return False
        ready_file.unlink()
        return True

    async def start(self) -> None:
        """Every worker listening, or ``ConfigurationError`` (and none left running)."""
        try:
            await asyncio.gather(*(engine.start(timeout=30.0) for engine in self.engines))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Each worker drains (its clients hear a going-away close) and exits."""
        await asyncio.gather(*(engine.stop() for engine in self.engines))
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)

    def banner(self) -> list[str]:
        pids = ", ".join(str(m["pid"]) for _, m in sorted(self.members.items()))
        return [f"  workers:    {len(self.engines)} on the signaling port (pids {pids})"]
