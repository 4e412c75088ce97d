"""The Redis limiter against a real redis-server: GCRA semantics, one script call per decision, one budget
shared across limiters (workers), shared 429 pauses, and fallback to a local share and back."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis

from engine.ratelimit import BucketLimit, EndpointClass, RateLimiter, RateLimits
from engine.ratelimit.redis_limiter import RedisRateLimiter
from engine.redis_conn import ProbeBackoff, RedisSettings, connect
from tests.scaleout.redis_server import RedisServer

KEY = "organizations/o/apiKeys/k"


def limiter(client: aioredis.Redis, rate: float, burst: float, **kwargs: object) -> RedisRateLimiter:
    limits = RateLimits(private=BucketLimit(rate, burst), public=BucketLimit(rate, burst))
    return RedisRateLimiter(client, limits, namespace="t", **kwargs)  # type: ignore[arg-type]


async def evalsha_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_is_a_rate_limiter(redis_client: aioredis.Redis) -> None:
    implementation: RateLimiter = limiter(redis_client, 10, 1)
    assert implementation.try_acquire(KEY, EndpointClass.PRIVATE) is False


async def test_burst_then_spaced_reservations(redis_client: aioredis.Redis) -> None:
    rl = limiter(redis_client, rate=10, burst=3)
    scope, limit = rl._scope(KEY, EndpointClass.PRIVATE)
    delays = [await rl._call_reserve(scope, limit, 1) for _ in range(6)]
    interval_us = 100_000
    assert delays[:3] == [0, 0, 0]
    # Slots 4..6 are one interval apart, less the time that passed between the calls.
    for n, delay in enumerate(delays[3:], start=1):
        assert n * interval_us - 50_000 < delay <= n * interval_us


async def test_one_script_call_per_request(redis_client: aioredis.Redis) -> None:
    rl = limiter(redis_client, rate=1000, burst=50)
    await rl.acquire(
        KEY, EndpointClass.PRIVATE
    )  # loads the script (EVALSHA fails once, SCRIPT LOAD, EVALSHA)
    before = await evalsha_calls(redis_client)
    await asyncio.gather(*(rl.acquire(KEY, EndpointClass.PRIVATE) for _ in range(40)))
    assert await evalsha_calls(redis_client) - before == 40
    assert rl.redis_calls == 41
    assert rl.stats().granted == 41


async def test_workers_share_one_budget(redis_client: aioredis.Redis, redis_settings: RedisSettings) -> None:
    other_client = connect(redis_settings)
    try:
        workers = [limiter(redis_client, rate=10, burst=1), limiter(other_client, rate=10, burst=1)]
        scope, limit = workers[0]._scope(KEY, EndpointClass.PRIVATE)
        delays = [await workers[i % 2]._call_reserve(scope, limit, 1) for i in range(8)]
    finally:
        await other_client.aclose()
    # Interleaved callers get consecutive slots of one bucket, not one bucket each.
    assert delays[0] == 0
    assert sorted(delays) == delays
    assert delays[-1] > 6 * 100_000


async def test_endpoint_classes_and_keys_are_separate_pools(redis_client: aioredis.Redis) -> None:
    rl = limiter(redis_client, rate=1, burst=1)
    for key_id, endpoint in [
        (KEY, EndpointClass.PRIVATE),
        ("other", EndpointClass.PRIVATE),
        (KEY, EndpointClass.PUBLIC),
    ]:
        scope, limit = rl._scope(key_id, endpoint)
        assert await rl._call_reserve(scope, limit, 1) == 0
    # The public pool is per IP: another key draws from the same one.
    scope, limit = rl._scope("other", EndpointClass.PUBLIC)
    assert await rl._call_reserve(scope, limit, 1) > 0


async def test_reservations_stop_at_the_horizon(redis_client: aioredis.Redis) -> None:
    rl = limiter(redis_client, rate=10, burst=1, max_delay_s=0.25)
    scope, limit = rl._scope(KEY, EndpointClass.PRIVATE)
    replies = [await rl._call_reserve(scope, limit, 1) for _ in range(6)]
    reserved = [r for r in replies if r >= 0]
    refused = [r for r in replies if r < 0]
    assert len(reserved) == 3  # now, +100 ms, +200 ms
    assert len(refused) == 3  # +300 ms is past the 250 ms horizon: not reserved, nothing consumed
    assert all(r == refused[0] or abs(r - refused[0]) < 50_000 for r in refused)


async def test_a_429_pauses_every_worker(redis_client: aioredis.Redis, redis_settings: RedisSettings) -> None:
    other_client = connect(redis_settings)
    try:
        first = limiter(redis_client, rate=100, burst=10)
        second = limiter(other_client, rate=100, burst=10)
        first.on_rate_limited(KEY, EndpointClass.PRIVATE, retry_after=1.0)
        await asyncio.gather(*first._pending_pauses)
        scope, limit = second._scope(KEY, EndpointClass.PRIVATE)
        delay = await second._call_reserve(scope, limit, 1)
    finally:
        await other_client.aclose()
    assert 800_000 < delay <= 1_010_000  # the bucket restarts empty after the 1 s pause
    assert first.stats().rate_limited == 1


async def test_falls_back_to_a_local_share_and_recovers(
    redis_server: RedisServer, redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    rl = limiter(
        redis_client,
        rate=40,
        burst=1,
        expected_workers=2,
        fallback_fraction=1.0,
        max_delay_s=0.1,
        probe=ProbeBackoff(0.02, 0.1),
        recovery_hold_s=0.2,
    )
    await rl.acquire(KEY, EndpointClass.PRIVATE)
    assert not rl.fallback_active

    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="engine.ratelimit.redis_limiter"):
        for _ in range(4):
            await rl.acquire(KEY, EndpointClass.PRIVATE)
    assert rl.fallback_active
    assert rl.fallback_entered == 1
    assert rl.redis_errors >= 1
    assert "falling back to a local share" in caplog.text
    assert "20/s private per worker, 2 expected workers" in caplog.text
    fallback_bucket = next(iter(rl._fallback.values()))
    assert fallback_bucket.rate == 20  # 40/s * 1.0 / 2 workers

    redis_server.start()
    for _ in range(40):
        await rl.acquire(KEY, EndpointClass.PRIVATE)
        if not rl.fallback_active:
            break
    assert not rl.fallback_active
    assert rl.fallback_recovered == 1
    assert "reachable again" in caplog.text
    assert rl.stats().granted >= 6
    assert await redis_client.exists("{t}:rl:recovering")  # the recovery hold for peers still away


async def test_a_recovery_hold_leaves_room_for_peers_on_local_shares(redis_client: aioredis.Redis) -> None:
    # 4 workers, 70% fallback shares: while 3 peers may still spend 3 x 17.5% = 52.5% locally, Redis grants
    # the other 47.5%, even to a worker that never noticed the outage.
    unaware = limiter(redis_client, rate=10, burst=1, expected_workers=4, fallback_fraction=0.7)
    scope, limit = unaware._scope(KEY, EndpointClass.PRIVATE)
    await redis_client.set("{t}:rl:recovering", 1, px=5000)
    first = await unaware._call_reserve(scope, limit, 1)
    second = await unaware._call_reserve(scope, limit, 1)
    assert first == 0
    held_interval_us = 100_000 / 0.475
    assert held_interval_us - 50_000 < second <= held_interval_us
