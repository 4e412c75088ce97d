"""A hand-driven clock for the limiter tests: time moves only when a test says so."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable


class _Handle:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.t = start
        self._timers: list[tuple[float, int, Callable[[], None], _Handle]] = []
        self._seq = 0

    def now(self) -> float:
        return self.t

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle()
        self._seq += 1
        heapq.heappush(self._timers, (self.t + delay, self._seq, callback, handle))
        return handle

    @property
    def armed(self) -> int:
        return sum(1 for *_, h in self._timers if not h.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order (each at its own due time)."""
        target = self.t + seconds
        while self._timers and self._timers[0][0] <= target + 1e-12:
            due, _, callback, handle = heapq.heappop(self._timers)
            self.t = max(self.t, due)
            if not handle.cancelled:
                callback()
        self.t = target


async def settle(rounds: int = 5) -> None:
    """Let woken tasks run."""
    for _ in range(rounds):
        await asyncio.sleep(0)
