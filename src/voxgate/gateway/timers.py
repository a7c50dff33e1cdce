"""One heap of deadlines for every session: O(log n) per change, one loop timer for all."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Alarm", "DeadlineHeap"]

K = TypeVar("K")


class DeadlineHeap(Generic[K]):
    """Lazy-deletion heap: re-scheduling pushes a new entry; stale ones are skipped on pop."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._current: dict[K, float] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._current)

    def schedule(self, key: K, deadline: float | None) -> None:
        if deadline is None:
            self._current.pop(key, None)
            return
        if self._current.get(key) == deadline:
            return
        self._current[key] = deadline
        heapq.heappush(self._heap, (deadline, next(self._seq), key))
        if len(self._heap) > 4 * len(self._current) + 1024:
            self._compact()

    def cancel(self, key: K) -> None:
        self._current.pop(key, None)

    def earliest(self) -> float | None:
        while self._heap and self._current.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[K]:
        due: list[K] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, key = heapq.heappop(self._heap)
            if self._current.get(key) == deadline:
                del self._current[key]
                due.append(key)
        return due

    def _compact(self) -> None:
        self._heap = [(d, next(self._seq), k) for k, d in self._current.items()]
        heapq.heapify(self._heap)


class Alarm(Generic[K]):
    """The heap behind one ``call_later`` for its earliest deadline: re-arming is a handle
    swap, no task per session (a task woken per deadline was 12 % of a reconnect storm's CPU).

    A deadline that moves later (a login ends the handshake wait) leaves the alarm where it
    was; it then fires, finds nothing due and re-arms for the next live deadline.
    """

    SLACK = 0.05  # a deadline this close to the armed one does not re-arm it

    def __init__(self, on_due: Callable[[list[K], float], None]) -> None:
        self.heap: DeadlineHeap[K] = DeadlineHeap()
        self._on_due = on_due
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def schedule(self, key: K, deadline: float | None) -> None:
        self.heap.schedule(key, deadline)
        if deadline is not None and (self._at is None or deadline < self._at - self.SLACK):
            self._arm(deadline)

    def cancel(self, key: K) -> None:
        self.heap.cancel(key)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _arm(self, at: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._at = at
        delay = max(0.0, at - time.time())
        self._handle = asyncio.get_running_loop().call_later(delay, self._ring)

    def _ring(self) -> None:
        self._handle = self._at = None
        now = time.time()
        due = self.heap.pop_due(now)
        if due:
            self._on_due(due, now)
        earliest = self.heap.earliest()
        if earliest is not None:
            self._arm(earliest)
