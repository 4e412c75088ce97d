"""An error-rate circuit breaker: when the exchange keeps failing, stop sending before it gets worse.

CLOSED: orders pass; `threshold` failures within `window` seconds trip it OPEN. OPEN: every order is refused
for `pause` seconds, then it is HALF_OPEN: one probe order passes; its success closes the breaker, its failure
opens it again for another pause.
"""

from __future__ import annotations

import enum
from collections import deque

from engine.risk.refusal import OrderRefused, RiskRule


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    __slots__ = ("_failures", "_opened_at", "_probe_out", "_state", "pause", "threshold", "window")

    def __init__(self, threshold: int, window: float, pause: float) -> None:
        if threshold < 1 or window <= 0 or pause <= 0:
            raise ValueError("circuit breaker: threshold >= 1, window > 0, pause > 0")
        self.threshold = threshold
        self.window = window
        self.pause = pause
        self._failures: deque[float] = deque()
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probe_out = False

    def state(self, now: float) -> BreakerState:
        if self._state is BreakerState.OPEN and now - self._opened_at >= self.pause:
            self._state = BreakerState.HALF_OPEN
            self._probe_out = False
        return self._state

    def check(self, now: float) -> None:
        state = self.state(now)
        if state is BreakerState.OPEN:
            remaining = self.pause - (now - self._opened_at)
            raise OrderRefused(
                RiskRule.CIRCUIT_BREAKER, f"open after repeated failures; half-opens in {remaining:.3f}s"
            )
        if state is BreakerState.HALF_OPEN and self._probe_out:
            raise OrderRefused(RiskRule.CIRCUIT_BREAKER, "half-open: waiting for the probe order's outcome")

    def on_sent(self, now: float) -> None:
        """An order passed the gate; in HALF_OPEN it is the probe."""
        if self.state(now) is BreakerState.HALF_OPEN:
            self._probe_out = True

    def record_success(self, now: float) -> None:
        if self.state(now) is BreakerState.HALF_OPEN:
            self._state = BreakerState.CLOSED
            self._failures.clear()
            self._probe_out = False

    def record_failure(self, now: float) -> bool:
        """Count a failed request. Returns True if this failure tripped the breaker open."""
        state = self.state(now)
        if state is BreakerState.OPEN:
            return False
        if state is BreakerState.HALF_OPEN:
            self._trip(now)
            return True
        failures = self._failures
        failures.append(now)
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) >= self.threshold:
            self._trip(now)
            return True
        return False

    def _trip(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._failures.clear()
        self._probe_out = False
