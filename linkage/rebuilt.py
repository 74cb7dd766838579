"""A value rebuilt at most once per period, however many threads ask for it.

Why: the pages a person reads (`/status`, `/catalog`) scan the index that the lookups share; with
this in front of the scan, a crowd of readers costs one scan per period, and every reader of one
period sees the same answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Rebuilt(Generic[T]):
    """`build(now_ms)` runs on the first `get()` and again once `period_s` has passed since."""

    def __init__(self, build: Callable[[int], T], period_s: float, clock: Callable[[], float] = time.time) -> None:
        self.build = build
        self.period_s = period_s
        self.clock = clock
        self._lock = threading.Lock()
        self._built: tuple[int, T] | None = None

    def get(self) -> T:
        with self._lock:
            now = self.clock()
            if self._built is None or now - self._built[0] / 1000 >= self.period_s:
                now_ms = int(now * 1000)
                self._built = (now_ms, self.build(now_ms))
            return self._built[1]
