"""The engine's one clock: wall time, monotonic time, and timers on the monotonic time.

Every part whose decisions depend on time takes a `Clock` (by default `SYSTEM_CLOCK`): the Engine and its
portfolio, the risk gate (order rate, cooldown, circuit breaker; the daily loss limit's trading day), the
token buckets, the journal and the audit log, the signal authenticator and replay guard. A test gives them a
`ManualClock` and moves time by hand: a cooldown, a day rollover or a bucket's refill, without sleeping.

Which time for what:
- `monotonic()` for intervals and deadlines (rates, cooldowns, the breaker, bucket refills): it never jumps
  when the host steps its wall clock;
- `now()`, Unix seconds, for what is dated: journal and audit timestamps, the UTC trading day, a signature's
  timestamp.

Two clocks stay outside it on purpose: the event loop's own timers (`loop.call_at`, which only the loop's
clock can schedule), and the Rust signer's `iat`/`nbf`/`exp`, minted from the host's clock plus the offset
`engine.net.clock` measures against the exchange, so that offset is measured on the host's clock too.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Final, Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock", "TimerHandle"]


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Time for the engine's decisions; see the module's note on which of the two to read."""

    def now(self) -> float:
        """Wall-clock time, seconds since the Unix epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going back."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Call `callback` once `delay` seconds of `monotonic()` time have passed."""
        ...


class SystemClock:
    """The host's clocks and the running event loop's timers."""

    __slots__ = ()

    # The stdlib functions themselves, not wrappers: reading the clock costs a hot path (a token bucket's
    # `try_acquire`) one attribute lookup over calling `time.monotonic()` directly, and no Python frame.
    now = staticmethod(time.time)
    monotonic = staticmethod(time.monotonic)

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Final = SystemClock()

# 2026-01-01T00:00:00Z: a ManualClock starts on a day boundary, so a test knows where the next one is.
_EPOCH_2026 = 1_767_225_600.0


class _ManualTimer:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """A clock that moves only when told to, for tests: `advance(seconds)` moves the wall and the monotonic
    time together and runs the timers that fall due, each at its own due time, in order."""

    __slots__ = ("_monotonic", "_now", "_sequence", "_timers")

    def __init__(self, *, now: float = _EPOCH_2026, monotonic: float = 1000.0) -> None:
        self._now = float(now)
        self._monotonic = float(monotonic)
        self._timers: list[tuple[float, int, Callable[[], None], _ManualTimer]] = []
        self._sequence = 0

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now}, monotonic={self._monotonic}, armed={self.armed})"

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _ManualTimer()
        self._sequence += 1
        heapq.heappush(self._timers, (self._monotonic + max(0.0, delay), self._sequence, callback, timer))
        return timer

    @property
    def armed(self) -> int:
        """Timers set and neither run nor cancelled."""
        return sum(1 for *_, timer in self._timers if not timer.cancelled)

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (not backward: monotonic time never goes back)."""
        if seconds < 0:
            raise ValueError(f"a clock moves forward: advance({seconds})")
        target = self._monotonic + seconds
        # a timer armed for a computed delay (tokens short / rate) may be due a rounding error past `target`
        while self._timers and self._timers[0][0] <= target + 1e-12:
            due, _, callback, timer = heapq.heappop(self._timers)
            self._move_to(due)
            if not timer.cancelled:
                callback()
        self._move_to(target)

    def _move_to(self, monotonic: float) -> None:
        if monotonic > self._monotonic:
            self._now += monotonic - self._monotonic
            self._monotonic = monotonic

    def set_wall(self, now: float) -> None:
        """Step the wall clock alone (the host's NTP correcting it): monotonic time does not move."""
        self._now = float(now)
