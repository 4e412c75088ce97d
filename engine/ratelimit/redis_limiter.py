"""One rate budget shared by every worker on a key: GCRA in Redis, one script call per request.

`RedisRateLimiter` implements `engine.ratelimit.RateLimiter`. Each `acquire` is one `EVALSHA` of a Lua GCRA
that *reserves* the request's slot and returns how long to wait for it, read from Redis's own clock
(`TIME`), so no machine's clock matters and no second round trip is needed to wait. The request is sent at
its slot and nothing else gates it after the reservation: a send is never moved away from its slot, which
is what keeps every one-second window within the budget. Reservations are bounded by `max_delay_s`: a
request that would wait longer is not reserved and asks again later (only under overload deeper than that).

When Redis is unreachable the worker falls back to a local token bucket holding a conservative share of the
budget (`rate * fallback_fraction / expected_workers`, burst 1), logs it, and counts it in plain attributes
(`fallback_active`, `fallback_entered`, `fallback_recovered`, `redis_errors`). The local bucket starts empty
and stays shut for `max_delay_s`, the furthest any reservation granted before the outage can reach, so those
and the fallback never overlap. While away, the worker probes Redis with capped backoff (its waiting
requests re-check at every probe). The probe that finds Redis back also sets a *recovery hold* in Redis for
`recovery_hold_s` (which must exceed the probe cap): while it stands, the script grants only the part of the
budget that peers still on their local shares cannot be using, so a worker that is back — or one that never
noticed the outage — does not spend the whole budget on top of them.

A worker cut off from Redis while its peers are not spends its share on top of theirs: that is what
`fallback_fraction` < 1 and the exchange's 429 feedback (`on_rate_limited` pauses everyone) are for.
Priorities order nothing here: Redis reservations are first come, first served.
`try_acquire` always returns False (a Redis decision cannot be made without awaiting), as the Protocol allows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from engine.clock import SYSTEM_CLOCK, Clock
from engine.ratelimit import BucketLimit, EndpointClass, LimiterStats, Priority, RateLimits, TokenBucket
from engine.redis_conn import ProbeBackoff, RedisError

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["RedisRateLimiter"]

log = logging.getLogger("engine.ratelimit.redis_limiter")

# KEYS[1] the bucket's theoretical arrival time (µs, Redis clock); KEYS[2] the recovery hold flag.
# ARGV: interval µs, burst, weight, max delay µs, interval factor while a hold stands,
#       hold ms to set (0: none).
# Returns the delay in µs before the reserved slot (>= 0), or -(1 + µs until asking again makes sense).
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if ARGV[6] ~= '0' then redis.call('SET', KEYS[2], '1', 'PX', ARGV[6]) end
local interval = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[2]) == 1 then interval = interval * tonumber(ARGV[5]) end
local tolerance = interval * tonumber(ARGV[2])
local max_delay = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval * tonumber(ARGV[3])
local delay = new_tat - tolerance - now
if delay < 0 then delay = 0 end
if delay > max_delay then return -1 - math.floor(delay - max_delay) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
return math.floor(delay)
"""

# KEYS[1] as above. ARGV: pause µs, interval µs, burst. Empties the bucket until now + pause (never shortens).
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local target = now + tonumber(ARGV[1]) + tonumber(ARGV[2]) * tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if target > tat then
  redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', math.floor((target - now) / 1000) + 1000)
end
return 1
"""


class RedisRateLimiter:
    """A `RateLimiter` whose buckets live in Redis, shared by every process that uses the same namespace."""

    def __init__(
        self,
        redis: aioredis.Redis,
        limits: RateLimits | None = None,
        *,
        namespace: str = "engine",
        expected_workers: int = 1,
        fallback_fraction: float = 0.7,
        max_delay_s: float = 2.0,
        probe: ProbeBackoff | None = None,
        recovery_hold_s: float | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if expected_workers < 1:
            raise ValueError("expected_workers must be at least 1")
        if not 0 < fallback_fraction <= 1:
            raise ValueError("fallback_fraction must be in (0, 1]")
        self.limits = limits or RateLimits()
        self.namespace = namespace
        self.expected_workers = expected_workers
        self.fallback_fraction = fallback_fraction
        self.max_delay_s = max_delay_s
        self._redis = redis
        self._reserve = redis.register_script(_RESERVE)
        self._pause = redis.register_script(_PAUSE)
        self._probe = probe or ProbeBackoff()
        self.recovery_hold_s = recovery_hold_s if recovery_hold_s is not None else 2 * self._probe.cap_s + 1.0
        # While a hold stands, peers still on local shares may spend up to (workers - 1) shares between them.
        others = fallback_fraction * (expected_workers - 1) / expected_workers
        self._hold_factor = 1.0 / max(1.0 - others, 1.0 / expected_workers)
        self._hold_key = f"{{{namespace}}}:rl:recovering"
        self._clock = clock
        self._monotonic = clock.monotonic
        self._fallback: dict[str, TokenBucket] = {}
        self._fallback_opened_at = 0.0
        self._next_probe_at = 0.0
        self._stats = LimiterStats()
        self._pending_pauses: set[asyncio.Task[None]] = set()
        # Metrics, as plain attributes for whatever exports them.
        self.fallback_active = False
        self.fallback_entered = 0
        self.fallback_recovered = 0
        self.redis_calls = 0
        self.redis_errors = 0

    def __repr__(self) -> str:
        mode = "fallback" if self.fallback_active else "redis"
        return f"RedisRateLimiter(namespace={self.namespace!r}, mode={mode}, workers={self.expected_workers})"

    # -- the RateLimiter protocol -------------------------------------------------------------------------

    def try_acquire(self, key_id: str, endpoint: EndpointClass, weight: float = 1.0) -> bool:
        return False

    async def acquire(
        self, key_id: str, endpoint: EndpointClass, weight: float = 1.0, priority: Priority = Priority.NORMAL
    ) -> float:
        started = self._monotonic()
        scope, limit = self._scope(key_id, endpoint)
        if weight > limit.burst:
            raise ValueError(f"weight {weight} exceeds the bucket capacity {limit.burst}")
        while True:
            if self.fallback_active and self._monotonic() < self._next_probe_at:
                if await self._fallback_acquire(scope, limit, weight):
                    return self._granted(started)
                continue  # a probe is due (or another request found Redis back): try Redis
            try:
                delay_us = await self._call_reserve(scope, limit, weight)
            except RedisError as exc:
                self._enter_fallback(exc)
                continue
            if delay_us < 0:  # beyond the reservation horizon: ask again when it could fit
                await asyncio.sleep((-delay_us - 1) / 1e6)
                continue
            if delay_us:
                await asyncio.sleep(delay_us / 1e6)
            return self._granted(started)

    def observe_headers(
        self, key_id: str, endpoint: EndpointClass, remaining: float | None, reset_after: float | None
    ) -> None:
        # Redis is the authority on what is left; only an exhausted pool with a reset time is news.
        if remaining is not None and remaining <= 0 and reset_after is not None and reset_after > 0:
            self._spawn_pause(key_id, endpoint, reset_after)

    def on_rate_limited(self, key_id: str, endpoint: EndpointClass, retry_after: float | None) -> None:
        self._stats.rate_limited += 1
        pause_s = retry_after if retry_after is not None else self.limits.default_pause_s
        self._spawn_pause(key_id, endpoint, pause_s)

    def stats(self) -> LimiterStats:
        total = LimiterStats()
        total.merge(self._stats)
        for bucket in self._fallback.values():
            total.cancelled += bucket.stats.cancelled
        return total

    # -- internals ----------------------------------------------------------------------------------------

    def _scope(self, key_id: str, endpoint: EndpointClass) -> tuple[str, BucketLimit]:
        if endpoint is EndpointClass.FILLS and self.limits.fills is None:
            endpoint = EndpointClass.PRIVATE
        limit = self.limits.for_class(endpoint)
        # One hash tag per namespace: the script's keys share a slot on a Redis Cluster.
        if endpoint is EndpointClass.PUBLIC:  # per IP, not per key: one pool for every key here
            return f"{{{self.namespace}}}:rl:public", limit
        return f"{{{self.namespace}}}:rl:{endpoint.value}:{key_id}", limit

    async def _call_reserve(self, scope: str, limit: BucketLimit, weight: float) -> int:
        self.redis_calls += 1
        probing = self.fallback_active
        reply: Any = await self._reserve(
            keys=[scope, self._hold_key],
            args=[
                round(1e6 / limit.rate),
                limit.burst,
                weight,
                round(self.max_delay_s * 1e6),
                self._hold_factor,
                round(self.recovery_hold_s * 1000) if probing else 0,
            ],
        )
        if self.fallback_active:
            self._recover()
        return int(reply)

    async def _fallback_acquire(self, scope: str, limit: BucketLimit, weight: float) -> bool:
        """Take from the local share, waiting at most until the next probe; False when it is time to probe."""
        bucket = self._fallback_bucket(scope, limit)
        while self.fallback_active:
            if bucket.try_acquire(weight):
                return True
            now = self._monotonic()
            if now >= self._next_probe_at:
                return False
            ready_in = max(bucket.paused_until - now, (weight - bucket.tokens) / bucket.rate, 0.001)
            await asyncio.sleep(min(ready_in, self._next_probe_at - now))
        return False

    def _granted(self, started: float) -> float:
        waited = self._monotonic() - started
        stats = self._stats
        stats.granted += 1
        if waited > 0.0005:
            stats.queued += 1
            stats.wait_total_s += waited
            stats.wait_max_s = max(stats.wait_max_s, waited)
        return waited

    def _enter_fallback(self, exc: RedisError) -> None:
        self.redis_errors += 1
        now = self._monotonic()
        self._next_probe_at = now + self._probe.next_delay()
        if self.fallback_active:
            return
        self.fallback_active = True
        self.fallback_entered += 1
        self._fallback.clear()
        self._fallback_opened_at = now + self.max_delay_s
        share = self.limits.private.rate * self.fallback_fraction / self.expected_workers
        log.warning(
            "Redis rate limiter unreachable (%s): falling back to a local share of the budget "
            "(%.3g/s private per worker, %d expected workers), probing for its return",
            type(exc).__name__,
            share,
            self.expected_workers,
        )

    def _recover(self) -> None:
        self.fallback_active = False
        self.fallback_recovered += 1
        self._probe.reset()
        log.warning("Redis rate limiter reachable again: back on the shared budget")

    def _fallback_bucket(self, scope: str, limit: BucketLimit) -> TokenBucket:
        bucket = self._fallback.get(scope)
        if bucket is None:
            share = limit.rate * self.fallback_fraction / self.expected_workers
            bucket = TokenBucket(share, 1.0, clock=self._clock, name=f"fallback:{scope}")
            # Start empty, and shut until reservations made before the outage have all come due.
            bucket.pause(max(0.0, self._fallback_opened_at - self._monotonic()))
            self._fallback[scope] = bucket
        return bucket

    def _spawn_pause(self, key_id: str, endpoint: EndpointClass, seconds: float) -> None:
        scope, limit = self._scope(key_id, endpoint)
        self._stats.pauses += 1
        bucket = self._fallback.get(scope)
        if bucket is not None:
            bucket.pause(seconds)
        task = asyncio.get_running_loop().create_task(self._pause_in_redis(scope, limit, seconds))
        self._pending_pauses.add(task)
        task.add_done_callback(self._pending_pauses.discard)

    async def _pause_in_redis(self, scope: str, limit: BucketLimit, seconds: float) -> None:
        try:
            await self._pause(keys=[scope], args=[round(seconds * 1e6), round(1e6 / limit.rate), limit.burst])
        except RedisError as exc:
            self._enter_fallback(exc)
