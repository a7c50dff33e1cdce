"""The serving process caps glibc's malloc arenas (``serve_command.fewer_malloc_arenas``):
threads that allocate no longer get arenas of their own, whose pages stay resident."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import ctypes, sys, threading
from voxgate.serve_command import fewer_malloc_arenas
if sys.argv[1] == "capped":
    fewer_malloc_arenas()
libc = ctypes.CDLL("libc.so.6")
together = threading.Barrier(8)
def work():
    together.wait()  # all alive at once: an exited thread's arena is handed to the next
    kept = [ctypes.create_string_buffer(4096) for _ in range(200)]  # malloc, not pymalloc
    together.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc.fopen.restype = ctypes.c_void_p
out = libc.fopen(sys.argv[2].encode(), b"w")
libc.malloc_info(0, ctypes.c_void_p(out))
libc.fclose(ctypes.c_void_p(out))
"""


def _arenas(tmp: Path, mode: str) -> int:
    report = tmp / f"{mode}.xml"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    subprocess.run([sys.executable, "-c", PROBE, mode, str(report)], env=env, check=True)
    return report.read_text().count("<heap nr=")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's arenas")
def test_threads_share_two_arenas_once_capped(tmp_path: Path) -> None:
    assert _arenas(tmp_path, "default") > 2  # each thread its own: what the cap is for
    assert _arenas(tmp_path, "capped") <= 2  # the main one and one shared by every thread
