"""The gateway's request credits, spent before each request so the session is never cut off for them.

The gateway does not answer an exhausted key with a retryable 429: it sends 10028 and ends the session. So
the client keeps its own books, one credit pool per key and request class (matching-engine requests, the
rest, subscriptions), each a token bucket on the engine's one limiter interface: `engine.ratelimit`'s local
bucket in one process, `engine.ratelimit.redis_limiter` when several workers share a key. A request costs
its class's `cost` in credits; a pool holds `capacity` and refills `refill` per second.

Coinbase publishes no numbers for the gateway; the defaults are Deribit's published defaults
(https://docs.deribit.com/articles/rate-limits), with headroom: set them to your account's tier.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.ratelimit import (
    BucketLimit,
    Clock,
    EndpointClass,
    LocalRateLimiter,
    RateLimiter,
    RateLimits,
    TokenBucket,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["CreditLimits", "CreditPool", "GatewayCredits", "RequestClass", "request_class"]


class RequestClass(enum.Enum):
    MATCHING = "matching"  # buy, sell, edit, cancel, close_position: they reach the matching engine
    NON_MATCHING = "non_matching"  # reads, auth, account and session methods
    SUBSCRIBE = "subscribe"


MATCHING_METHODS = frozenset(
    (
        "private/buy",
        "private/sell",
        "private/edit",
        "private/edit_by_label",
        "private/cancel",
        "private/cancel_all",
        "private/cancel_all_by_instrument",
        "private/cancel_all_by_currency",
        "private/cancel_all_by_currency_pair",
        "private/cancel_all_by_kind_or_type",
        "private/cancel_by_label",
        "private/close_position",
    )
)
SUBSCRIBE_METHODS = frozenset(
    ("public/subscribe", "private/subscribe", "public/unsubscribe", "private/unsubscribe")
)


def request_class(method: str) -> RequestClass:
    if method in MATCHING_METHODS:
        return RequestClass.MATCHING
    if method in SUBSCRIBE_METHODS:
        return RequestClass.SUBSCRIBE
    return RequestClass.NON_MATCHING


@dataclass(frozen=True, slots=True)
class CreditPool:
    """`cost` credits per request, a pool of `capacity`, refilled at `refill` credits per second."""

    cost: float
    refill: float
    capacity: float

    def __post_init__(self) -> None:
        if not (self.cost > 0 and self.refill > 0 and self.capacity >= self.cost):
            raise ValueError(
                f"a credit pool needs cost > 0, refill > 0 and capacity >= cost, got cost={self.cost} "
                f"refill={self.refill} capacity={self.capacity}"
            )


@dataclass(frozen=True, slots=True)
class CreditLimits:
    """One pool per request class. Defaults: Deribit's defaults less 10% (matching 5/s burst 20; other
    requests 500 credits of a 50,000 pool refilled at 10,000/s; subscriptions 3,000 of 30,000)."""

    matching: CreditPool = field(default_factory=lambda: CreditPool(cost=1.0, refill=4.5, capacity=18.0))
    non_matching: CreditPool = field(default_factory=lambda: CreditPool(500.0, 9_000.0, 45_000.0))
    subscribe: CreditPool = field(default_factory=lambda: CreditPool(3_000.0, 9_000.0, 27_000.0))
    default_pause_s: float = 1.0  # after a 10028 without a hint

    def pool(self, request: RequestClass) -> CreditPool:
        if request is RequestClass.MATCHING:
            return self.matching
        if request is RequestClass.SUBSCRIBE:
            return self.subscribe
        return self.non_matching


class GatewayCredits:
    """The credit pools of one key. `spend` before a request; `exhausted` when the gateway said 10028."""

    __slots__ = ("_buckets", "_costs", "_limiters", "_scopes", "key_id", "limits")

    def __init__(
        self,
        key_id: str,
        limits: CreditLimits | None = None,
        *,
        limiters: Mapping[RequestClass, RateLimiter] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.key_id = key_id
        self.limits = limits or CreditLimits()
        if limiters is None:
            limiters = {
                request: LocalRateLimiter(self._bucket_limits(request), clock=clock)
                for request in RequestClass
            }
        missing = [request.value for request in RequestClass if request not in limiters]
        if missing:
            raise ValueError(f"GatewayCredits needs a limiter for every request class; missing {missing}")
        self._limiters = dict(limiters)
        # Each class is its own pool of the key: its own bucket, locally and in Redis.
        self._scopes = {request: f"{key_id}#{request.value}" for request in RequestClass}
        self._costs = {request: self.limits.pool(request).cost for request in RequestClass}
        # A local pool is one TokenBucket: asked directly, the per-request path skips the limiter's lookup.
        self._buckets: dict[RequestClass, TokenBucket] = {
            request: limiter.bucket(self._scopes[request], EndpointClass.PRIVATE)
            for request, limiter in self._limiters.items()
            if isinstance(limiter, LocalRateLimiter)
        }

    def _bucket_limits(self, request: RequestClass) -> RateLimits:
        pool = self.limits.pool(request)
        return RateLimits(
            private=BucketLimit(pool.refill, pool.capacity), default_pause_s=self.limits.default_pause_s
        )

    @classmethod
    def shared(
        cls,
        key_id: str,
        redis: aioredis.Redis,
        limits: CreditLimits | None = None,
        *,
        namespace: str = "engine",
        expected_workers: int = 1,
        fallback_fraction: float = 0.7,
    ) -> GatewayCredits:
        """Pools kept in Redis, shared by every worker trading this key (the `[redis]` extra)."""
        from engine.ratelimit.redis_limiter import RedisRateLimiter

        limits = limits or CreditLimits()
        limiters: dict[RequestClass, RateLimiter] = {}
        for request in RequestClass:
            pool = limits.pool(request)
            limiters[request] = RedisRateLimiter(
                redis,
                RateLimits(
                    private=BucketLimit(pool.refill, pool.capacity), default_pause_s=limits.default_pause_s
                ),
                namespace=f"{namespace}:drb",
                expected_workers=expected_workers,
                fallback_fraction=fallback_fraction,
            )
        return cls(key_id, limits, limiters=limiters)

    def try_spend(self, request: RequestClass) -> bool:
        """Take the credits now if they are there; never waits."""
        bucket = self._buckets.get(request)
        if bucket is not None:
            return bucket.try_acquire(self._costs[request])
        return self._limiters[request].try_acquire(
            self._scopes[request], EndpointClass.PRIVATE, self._costs[request]
        )

    async def spend(self, request: RequestClass) -> float:
        """Wait for the credits; returns the seconds waited."""
        limiter = self._limiters[request]
        scope, cost = self._scopes[request], self._costs[request]
        if limiter.try_acquire(scope, EndpointClass.PRIVATE, cost):
            return 0.0
        return await limiter.acquire(scope, EndpointClass.PRIVATE, cost)

    def exhausted(self, request: RequestClass, retry_after: float | None) -> None:
        """The gateway said 10028: the pool is empty until `retry_after` (or the default pause)."""
        self._limiters[request].on_rate_limited(self._scopes[request], EndpointClass.PRIVATE, retry_after)

    def limiter(self, request: RequestClass) -> RateLimiter:
        return self._limiters[request]
