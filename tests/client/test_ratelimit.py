"""TokenBucket and LocalRateLimiter, driven by a manual clock: no sleeps, no timing assertions."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.clock import ManualClock
from engine.ratelimit import BucketLimit, EndpointClass, LocalRateLimiter, Priority, RateLimits, TokenBucket
from tests.client.clock import settle


def test_fast_path_spends_the_burst_without_timers() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=2, capacity=3, clock=clock)
    assert [bucket.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert clock.armed == 0
    assert bucket.stats.granted == 3
    assert bucket.stats.queued == 0


def test_lazy_refill_is_proportional_and_capped() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=2, capacity=3, clock=clock)
    for _ in range(3):
        assert bucket.try_acquire()
    clock.advance(0.5)
    assert bucket.tokens == pytest.approx(1.0)
    clock.advance(100)
    assert bucket.tokens == pytest.approx(3.0)


async def test_immediate_acquire_returns_zero_wait() -> None:
    bucket = TokenBucket(rate=1, capacity=1, clock=ManualClock())
    assert await bucket.acquire() == 0.0


async def test_waiters_are_served_fifo_and_report_their_wait() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock)
    assert bucket.try_acquire()
    served: list[str] = []
    waits: dict[str, float] = {}

    async def take(name: str) -> None:
        waits[name] = await bucket.acquire()
        served.append(name)

    tasks = [asyncio.create_task(take(n)) for n in "abc"]
    await settle()
    assert bucket.waiting == 3
    assert served == []
    assert not bucket.try_acquire(), "the fast path must not jump the queue"
    for expected in (["a"], ["a", "b"], ["a", "b", "c"]):
        clock.advance(1.0)
        await settle()
        assert served == expected
    await asyncio.gather(*tasks)
    assert waits == {"a": pytest.approx(1.0), "b": pytest.approx(2.0), "c": pytest.approx(3.0)}
    assert bucket.stats.queued == 3
    assert bucket.stats.wait_max_s == pytest.approx(3.0)
    assert clock.armed == 0


async def test_cancels_go_ahead_of_queued_orders() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock)
    assert bucket.try_acquire()
    served: list[str] = []

    async def take(name: str, priority: Priority) -> None:
        await bucket.acquire(priority=priority)
        served.append(name)

    tasks = [
        asyncio.create_task(take("order-1", Priority.NORMAL)),
        asyncio.create_task(take("order-2", Priority.NORMAL)),
        asyncio.create_task(take("cancel", Priority.HIGH)),
    ]
    await settle()
    clock.advance(3.0)
    await settle()
    await asyncio.gather(*tasks)
    assert served == ["cancel", "order-1", "order-2"]


async def test_a_cancelled_waiter_leaves_no_hole_and_no_leaked_token() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock)
    assert bucket.try_acquire()
    served: list[str] = []

    async def take(name: str) -> None:
        await bucket.acquire()
        served.append(name)

    a, b, c = (asyncio.create_task(take(n)) for n in "abc")
    await settle()
    b.cancel()
    await settle()
    assert bucket.waiting == 2
    assert bucket.stats.cancelled == 1
    clock.advance(1.0)
    await settle()
    assert served == ["a"]
    clock.advance(1.0)
    await settle()
    assert served == ["a", "c"], "c moves up into b's place"
    await asyncio.gather(a, c)
    with pytest.raises(asyncio.CancelledError):
        await b
    assert bucket.tokens == pytest.approx(0.0)
    assert bucket.waiting == 0


async def test_a_waiter_cancelled_as_it_is_granted_gives_the_token_back() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, capacity=1, clock=clock)
    assert bucket.try_acquire()
    task = asyncio.create_task(bucket.acquire())
    await settle()
    clock.advance(1.0)  # grants the token: the future resolves, the task has not run yet
    task.cancel()
    await settle()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bucket.tokens == pytest.approx(1.0)
    assert bucket.try_acquire()


async def test_weights_wait_for_enough_tokens_and_oversize_is_refused() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=1, capacity=3, clock=clock)
    with pytest.raises(ValueError, match="exceeds the bucket capacity"):
        await bucket.acquire(weight=4)
    assert bucket.try_acquire(weight=3)
    task = asyncio.create_task(bucket.acquire(weight=2))
    await settle()
    clock.advance(1.0)
    await settle()
    assert not task.done()
    clock.advance(1.0)
    await settle()
    assert await task == pytest.approx(2.0)


async def test_pause_holds_everyone_until_the_reset_then_refills_from_zero() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=10, capacity=10, clock=clock)
    bucket.pause(2.0)
    assert not bucket.try_acquire()
    task = asyncio.create_task(bucket.acquire())
    await settle()
    clock.advance(2.0)
    await settle()
    assert not task.done(), "at the reset the bucket is empty; the first token takes 1/rate"
    clock.advance(0.1)
    await settle()
    assert await task == pytest.approx(2.1)
    assert bucket.stats.pauses == 1


def test_remaining_header_lowers_the_local_count() -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=10, capacity=10, clock=clock)
    bucket.observe_remaining(2, None)
    assert bucket.tokens == pytest.approx(2.0)
    bucket.observe_remaining(50, None)  # never raises what we hold above what we computed
    assert bucket.tokens == pytest.approx(2.0)
    bucket.observe_remaining(0, 3.0)  # exhausted with a reset: pause until it
    assert not bucket.try_acquire()
    clock.advance(3.0 + 0.1)
    assert bucket.try_acquire()


def test_limiter_scopes_private_per_key_and_public_per_ip() -> None:
    limiter = LocalRateLimiter(
        RateLimits(private=BucketLimit(1, 1), public=BucketLimit(1, 1)), clock=ManualClock()
    )
    assert limiter.try_acquire("key-a", EndpointClass.PRIVATE)
    assert limiter.try_acquire("key-b", EndpointClass.PRIVATE), "another key has its own private pool"
    assert not limiter.try_acquire("key-a", EndpointClass.PRIVATE)
    assert limiter.try_acquire("key-a", EndpointClass.PUBLIC)
    assert not limiter.try_acquire("key-b", EndpointClass.PUBLIC), "the public pool is shared per IP"
    assert not limiter.try_acquire("key-a", EndpointClass.FILLS), (
        "no fills pool configured: fills are private"
    )
    assert limiter.stats().granted == 3


def test_exchange_defaults_have_a_separate_fills_pool() -> None:
    limits = RateLimits.exchange()
    assert limits.private == BucketLimit(15, 30)
    assert limits.public == BucketLimit(10, 15)
    limiter = LocalRateLimiter(limits, clock=ManualClock())
    for _ in range(30):
        assert limiter.try_acquire("k", EndpointClass.PRIVATE)
    assert limiter.try_acquire("k", EndpointClass.FILLS)


def test_a_429_without_reset_pauses_for_the_default() -> None:
    clock = ManualClock()
    limiter = LocalRateLimiter(RateLimits(default_pause_s=1.5), clock=clock)
    limiter.on_rate_limited("k", EndpointClass.PRIVATE, None)
    assert not limiter.try_acquire("k", EndpointClass.PRIVATE)
    clock.advance(1.5 + 0.05)
    assert limiter.try_acquire("k", EndpointClass.PRIVATE)
    assert limiter.stats().rate_limited == 1


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(0, 0.5), st.integers(1, 5)), min_size=1, max_size=80),
    rate=st.floats(1, 50),
    burst=st.integers(1, 40),
)
def test_never_grants_more_than_burst_plus_rate_times_elapsed(
    steps: list[tuple[float, int]], rate: float, burst: int
) -> None:
    clock = ManualClock()
    bucket = TokenBucket(rate=rate, capacity=burst, clock=clock)
    start, granted = clock.monotonic(), 0
    for advance, tries in steps:
        clock.advance(advance)
        granted += sum(bucket.try_acquire() for _ in range(tries))
        assert granted <= burst + rate * (clock.monotonic() - start) + 1e-6
