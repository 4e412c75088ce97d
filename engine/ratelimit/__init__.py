"""Rate limiting, one interface and two backends: `LocalRateLimiter` (a token bucket per key and endpoint
class, in this process) and `engine.ratelimit.redis_limiter.RedisRateLimiter` (the same budget shared by every
worker on a key, through Redis; it needs the `[redis]` extra and is imported only where it is used)."""

from engine.ratelimit.local import (
    BucketLimit,
    Clock,
    EndpointClass,
    LimiterStats,
    LocalRateLimiter,
    Priority,
    RateLimiter,
    RateLimits,
    TokenBucket,
)

__all__ = [
    "BucketLimit",
    "Clock",
    "EndpointClass",
    "LimiterStats",
    "LocalRateLimiter",
    "Priority",
    "RateLimiter",
    "RateLimits",
    "TokenBucket",
]
