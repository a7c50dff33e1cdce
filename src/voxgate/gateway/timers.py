"""One heap of deadlines for every session: O(log n) per change, one task for all timers."""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

__all__ = ["DeadlineHeap"]

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
