"""Fixtures for signal intake: a served simulator with a registered key, a real `engine.Client` to it, and a
real redis-server (from tests.scaleout)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from engine import Client
from engine.auth import CdpKey
from engine.net.retry import RetryPolicy
from engine.sim import RateLimits, SimConfig, Simulator
from tests.scaleout.conftest import redis_client, redis_server, redis_settings
from tests.support.keys import new_es256_key

__all__ = ["SimVenue", "redis_client", "redis_server", "redis_settings"]


@dataclass
class SimVenue:
    sim: Simulator
    base_url: str
    client: Client

    def orders_for(self, client_order_id: str) -> list[dict[str, object]]:
        return [e for e in self.sim.ledger.entries() if e["client_order_id"] == client_order_id]


@pytest.fixture
async def venue() -> AsyncIterator[SimVenue]:
    sim = Simulator(SimConfig(seed=7, rate_limits=RateLimits(enabled=False), tick_interval_s=0))
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    async with sim.serve("127.0.0.1", 0) as base_url:
        retry = RetryPolicy(max_attempts=2, base_delay_s=0.01, max_delay_s=0.05, budget_s=2.0)
        async with Client(CdpKey(key.name, key.private_key), base_url, timeout_s=5.0, retry=retry) as client:
            yield SimVenue(sim, base_url, client)
