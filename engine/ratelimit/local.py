"""Client-side rate limiting: a lazily refilled token bucket per key and endpoint class.

`RateLimiter` is the interface the request pipeline talks to; `LocalRateLimiter` implements it in-process
(a Redis-backed limiter shared by several processes can implement the same Protocol). A request first tries
`try_acquire` (no allocation, no timer: the hot path when tokens are there) and only when that fails awaits
`acquire`, which queues it by priority, FIFO within a priority, and wakes it from a single timer per bucket.

The buckets also learn from the exchange: a 429 pauses the bucket until the exchange's reset, and
`x-ratelimit-remaining` lowers the local count when other clients share the key.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Protocol

from engine.clock import SYSTEM_CLOCK, Clock, TimerHandle

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


class EndpointClass(enum.Enum):
    """Which of the exchange's rate-limit pools a request draws from."""

    PRIVATE = "private"  # authenticated, limited per key
    PUBLIC = "public"  # unauthenticated, limited per IP
    FILLS = "fills"  # Coinbase Exchange's separate `/fills` pool


class Priority(enum.IntEnum):
    """Queue order when a bucket is empty: lower goes first. Cancels get HIGH so risk comes off first."""

    HIGH = 0
    NORMAL = 1
    LOW = 2


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """Sustained `rate` in requests per second and `burst` capacity (the most that can go at once)."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.burst >= 1):
            raise ValueError(
                f"a bucket needs rate > 0 and burst >= 1, got rate={self.rate} burst={self.burst}"
            )


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Limits per endpoint class. Defaults are Advanced Trade's published limits; all configurable:
    https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-rate-limits

    `fills=None` means `/fills` shares the private pool. `default_pause_s` is how long a bucket pauses after a
    429 that carried no reset hint (e.g. an HTML body).
    """

    private: BucketLimit = field(default_factory=lambda: BucketLimit(30.0, 30.0))
    public: BucketLimit = field(default_factory=lambda: BucketLimit(10.0, 10.0))
    fills: BucketLimit | None = None
    default_pause_s: float = 1.0

    @classmethod
    def advanced_trade(cls) -> RateLimits:
        """Advanced Trade REST: private 30/s per key, public 10/s per IP."""
        return cls()

    @classmethod
    def exchange(cls) -> RateLimits:
        """Coinbase Exchange REST: public 10/s burst 15, private 15/s burst 30, `/fills` 10/s burst 20."""
        return cls(
            private=BucketLimit(15.0, 30.0), public=BucketLimit(10.0, 15.0), fills=BucketLimit(10.0, 20.0)
        )

    def for_class(self, endpoint: EndpointClass) -> BucketLimit:
        if endpoint is EndpointClass.PUBLIC:
            return self.public
        if endpoint is EndpointClass.FILLS and self.fills is not None:
            return self.fills
        return self.private


@dataclass(slots=True)
class LimiterStats:
    """What the limiter did. Wait times are seconds spent queued (zero for the immediate path)."""

    granted: int = 0  # requests let through
    queued: int = 0  # of those, how many had to wait
    wait_total_s: float = 0.0
    wait_max_s: float = 0.0
    cancelled: int = 0  # waiters cancelled while queued
    rate_limited: int = 0  # 429s reported by the exchange
    pauses: int = 0  # times a bucket was paused (429 or remaining=0)

    def merge(self, other: LimiterStats) -> None:
        for f in fields(self):
            if f.name == "wait_max_s":
                self.wait_max_s = max(self.wait_max_s, other.wait_max_s)
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def wait_mean_s(self) -> float:
        return self.wait_total_s / self.queued if self.queued else 0.0


class _Waiter:
    __slots__ = ("enqueued_at", "future", "weight")

    def __init__(self, future: asyncio.Future[None], weight: float, enqueued_at: float) -> None:
        self.future = future
        self.weight = weight
        self.enqueued_at = enqueued_at


class TokenBucket:
    """A lazily refilled token bucket with prioritised FIFO waiters, pauses, and stats.

    Tokens are recomputed from elapsed time whenever they are looked at: no background task. One timer at most
    is armed, for when the head waiter can be served.
    """

    __slots__ = (
        "_clock",
        "_monotonic",
        "_paused_until",
        "_queues",
        "_timer",
        "_timer_at",
        "_tokens",
        "_updated",
        "_waiting",
        "capacity",
        "name",
        "rate",
        "stats",
    )

    def __init__(self, rate: float, capacity: float, *, clock: Clock | None = None, name: str = "") -> None:
        if not (rate > 0 and capacity >= 1):
            raise ValueError(
                f"a bucket needs rate > 0 and capacity >= 1, got rate={rate} capacity={capacity}"
            )
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.name = name
        self._clock: Clock = clock or SYSTEM_CLOCK
        self._monotonic = self._clock.monotonic  # read on every request: one attribute lookup
        self._tokens = self.capacity
        self._updated = self._monotonic()
        self._paused_until = 0.0
        self._queues: tuple[deque[_Waiter], ...] = tuple(deque() for _ in Priority)
        self._waiting = 0
        self._timer: TimerHandle | None = None
        self._timer_at = 0.0
        self.stats = LimiterStats()

    def __repr__(self) -> str:
        return (
            f"TokenBucket(name={self.name!r}, rate={self.rate}, capacity={self.capacity}, "
            f"tokens={self.tokens:.2f}, waiting={self._waiting})"
        )

    @property
    def tokens(self) -> float:
        """Tokens available now (after refill)."""
        self._refill(self._monotonic())
        return self._tokens

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            tokens = self._tokens + elapsed * self.rate
            self._tokens = tokens if tokens < self.capacity else self.capacity
            self._updated = now

    def try_acquire(self, weight: float = 1.0) -> bool:
        """Take `weight` tokens if they are there and nobody is queued; never blocks, never allocates."""
        if self._waiting:
            return False
        now = self._monotonic()
        if now < self._paused_until:
            return False
        self._refill(now)
        if self._tokens >= weight:
            self._tokens -= weight
            self.stats.granted += 1
            return True
        return False

    async def acquire(self, weight: float = 1.0, priority: Priority = Priority.NORMAL) -> float:
        """Wait for `weight` tokens; returns the seconds waited. Cancelling the caller leaves no trace."""
        if weight > self.capacity:
            raise ValueError(f"weight {weight} exceeds the bucket capacity {self.capacity}")
        now = self._monotonic()
        if not self._queued_at_or_above(priority) and now >= self._paused_until:
            self._refill(now)
            if self._tokens >= weight:
                self._tokens -= weight
                self.stats.granted += 1
                return 0.0
        waiter = _Waiter(asyncio.get_running_loop().create_future(), weight, now)
        self._queues[priority].append(waiter)
        self._waiting += 1
        self._dispatch()
        try:
            await waiter.future
        except asyncio.CancelledError:
            future = waiter.future
            if future.done() and not future.cancelled():
                # Granted in the same tick the caller was cancelled: give the tokens back.
                self._tokens = min(self.capacity, self._tokens + weight)
            else:
                self._remove(waiter, priority)
            self.stats.cancelled += 1
            self._dispatch()
            raise
        waited = self._monotonic() - waiter.enqueued_at
        stats = self.stats
        stats.queued += 1
        stats.wait_total_s += waited
        if waited > stats.wait_max_s:
            stats.wait_max_s = waited
        return waited

    def pause(self, seconds: float) -> None:
        """Stop granting for `seconds` and empty the bucket: the exchange said we are out."""
        now = self._monotonic()
        until = now + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self.stats.pauses += 1
        self._refill(now)
        self._tokens = 0.0
        self._updated = self._paused_until  # refill resumes from the reset, not before it
        self._dispatch()

    def observe_remaining(self, remaining: float | None, reset_after: float | None) -> None:
        """Adopt the exchange's view: never believe we hold more tokens than it says remain."""
        if remaining is None:
            return
        if remaining <= 0 and reset_after is not None and reset_after > 0:
            self.pause(reset_after)
            return
        self._refill(self._monotonic())
        if remaining < self._tokens:
            self._tokens = float(remaining)

    def _queued_at_or_above(self, priority: Priority) -> bool:
        if not self._waiting:
            return False
        queues = self._queues
        return any(queues[p] for p in range(priority + 1))

    def _remove(self, waiter: _Waiter, priority: Priority) -> None:
        try:
            self._queues[priority].remove(waiter)
        except ValueError:
            return
        self._waiting -= 1

    def _dispatch(self) -> None:
        """Serve waiters in priority order while tokens last; arm the timer for the first one that cannot."""
        if not self._waiting:
            self._disarm()
            return
        now = self._monotonic()
        if now < self._paused_until:
            self._arm(self._paused_until - now)
            return
        self._refill(now)
        for queue in self._queues:
            while queue:
                waiter = queue[0]
                if waiter.future.done():  # cancelled but not yet removed by its task
                    queue.popleft()
                    self._waiting -= 1
                    continue
                if self._tokens < waiter.weight:
                    # Head-of-line waits, and so does every lower priority: no starvation of heavy requests.
                    self._arm((waiter.weight - self._tokens) / self.rate)
                    return
                self._tokens -= waiter.weight
                queue.popleft()
                self._waiting -= 1
                self.stats.granted += 1
                waiter.future.set_result(None)
        self._disarm()

    def _arm(self, delay: float) -> None:
        due = self._monotonic() + delay
        if self._timer is not None:
            if self._timer_at <= due:
                return  # an earlier wake-up is armed; it will re-arm as needed
            self._timer.cancel()
        self._timer_at = due
        self._timer = self._clock.call_later(delay, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._dispatch()


class RateLimiter(Protocol):
    """What the request pipeline needs from a limiter. `key_id` scopes private pools per API key."""

    def try_acquire(self, key_id: str, endpoint: EndpointClass, weight: float = 1.0) -> bool:
        """Take tokens at once if possible without waiting. An implementation may always return False."""
        ...

    async def acquire(
        self, key_id: str, endpoint: EndpointClass, weight: float = 1.0, priority: Priority = Priority.NORMAL
    ) -> float:
        """Wait for tokens; returns seconds waited."""
        ...

    def observe_headers(
        self, key_id: str, endpoint: EndpointClass, remaining: float | None, reset_after: float | None
    ) -> None:
        """Learn from `x-ratelimit-remaining` / `x-ratelimit-reset` (reset as seconds from now)."""
        ...

    def on_rate_limited(self, key_id: str, endpoint: EndpointClass, retry_after: float | None) -> None:
        """The exchange answered 429: pause that pool until `retry_after` seconds (or a default)."""
        ...

    def stats(self) -> LimiterStats:
        """Totals over every pool."""
        ...


class LocalRateLimiter:
    """In-process `RateLimiter`: one `TokenBucket` per (key, endpoint class); the public pool is per IP,
    so it is one bucket shared by every key that uses this limiter."""

    __slots__ = ("_buckets", "_clock", "limits")

    def __init__(self, limits: RateLimits | None = None, *, clock: Clock | None = None) -> None:
        self.limits = limits or RateLimits()
        self._clock = clock
        self._buckets: dict[tuple[str, EndpointClass], TokenBucket] = {}

    def bucket(self, key_id: str, endpoint: EndpointClass) -> TokenBucket:
        if endpoint is EndpointClass.FILLS and self.limits.fills is None:
            endpoint = EndpointClass.PRIVATE
        scope = (key_id if endpoint is not EndpointClass.PUBLIC else "", endpoint)
        bucket = self._buckets.get(scope)
        if bucket is None:
            limit = self.limits.for_class(endpoint)
            bucket = TokenBucket(limit.rate, limit.burst, clock=self._clock, name=f"{endpoint.value}")
            self._buckets[scope] = bucket
        return bucket

    def try_acquire(self, key_id: str, endpoint: EndpointClass, weight: float = 1.0) -> bool:
        return self.bucket(key_id, endpoint).try_acquire(weight)

    async def acquire(
        self, key_id: str, endpoint: EndpointClass, weight: float = 1.0, priority: Priority = Priority.NORMAL
    ) -> float:
        return await self.bucket(key_id, endpoint).acquire(weight, priority)

    def observe_headers(
        self, key_id: str, endpoint: EndpointClass, remaining: float | None, reset_after: float | None
    ) -> None:
        self.bucket(key_id, endpoint).observe_remaining(remaining, reset_after)

    def on_rate_limited(self, key_id: str, endpoint: EndpointClass, retry_after: float | None) -> None:
        bucket = self.bucket(key_id, endpoint)
        bucket.stats.rate_limited += 1
        bucket.pause(retry_after if retry_after is not None else self.limits.default_pause_s)

    def stats(self) -> LimiterStats:
        total = LimiterStats()
        for bucket in self._buckets.values():
            total.merge(bucket.stats)
        return total
