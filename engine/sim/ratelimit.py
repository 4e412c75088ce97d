"""Per-key (and per-IP for public endpoints) token buckets, and the counters that prove them.

A bucket refills lazily from the monotonic clock on each request: no timer, O(1) per request.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from engine.sim.config import RateLimits

PRIVATE = "private"
PUBLIC = "public"
EXCHANGE_PRIVATE = "exchange_private"
EXCHANGE_PUBLIC = "exchange_public"
EXCHANGE_FILLS = "exchange_fills"  # Coinbase Exchange's own pool for /fills


class TokenBucket:
    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic()

    def take(self, now: float) -> bool:
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    @property
    def remaining(self) -> int:
        return int(self._tokens)

    def reset_after_s(self) -> float:
        """Seconds until at least one token is back."""
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate


@dataclass(slots=True)
class KeyStats:
    requests: int = 0
    rate_limited: int = 0
    timestamps: deque[float] = field(default_factory=deque)


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    limit: int
    remaining: int
    reset_epoch: int


_UNLIMITED = Admission(True, 0, 0, 0)  # what every request gets when limits are off (immutable: shared)


class RateLimiter:
    def __init__(self, limits: RateLimits, timestamps_per_key: int) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self.stats: dict[str, KeyStats] = {}
        self._timestamps_per_key = timestamps_per_key

    def _bucket(self, bucket_class: str, key_id: str) -> TokenBucket:
        bucket = self._buckets.get((bucket_class, key_id))
        if bucket is None:
            lim = self.limits
            rate, burst = {
                PRIVATE: (lim.private_per_s, lim.private_burst),
                PUBLIC: (lim.public_per_s, lim.public_burst),
                EXCHANGE_PRIVATE: (lim.exchange_private_per_s, lim.exchange_private_burst),
                EXCHANGE_PUBLIC: (lim.exchange_public_per_s, lim.exchange_public_burst),
                EXCHANGE_FILLS: (lim.exchange_fills_per_s, lim.exchange_fills_burst),
            }[bucket_class]
            bucket = self._buckets[(bucket_class, key_id)] = TokenBucket(rate, burst)
        return bucket

    def key_stats(self, key_id: str) -> KeyStats:
        stats = self.stats.get(key_id)
        if stats is None:
            stats = self.stats[key_id] = KeyStats(timestamps=deque(maxlen=self._timestamps_per_key))
        return stats

    def admit(self, bucket_class: str, key_id: str) -> Admission:
        """Count the request and decide. Disabled limits admit everything (but still count)."""
        stats = self.key_stats(key_id)
        stats.requests += 1
        stats.timestamps.append(time.time())
        if not self.limits.enabled:
            return _UNLIMITED
        bucket = self._bucket(bucket_class, key_id)
        admitted = bucket.take(time.monotonic())
        if not admitted:
            stats.rate_limited += 1
        reset = int(time.time() + bucket.reset_after_s()) + 1
        return Admission(admitted, int(bucket.rate), bucket.remaining, reset)

    def count_refusal(self, key_id: str) -> None:
        """A 429 served for another reason (a fault-injected storm) still counts as served."""
        self.key_stats(key_id).rate_limited += 1
