"""Keeps an engine's process tree from outliving voxgate, even a ``kill -9`` of voxgate.

Kamailio forks its workers; when its main process dies they are orphaned, and a SIGKILLed
parent cannot clean up. So voxgate starts this small warden (stdlib only) in a session of its
own, with a pipe on its standard input; the warden starts the engine in its process group and
waits. When the pipe closes (voxgate exited or died: the kernel closes it either way), it
ends the whole group (SIGTERM, then SIGKILL after ``GRACE`` seconds). When the engine exits
by itself, the warden ends what is left of the group and exits with the engine's status, for
voxgate to log and restart. Gateway workers (``workers.py``) run behind it too, with a longer
``--grace``: their drain closes every socket with a going-away before they exit.

Usage: ``python -m voxgate.sip.warden [--grace SECONDS] -- ENGINE ARGS...``
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time

__all__ = ["main"]

GRACE = 3.0


def _members(pgid: int) -> list[int]:
    """Every process of the group but this warden (from /proc: Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != b"Z":
            found.append(int(entry))
    return found


def _end_group(pgid: int, engine: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to every member, SIGKILL to those still there after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _members(pgid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + (grace if sig == signal.SIGTERM else 1.0)
        while time.monotonic() < deadline:
            engine.poll()  # reap our direct child so it does not linger as a zombie
            if not _members(pgid):
                return
            time.sleep(0.05)


def _grace(options: list[str]) -> float | None:
    """``[]`` or ``["--grace", SECONDS]``; None for anything else."""
    if not options:
        return GRACE
    if len(options) != 2 or options[0] != "--grace":
        return None
    try:
        seconds = float(options[1])
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    options, command = argv[:split], argv[split + 1 :]
    grace = _grace(options)
    if not command or grace is None:
        print(
            "usage: python -m voxgate.sip.warden [--grace SECONDS] -- ENGINE ARGS...",
            file=sys.stderr,
        )
        return 2
    if os.getpgrp() != os.getpid():
        os.setsid()
    pgid = os.getpgrp()
    engine = subprocess.Popen(command, stdin=subprocess.DEVNULL)  # noqa: S603
    # after the engine started (an ignored signal would be inherited): voxgate stops the
    # warden by closing the pipe, and a Ctrl-C in voxgate's terminal is voxgate's to handle
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch = selectors.DefaultSelector()
    watch.register(sys.stdin.fileno(), selectors.EVENT_READ)
    while True:
        if watch.select(timeout=0.2) and not os.read(sys.stdin.fileno(), 4096):
            _end_group(pgid, engine, grace)
            engine.wait()
            return 0
        code = engine.poll()
        if code is not None:
            _end_group(pgid, engine, grace)  # its orphaned workers
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
