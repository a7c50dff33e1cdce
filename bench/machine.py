"""What the machine was doing while the bench ran, read back rather than assumed.

``taskset`` asks for a core; whether a process ran there (and whether something else was busy)
is only known by reading ``/proc``: the CPU model, load averages before and after, the other
processes that used CPU, and, sampled while each bench process lived, the cores its threads were
last seen on (``/proc/<pid>/task/<tid>/stat`` field 39).
"""

from __future__ import annotations

import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

__all__ = [
    "WATCH",
    "CoreWatch",
    "busy_processes",
    "cpu_model",
    "cpu_seconds",
    "facts",
    "load_average",
    "tree_cpu_seconds",
]

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _stat_fields(path: Path) -> list[str] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; the rest follows its closing parenthesis
    return text[text.rindex(")") + 2 :].split()


def _ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def cpu_seconds(pid: int) -> float:
    """CPU time ``pid`` has used so far (0 once it is gone)."""
    fields = _stat_fields(Path(f"/proc/{pid}/stat"))
    return 0.0 if fields is None else _ticks(fields) / _TICK


def process_tree(pid: int) -> dict[int, list[str]]:
    """``pid`` and every process under it (a node's workers and their wardens), with their
    ``/proc/<pid>/stat`` fields."""
    parents: dict[int, int] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(entry / "stat")) is not None:
            parents[int(entry.name)] = int(fields[1])
            stats[int(entry.name)] = fields
    tree, grown = {pid}, True
    while grown:
        below = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= below
        grown = bool(below)
    return {p: stats[p] for p in tree if p in stats}


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and every process under it."""
    return sum(_ticks(fields) for fields in process_tree(pid).values()) / _TICK


def tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and every process under it (field 24: pages)."""
    return sum(int(f[21]) for f in process_tree(pid).values()) * _PAGE // 1024


def _cpu_ticks() -> dict[int, tuple[str, int]]:
    seen = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry / "stat")
        if fields is None:
            continue
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        seen[int(entry.name)] = (name, _ticks(fields))
    return seen


def busy_processes(seconds: float = 1.0, threshold: float = 2.0) -> list[str]:
    """Processes other than this one that used more than ``threshold`` % of a core."""
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    busy = []
    for pid, (name, ticks) in after.items():
        if pid == os.getpid() or pid not in before:
            continue
        share = (ticks - before[pid][1]) / _TICK / seconds * 100
        if share > threshold:
            busy.append((share, f"{name} ({pid}) {share:.0f}%"))
    return [text for _, text in sorted(busy, reverse=True)]


class CoreWatch:
    """Samples, every 100 ms, which core each thread of each tracked process last ran on
    (from the load generator's core: the bench process is pinned there, off the servers')."""

    def __init__(self) -> None:
        self._pids: dict[int | tuple[int, int], str] = {}
        self._cores: dict[str, set[int]] = {}
        self._allowed: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def track(self, role: str, pid: int, tid: int | None = None) -> None:
        """Every thread of ``pid``, or only its thread ``tid`` (this process's main thread:
        its other threads, this watch among them, are not pinned)."""
        with self._lock:
            self._pids[pid if tid is None else (pid, tid)] = role
        self._allowed.setdefault(role, set()).add(_allowed(pid if tid is None else tid))

    def untrack(self, pid: int, tid: int | None = None) -> None:
        """Stop watching: a thread pinned for a while is not charged with where it runs after."""
        with self._lock:
            self._pids.pop(pid if tid is None else (pid, tid), None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, dict[str, Any]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        return {
            role: {
                "ran_on": sorted(cores),
                "allowed": sorted(self._allowed.get(role, set()) - {""}),
            }
            for role, cores in sorted(self._cores.items())
        }

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                tracked = list(self._pids.items())
            for pid, role in tracked:
                cores = _threads_cores(pid)
                with self._lock:
                    if cores is None:
                        self._pids.pop(pid, None)
                    elif pid in self._pids:  # read before any untrack: still where it was pinned
                        self._cores.setdefault(role, set()).update(cores)


def _threads_cores(pid: int | tuple[int, int]) -> set[int] | None:
    if isinstance(pid, tuple):
        tids = [Path(f"/proc/{pid[0]}/task/{pid[1]}")]
        if not tids[0].exists():
            return None
    else:
        try:
            tids = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            return None
    cores = set()
    for tid in tids:
        fields = _stat_fields(tid / "stat")
        if fields is not None and fields[0] != "Z":
            cores.add(int(fields[36]))  # field 39 of the whole line: the CPU last run on
    return cores


def _allowed(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


WATCH = CoreWatch()


def facts() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "load_average": load_average(),
        "busy_processes": busy_processes(),
    }
