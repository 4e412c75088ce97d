"""Fixtures: a real redis-server per test (fresh data), and an async client to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from engine.redis_conn import RedisSettings, connect
from tests.scaleout.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_settings(redis_server: RedisServer) -> RedisSettings:
    return RedisSettings(url=redis_server.url, timeout_s=0.5, namespace="t")


@pytest.fixture
async def redis_client(redis_settings: RedisSettings) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_settings)
    try:
        yield client
    finally:
        await client.aclose()
