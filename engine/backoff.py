"""The package's one backoff: request retries, WebSocket reconnects and Redis probes all wait by it.

A module of its own, below `engine.net` and `engine.redis_conn`, so that both can use it without importing
each other.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

__all__ = ["Backoff", "Jitter"]


class Jitter(enum.Enum):
    """How a wait is drawn below its ceiling (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/)."""

    FULL = "full"  # uniform in [0, ceiling]: clients retrying at once spread out the most
    EQUAL = "equal"  # uniform in [ceiling / 2, ceiling]: never much sooner than the ceiling


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff: the wait before attempt n (0-based) is drawn below
    min(maximum, initial x factor^n)."""

    initial: float = 0.1
    factor: float = 2.0
    maximum: float = 5.0
    jitter: Jitter = Jitter.FULL

    def ceiling(self, attempt: int) -> float:
        return min(self.maximum, self.initial * self.factor**attempt)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = self.ceiling(attempt)
        low = ceiling / 2 if self.jitter is Jitter.EQUAL else 0.0
        return (rng or random).uniform(low, ceiling)
