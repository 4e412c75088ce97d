"""Fixtures: an in-process simulator (market frozen: only our requests cost CPU) and keys registered in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from engine import Client
from engine.auth import CdpKey, ExchangeKey
from engine.net.retry import RetryPolicy
from engine.ratelimit import BucketLimit, RateLimits
from engine.sim import SimConfig, Simulator
from tests.sim.conftest import tls
from tests.support.keys import TestExchangeKey, TestKey, new_ed25519_key, new_es256_key, new_exchange_key

__all__ = ["FAST_RETRY", "SimEnv", "tls"]  # tls: the test CA and server certificate (tests.sim's fixture)

# Quick retries so fault tests finish fast; still exponential, jittered and bounded.
FAST_RETRY = RetryPolicy(max_attempts=6, base_delay_s=0.005, max_delay_s=0.05, budget_s=8.0)


@dataclass
class SimEnv:
    sim: Simulator
    base_url: str
    cdp: TestKey
    exchange: TestExchangeKey

    def client(self, *, key: TestKey | None = None, **options: Any) -> Client:
        test_key = key or self.cdp
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("premint_depth", 4)
        return Client(CdpKey(test_key.name, test_key.private_key), self.base_url, **options)

    def exchange_client(self, *, passphrase: str | None = None, **options: Any) -> Client:
        options.setdefault("retry", FAST_RETRY)
        key = ExchangeKey(self.exchange.key, self.exchange.secret, passphrase or self.exchange.passphrase)
        return Client(key, self.base_url, **options)

    def ledger_client_order_ids(self) -> list[str]:
        return [order.client_order_id for order in self.sim.ledger]


def _sim_config(**overrides: Any) -> SimConfig:
    overrides.setdefault("seed", 1)
    overrides.setdefault("tick_interval_s", 0.0)
    overrides.setdefault("heartbeat_interval_s", 60.0)
    return SimConfig(**overrides)


@pytest.fixture
def sim_config() -> dict[str, Any]:
    """Override per test module/test with `@pytest.mark.parametrize("sim_config", [...], indirect=True)`."""
    return {}


@pytest.fixture
async def env(sim_config: dict[str, Any]) -> AsyncIterator[SimEnv]:
    sim = Simulator(_sim_config(**sim_config))
    cdp = new_es256_key()
    sim.register_cdp_key(cdp.name, cdp.public_key_pem)
    exchange = new_exchange_key()
    sim.register_exchange_key(exchange.key, exchange.secret, exchange.passphrase)
    async with sim.serve() as base_url:
        yield SimEnv(sim, base_url, cdp, exchange)


@pytest.fixture
def register_key(env: SimEnv) -> Callable[..., TestKey]:
    """A fresh Ed25519 key registered with the given permissions / IP allowlist."""

    def register(**kwargs: Any) -> TestKey:
        key = new_ed25519_key()
        env.sim.register_cdp_key(key.name, key.public_key_pem, **kwargs)
        return key

    return register


# For tests that provoke the exchange's limit rather than ours.
UNLIMITED = RateLimits(private=BucketLimit(10_000, 10_000), public=BucketLimit(10_000, 10_000))
