"""``make bench``: every figure against its same-run baseline; a table, then the reports.

Servers run pinned to core 0 and the load generator to core 1 (``taskset``, when present), all on
loopback, every loop bounded. ``BENCH_SCALE=0.1`` shrinks every size for a quick look.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path

from bench import figures, report
from bench.figures import Row, Target
from bench.harness import SCALE, n, provision, start_voxgate


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="voxgate-bench-"))
    key = "KEYbench" + os.urandom(8).hex()
    rows: list[Row] = []

    def record(row: Row) -> Row:
        rows.append(row)
        report.show(row)
        return row

    print(f"voxgate bench on {platform.node()} ({os.cpu_count()} cores), scale {SCALE}", flush=True)
    server, api, rtc = start_voxgate(work, key)
    try:
        creds = provision(api, key, n(200) if SCALE < 1 else 200)
        target = Target(work, key, server, api, rtc, creds)
        for figure in figures.FIGURES:
            record(figure(target))
        one_node = record(figures.revocation(target))
    finally:
        server.stop()
    record(figures.revocation_two_nodes(work, key, one_node))
    record(figures.detached_memory())
    record(figures.expiry_tracking())
    record(figures.password_timing())
    as_json, as_md = report.write(rows)
    print(f"\nwrote {as_json} and {as_md}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
