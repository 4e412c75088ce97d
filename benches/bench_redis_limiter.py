"""What a shared rate-limit decision costs: one `RedisRateLimiter.acquire` against a real redis-server on
loopback (one EVALSHA round trip), beside the in-process `LocalRateLimiter` for scale.

Bar: at most one round trip per request, checked here by Redis's own command counters, not timed.
The budget is set far above what the loop can spend, so what is timed is the decision, not a wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.ratelimit import BucketLimit, EndpointClass, LocalRateLimiter, RateLimits
from engine.ratelimit.redis_limiter import RedisRateLimiter
from engine.redis_conn import RedisSettings, connect
from tests.scaleout.redis_server import RedisServer

KEY = "organizations/bench/apiKeys/bench"
BATCH = 100
LIMITS = RateLimits(private=BucketLimit(1e6, 1e6))


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_redis_limiter_decision(benchmark: Any, redis_server: RedisServer) -> None:
    loop = asyncio.new_event_loop()
    client = connect(RedisSettings(url=redis_server.url, namespace="bench"))
    limiter = RedisRateLimiter(client, LIMITS, namespace="bench")

    batches = 0

    async def batch() -> None:
        nonlocal batches
        batches += 1
        for _ in range(BATCH):
            await limiter.acquire(KEY, EndpointClass.PRIVATE)

    async def evalsha_calls() -> int:
        stats = await client.info("commandstats")
        return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))

    try:
        loop.run_until_complete(limiter.acquire(KEY, EndpointClass.PRIVATE))  # loads the script
        before = loop.run_until_complete(evalsha_calls())
        benchmark.pedantic(lambda: loop.run_until_complete(batch()), rounds=20, iterations=1, warmup_rounds=1)
        calls = loop.run_until_complete(evalsha_calls()) - before
        benchmark.extra_info["per"] = f"{BATCH} decisions"
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    # correct, not just fast: one script call per decision, every decision granted, nobody fell back
    assert calls == batches * BATCH
    assert limiter.stats().granted == 1 + batches * BATCH
    assert limiter.fallback_entered == 0


def test_local_limiter_decision(benchmark: Any) -> None:
    loop = asyncio.new_event_loop()
    limiter = LocalRateLimiter(LIMITS)
    batches = 0

    async def batch() -> None:
        nonlocal batches
        batches += 1
        for _ in range(BATCH):
            await limiter.acquire(KEY, EndpointClass.PRIVATE)

    try:
        benchmark.pedantic(lambda: loop.run_until_complete(batch()), rounds=20, iterations=1, warmup_rounds=1)
    finally:
        loop.close()
    assert limiter.stats().granted == batches * BATCH
