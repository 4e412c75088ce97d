"""Retry policy: exponential backoff with full jitter inside a bounded budget of attempts and time.

It waits by `engine.backoff.Backoff`, the package's one backoff (re-exported here). Which requests may
be retried, and when, is decided by their `Idempotency`; this module only knows how long to wait and when
to stop.
"""

from __future__ import annotations

import enum
import random
import time
from dataclasses import dataclass

from engine.backoff import Backoff, Jitter

__all__ = ["Backoff", "Idempotency", "Jitter", "RetryBudget", "RetryPolicy"]


class Idempotency(enum.Enum):
    """How safely a request can be sent again."""

    SAFE = "safe"  # reads, cancels, previews: repeat at will
    KEYED = "keyed"  # order creation: repeat only with the same client_order_id, confirming unknown outcomes
    UNSAFE = "unsafe"  # edits: repeat only when the first send provably never reached the exchange


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` counts the first try; `budget_s` bounds the whole call, waits included.

    Delay before retry n (1-based) is uniform in [0, min(max_delay_s, base_delay_s * 2**(n-1))] ("full
    jitter"), so many clients retrying at once spread out instead of stampeding.
    """

    max_attempts: int = 4
    base_delay_s: float = 0.05
    max_delay_s: float = 2.0
    budget_s: float = 15.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.budget_s <= 0:
            raise ValueError("retry delays must be >= 0 and the budget > 0")

    @classmethod
    def never(cls) -> RetryPolicy:
        return cls(max_attempts=1)

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        return Backoff(self.base_delay_s, 2.0, self.max_delay_s).delay(max(0, retry_number - 1), rng)


class RetryBudget:
    """Tracks one call's attempts against its policy."""

    __slots__ = ("_rng", "attempts", "deadline", "policy", "started")

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.started = time.monotonic()
        self.deadline = self.started + policy.budget_s
        self.attempts = 0
        self._rng = rng

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def next_delay(self, floor_s: float = 0.0) -> float | None:
        """Seconds to wait before the next attempt, or None when the budget is spent."""
        if self.attempts >= self.policy.max_attempts:
            return None
        delay = max(floor_s, self.policy.backoff(self.attempts, self._rng))
        if time.monotonic() + delay >= self.deadline:
            return None
        return delay
