"""``make bench``: every figure against its same-run baseline, interleaved and repeated; a line
per figure, then the reports, then README's Performance table rewritten from them.

Servers run pinned to core 0 and the load generator to core 1, all on loopback, every loop
bounded. ``BENCH_SCALE=0.1`` shrinks every size for a quick look; ``BENCH_REPEATS`` sets the
samples per figure (3 at least for a report README may show); ``BENCH_HOG=<figure>`` runs one
baseline sample of that figure beside a CPU hog, to watch it come out "unstable";
``BENCH_ONLY=logins,rest_tokens`` runs only the figures so named; ``BENCH_SOAK_MINUTES`` sets
the soak's length (30 at scale 1, scaled by ``BENCH_SCALE``). Only a full run (scale 1, 3
samples or more, no hog, every figure) writes ``latest.json`` and README's table.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from bench import (
    calls,
    core_figures,
    figures,
    machine,
    readme,
    report,
    rest,
    scaleout,
    sip,
    soak,
    trunks,
    workers,
)
from bench.figures import Row, Target
from bench.harness import LOAD_CORE, SCALE, settle, start_voxgate
from bench.stats import HOG, REPEATS

ONLY = [name for name in os.environ.get("BENCH_ONLY", "").split(",") if name]


def chosen(figure: Callable[..., object]) -> bool:
    return not ONLY or figure.__name__ in ONLY  # type: ignore[attr-defined]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="voxgate-bench-"))
    key = "KEYbench" + os.urandom(8).hex()
    rows: list[Row] = []

    def record(*measured: Row) -> None:
        for row in measured:
            rows.append(row)
            report.show(row)

    if (os.cpu_count() or 1) > 1:  # orchestration and sampling stay off the servers' core
        os.sched_setaffinity(0, {LOAD_CORE})
    before = machine.facts()
    print(
        f"voxgate bench on {before['host']}: {before['cpu']}, {before['cores']} cores,"
        f" scale {SCALE}, {REPEATS} samples each{f', hog on {HOG!r}' if HOG else ''}",
        flush=True,
    )
    print(f"  load average {before['load_average']}; busy: {before['busy_processes']}")
    machine.WATCH.start()
    if any(map(chosen, (*figures.FIGURES, rest.rest_tokens))):  # none: nothing to provision
        server, api, rtc = start_voxgate(work, key)
        try:
            target = Target.provisioned(work, key, server, api, rtc)
            for figure in figures.FIGURES:
                if chosen(figure):
                    settle(server.proc.pid)
                    record(figure(target))
            if chosen(rest.rest_tokens):
                settle(server.proc.pid)
                record(*rest.rest_tokens(target))
        finally:
            server.stop()
    if chosen(figures.revocation_two_nodes):
        record(figures.revocation_two_nodes(work, key))
    if chosen(sip.sip_registers):
        record(*sip.sip_registers(work, key))
    if chosen(calls.sip_calls):
        record(*calls.sip_calls(work, key))
    if chosen(trunks.trunk_calls):
        record(*trunks.trunk_calls(work, key))
    if chosen(workers.login_costs):
        record(*workers.login_costs(work, key))
    if chosen(workers.workers_rate):
        record(workers.workers_rate(work, key))
    for scale_figure in (
        scaleout.idle_memory_redis,
        scaleout.storm_workers,
        scaleout.cluster_model,
    ):
        if chosen(scale_figure):
            record(scale_figure(work, key))
    if chosen(calls.rtpengine_calls):
        record(calls.rtpengine_calls(work))
    if chosen(soak.soak):
        record(*soak.soak(work, key))
    with core_figures.pinned_here():
        main_thread = os.getpid(), threading.get_native_id()
        machine.WATCH.track("bench process (core figures)", *main_thread)
        for core_figure in core_figures.CORE_FIGURES:
            if chosen(core_figure):
                record(core_figure())
        machine.WATCH.untrack(*main_thread)
    after = machine.facts()
    facts = {
        **{k: v for k, v in before.items() if k not in ("load_average", "busy_processes")},
        "load_before": before["load_average"],
        "load_after": after["load_average"],
        "busy_before": before["busy_processes"],
        "busy_after": after["busy_processes"],
        "ran_on": machine.WATCH.stop(),
    }
    official = SCALE >= 1 and REPEATS >= 3 and not HOG and not ONLY
    as_json, as_md = report.write(rows, facts, REPEATS, official=official)
    print(f"\nwrote {as_json} and {as_md}")
    if official:
        readme.update()
        print("README.md: Performance table rewritten from it")
    else:
        print("README.md left alone: only a full-scale run of 3 samples or more, without a hog")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
