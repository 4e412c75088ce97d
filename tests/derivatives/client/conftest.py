"""Fixtures: the simulator in process, serving the derivatives gateway on loopback, and keys in it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from engine.auth import CdpKey
from engine.net.retry import RetryPolicy
from engine.sim import SimConfig, Simulator
from engine.sim.derivatives.config import Credits, DerivativesConfig
from engine.venues.derivatives.connection import SessionConfig
from engine.venues.derivatives.credits import CreditLimits, CreditPool, GatewayCredits
from engine.venues.derivatives.http import GatewayHttpClient
from engine.venues.derivatives.session import TradingSession
from engine.venues.derivatives.streams import MarketStreams
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key

FAST_RECONNECT = RetryPolicy(max_attempts=30, base_delay_s=0.01, max_delay_s=0.05, budget_s=20.0)
TEST_SESSION = SessionConfig(call_timeout_s=5.0, reconnect=FAST_RECONNECT)
# Tests that place many orders must not wait for the credits of a real account.
ROOMY = CreditLimits(matching=CreditPool(1, 10_000, 10_000), non_matching=CreditPool(1, 10_000, 10_000))


@dataclass
class GatewayEnv:
    sim: Simulator
    base_url: str  # http://127.0.0.1:PORT
    es256: TestKey
    ed25519: TestKey

    @property
    def trading_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws/api/v2"

    @property
    def streams_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/streams/ws/api/v2"

    def key(self, test_key: TestKey | None = None) -> CdpKey:
        test_key = test_key or self.ed25519
        return CdpKey(test_key.name, test_key.private_key)

    def session(self, test_key: TestKey | None = None, **options: Any) -> TradingSession:
        key = self.key(test_key)
        options.setdefault("config", TEST_SESSION)
        options.setdefault("credits", GatewayCredits(key.name, ROOMY))
        return TradingSession(key, self.trading_url, **options)

    def http(self, test_key: TestKey | None = None, **options: Any) -> GatewayHttpClient:
        key = self.key(test_key)
        options.setdefault("credits", GatewayCredits(key.name, ROOMY))
        return GatewayHttpClient(key, self.base_url, **options)

    def streams(self, **options: Any) -> MarketStreams:
        return MarketStreams(self.streams_url, **options)


@pytest.fixture
def sim_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Override per test with `@pytest.mark.parametrize("sim_config", [...], indirect=True)`; the gateway's
    credit limits are off unless a test sets `"credits": True`."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
async def gateway(sim_config: dict[str, Any]) -> AsyncIterator[GatewayEnv]:
    overrides = {"seed": 1, "tick_interval_s": 0.0, "heartbeat_interval_s": 60.0, **sim_config}
    credits = Credits(enabled=bool(overrides.pop("credits", False)))
    overrides.setdefault("derivatives", DerivativesConfig(credits=credits))
    sim = Simulator(SimConfig(**overrides))
    es256, ed25519 = new_es256_key(), new_ed25519_key()
    for key in (es256, ed25519):
        sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve() as base_url:
        yield GatewayEnv(sim, base_url, es256, ed25519)


@pytest.fixture
def register_key(gateway: GatewayEnv) -> Callable[..., TestKey]:
    def register(**kwargs: Any) -> TestKey:
        key = new_ed25519_key()
        gateway.sim.register_cdp_key(key.name, key.public_key_pem, **kwargs)
        return key

    return register
