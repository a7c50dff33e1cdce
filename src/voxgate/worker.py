"""``python -m voxgate.worker READY_FILE``: one gateway worker of ``voxgate serve --workers``.

Started by the parent through the warden (``workers.py``) with its settings in the environment;
it serves the signaling port beside its siblings and writes READY_FILE (its node id and pid)
once it listens, which is how the parent knows it is up.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
from dataclasses import replace
from pathlib import Path

from voxgate.config import Settings
from voxgate.domain.errors import ConfigurationError
from voxgate.logging import configure_logging
from voxgate.serve_command import run_loop
from voxgate.server import serve
from voxgate.workers import WORKER_ENV

__all__ = ["main"]


async def _serve(settings: Settings, ready_file: Path) -> None:
    ready = asyncio.Event()
    serving = asyncio.create_task(serve(settings, ready=ready))
    listening = asyncio.create_task(ready.wait())
    await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
    if ready.is_set():
        partial = ready_file.with_suffix(".tmp")
        partial.write_text(json.dumps({"node_id": settings.node_id, "pid": os.getpid()}))
        partial.rename(ready_file)  # whole or not at all: the parent polls for it
    else:
        listening.cancel()
    await serving


def main(argv: list[str]) -> int:
    given = os.environ.pop(WORKER_ENV, None)
    if given is None or len(argv) != 1:
        print("voxgate.worker is started by `voxgate serve --workers N`", file=sys.stderr)
        return 2
    settings = Settings.from_json(given)
    # a node id of its own at every start: its predecessor's registrations stay dead
    settings = replace(settings, node_id=f"{settings.node_id}.{secrets.token_hex(3)}")
    configure_logging(settings.log_level)
    try:
        run_loop(_serve(settings, Path(argv[0])))
    except OSError as exc:
        print(
            f"error: worker {settings.worker} cannot start: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    except ConfigurationError as exc:
        print(f"error: worker {settings.worker}: {exc.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
