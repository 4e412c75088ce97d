"""Request credits as Deribit counts them: per key, a leaky bucket for matching-engine requests and one for
everything else, refilled continuously. A request that finds too few credits is the end of the session
(10028, then the socket or connection closes): there is no retryable 429 on this venue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from engine.sim.derivatives.config import Credits

MATCHING = "matching"
NON_MATCHING = "non_matching"


@dataclass(slots=True)
class _Bucket:
    pool: int
    refill_per_s: int
    credits: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self, cost: int, now: float) -> bool:
        self.credits = min(self.pool, self.credits + (now - self.stamp) * self.refill_per_s)
        self.stamp = now
        if self.credits < cost:
            return False
        self.credits -= cost
        return True


class CreditLimiter:
    def __init__(self, config: Credits) -> None:
        self.config = config
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.exhausted: dict[str, int] = {}

    def _bucket(self, who: str, kind: str) -> _Bucket:
        bucket = self._buckets.get((who, kind))
        if bucket is None:
            c = self.config
            pool, refill = (
                (c.matching_pool, c.matching_refill_per_s)
                if kind == MATCHING
                else (c.non_matching_pool, c.non_matching_refill_per_s)
            )
            bucket = self._buckets[(who, kind)] = _Bucket(pool, refill, float(pool))
        return bucket

    def cost(self, kind: str, subscribe: bool) -> int:
        c = self.config
        if kind == MATCHING:
            return c.matching_cost
        return c.subscribe_cost if subscribe else c.non_matching_cost

    def admit(self, who: str, kind: str, subscribe: bool = False) -> float | None:
        """None if admitted; else the milliseconds until the bucket holds the request's cost again."""
        if not self.config.enabled:
            return None
        cost = self.cost(kind, subscribe)
        bucket = self._bucket(who, kind)
        if bucket.take(cost, time.monotonic()):
            return None
        self.exhausted[who] = self.exhausted.get(who, 0) + 1
        return max(1.0, (cost - bucket.credits) / bucket.refill_per_s * 1000.0)

    def remaining(self, who: str, kind: str) -> int:
        bucket = self._bucket(who, kind)
        now = time.monotonic()
        return int(min(bucket.pool, bucket.credits + (now - bucket.stamp) * bucket.refill_per_s))

    def limits_wire(self) -> dict[str, object]:
        c = self.config
        return {
            "limits_per_currency": False,
            "non_matching_engine": {
                "burst": c.non_matching_pool // max(1, c.non_matching_cost),
                "rate": c.non_matching_refill_per_s // max(1, c.non_matching_cost),
            },
            "matching_engine": {
                "burst": c.matching_pool // max(1, c.matching_cost),
                "rate": c.matching_refill_per_s // max(1, c.matching_cost),
            },
        }
