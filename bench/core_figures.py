"""Figures measured inside the bench process on the protocol core (no sockets): memory of a
detached session, the work of expiry tracking, and the timing of refused password logins.
They run pinned to the servers' core, like the servers."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.figures import Row
from bench.harness import SERVER_CORE, n
from bench.stats import REPEATS, Measured, interleave

__all__ = ["CORE_FIGURES", "pinned_here"]


@contextlib.contextmanager
def pinned_here(core: int = SERVER_CORE) -> Iterator[None]:
    import os

    before = os.sched_getaffinity(0)
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def detached_memory() -> Row:
    """What a detached session (socket gone, one call waiting) keeps in the core, against a
    live idle one: traced allocations of 10,000 sessions each way, per session."""
    import tracemalloc

    from voxgate.config import Settings
    from voxgate.domain.records import Grant
    from voxgate.rtc import Session

    cfg = Settings().session_config("bench")
    t0 = 1_000_000.0

    def per_session(detach: bool) -> float:
        count = n(10_000)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        kept = []
        for i in range(count):
            s = Session(cfg, "198.51.100.1", i, t0)
            s.receive(_request("login", {"login_token": "t"}), t0)
            grant = Grant("token", f"cred:c{i}", "conn", f"c{i}", "gencred", t0 + 86_400)
            s.login_result("1", grant, t0)
            dialog = {"callID": f"call{i}", "destination_number": "bob"}
            s.receive(_request("telnyx_rtc.invite", {"sdp": "v=0", "dialogParams": dialog}), t0)
            if detach:
                s.lost(t0 + 1, clean=False)
            kept.append(s)
        used = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        return used / count / 1024

    detached, live = interleave(
        "detached memory", lambda: per_session(False), lambda: per_session(True)
    )
    return Row(
        "detached session memory (core)",
        detached,
        "KB",
        live,
        "KB live",
        "<= live + 2 KB",
        detached.median <= live.median + 2,
        f"{n(10_000)} sessions each, one call each; sockets not included (a detached one has none)",
    )


def _request(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": "1", "method": method, "params": params}


class _Deadline(float):
    """A deadline that counts how often the heap orders it: the heap's work, not its time."""

    compared = 0

    def __lt__(self, other: float) -> bool:
        _Deadline.compared += 1
        return float(self) < float(other)


def _heap_work(size: int, seed: int) -> tuple[float, float]:
    """Schedule ``size`` sessions' distinct expiries, re-schedule half (refreshes), fire all:
    comparisons per session, and microseconds per session (plain floats, untraced)."""
    from voxgate.gateway.timers import DeadlineHeap

    rng = random.Random(seed)
    deadlines = [1000.0 + rng.random() * 86_400 for _ in range(size)]

    def run(wrap: type[float]) -> None:
        heap: DeadlineHeap[int] = DeadlineHeap()
        for i, d in enumerate(deadlines):
            heap.schedule(i, wrap(d))
        for i in range(0, size, 2):
            heap.schedule(i, wrap(deadlines[i] + 3600))
        fired, now = 0, 1000.0
        while len(heap):
            now += 3600
            fired += len(heap.pop_due(now))
        assert fired == size

    _Deadline.compared = 0
    run(_Deadline)
    per_session = _Deadline.compared / size
    t0 = time.perf_counter()
    run(float)
    return per_session, (time.perf_counter() - t0) / size * 1e6


def expiry_tracking() -> Row:
    """O(log n) shown by counting: comparisons per session at 10k and 100k sessions (the
    heap's work grows as log n: x1.25 for 10x the sessions; a list scan would grow x10)."""
    small_n, large_n = n(10_000), n(100_000)
    small = [_heap_work(small_n, seed) for seed in range(3)]
    large = [_heap_work(large_n, seed) for seed in range(3)]
    at_small = Measured(tuple(c for c, _ in small))
    at_large = Measured(tuple(c for c, _ in large))
    log_ratio = math.log(large_n) / math.log(small_n)
    growth = at_large.median / at_small.median
    timing = (
        Measured(tuple(us for _, us in large)).median
        / Measured(tuple(us for _, us in small)).median
    )
    return Row(
        "expiry tracking (heap comparisons/session)",
        at_large,
        f"@{large_n}",
        at_small,
        f"@{small_n}",
        f"growth <= log ratio x1.1 ({log_ratio * 1.1:.2f}); linear: x10",
        growth <= log_ratio * 1.1,
        f"growth x{growth:.2f}, log ratio {log_ratio:.2f}; time per session grew x{timing:.2f}"
        " (information: cache misses)",
    )


def password_timing() -> Row:
    """Median time of a refused password login: unknown user vs wrong password."""

    async def run() -> tuple[Measured, Measured]:
        from voxgate.auth.throttle import LoginThrottle
        from voxgate.config import Settings
        from voxgate.domain.errors import LoginFailed
        from voxgate.runtime import open_runtime
        from voxgate.services.schemas import ConnectionCreate, CredentialCreate

        work = Path(tempfile.mkdtemp(prefix="voxgate-pw-"))
        settings = Settings(
            database_url=f"sqlite+aiosqlite:///{work}/pw.db", secret_file=work / "s"
        )
        async with open_runtime(settings) as rt:
            conn, _ = await rt.control.create_connection(ConnectionCreate(connection_name="pw"))
            cred, _ = await rt.control.create_credential(CredentialCreate(connection_id=conn.id))

            async def median_ms(user: str | None) -> float:
                times = []
                for i in range(n(60)):
                    rt.logins.throttle = LoginThrottle()
                    t0 = time.perf_counter()
                    with contextlib.suppress(LoginFailed):
                        await rt.logins.password_login(
                            user or f"gencredNo{i}", "bad-password", "198.51.100.1", time.time()
                        )
                    times.append((time.perf_counter() - t0) * 1000)
                return sorted(times)[len(times) // 2]

            wrong, unknown = [], []
            for _ in range(REPEATS):  # interleaved, as everywhere
                wrong.append(await median_ms(cred.sip_username))
                unknown.append(await median_ms(None))
        shutil.rmtree(work, ignore_errors=True)
        return Measured(tuple(unknown)), Measured(tuple(wrong))

    unknown, wrong = asyncio.run(run())
    ratio = unknown.median / wrong.median
    return Row(
        "password login: unknown vs wrong user",
        unknown,
        "ms median",
        wrong,
        "ms wrong pw",
        "ratio ~1",
        0.8 < ratio < 1.25,
        "same argon2 work on both paths",
    )


CORE_FIGURES = (detached_memory, expiry_tracking, password_timing)
