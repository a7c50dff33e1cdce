"""``python -m bench.profiled OUT voxgate-args...``: voxgate with cProfile switched on by SIGUSR1
and written to OUT by SIGUSR2, so the profile holds the load and not the start-up (which,
profiled from the first line, was half imports and compiling)."""

from __future__ import annotations

import cProfile
import signal
import sys

from voxgate.cli import main

if __name__ == "__main__":
    out = sys.argv.pop(1)
    profile = cProfile.Profile()

    def dump() -> None:
        profile.disable()
        profile.dump_stats(out)

    signal.signal(signal.SIGUSR1, lambda *_: profile.enable())
    signal.signal(signal.SIGUSR2, lambda *_: dump())
    main()
