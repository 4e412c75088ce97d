"""Fixtures: the gateway simulator served on 127.0.0.1 with a live market, a key generated for the test, and
Engines trading perpetuals through `DerivativesVenue`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.auth import CdpKey
from engine.sim import SimConfig, Simulator
from engine.sim.derivatives.config import Credits, DerivativesConfig
from engine.trading.engine import Engine, EngineConfig
from engine.venues.derivatives import (
    DerivativesVenue,
    GatewayCredits,
    TradingSession,
    derivatives_venue,
)
from tests.derivatives.client.conftest import ROOMY, TEST_SESSION
from tests.support.keys import TestKey, new_ed25519_key

BTC = "BTC_USDC-PERPETUAL"
ETH = "ETH_USDC-PERPETUAL"


async def until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll on the loop until `predicate()` holds (a deadline, not a timed assert: fails only if never)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class Perps:
    sim: Simulator
    base_url: str
    key: TestKey
    journal_path: Path

    def cdp_key(self) -> CdpKey:
        return CdpKey(self.key.name, self.key.private_key)

    def venue(self, **settings: Any) -> DerivativesVenue:
        key = self.cdp_key()
        settings.setdefault("products", (BTC,))
        settings.setdefault("session_config", TEST_SESSION)
        settings.setdefault("credits", GatewayCredits(key.name, ROOMY))
        return derivatives_venue(key, self.base_url, **settings)

    def config(self, **overrides: Any) -> EngineConfig:
        base = EngineConfig(
            journal_path=self.journal_path,
            worker="perp",
            market_channels=(),
            housekeeping_s=0.05,
            unknown_grace_s=0.2,
            account_refresh_s=0.5,
        )
        return replace(base, **overrides)

    def engine(
        self, venue: DerivativesVenue | None = None, **overrides: Any
    ) -> AbstractAsyncContextManager[Engine]:
        @asynccontextmanager
        async def running() -> AsyncIterator[Engine]:
            async with Engine(config=self.config(**overrides), venue=venue or self.venue()) as engine:
                await engine.wait_ready(10.0)
                yield engine

        return running()

    @property
    def desk(self) -> Any:
        return self.sim.derivatives.desk

    def ledger(self) -> dict[str, Any]:
        """The simulator's orders by label: the oracle every engine test checks against."""
        orders: dict[str, Any] = {}
        for order in self.desk.orders.values():
            orders.setdefault(order.label, []).append(order)
        return orders

    def touch(self, instrument: str = BTC) -> tuple[Decimal, Decimal]:
        market = self.sim.derivatives.instruments[instrument].market
        return market.best_bid(), market.best_ask()

    def far_bid(self, instrument: str = BTC, fraction: str = "0.9") -> Decimal:
        """A buy price that rests: `fraction` of the best bid, on the tick."""
        tick = self.sim.derivatives.instruments[instrument].spec.tick_size
        price = self.touch(instrument)[0] * Decimal(fraction)
        return price - price % tick

    def far_ask(self, instrument: str = BTC, fraction: str = "1.1") -> Decimal:
        tick = self.sim.derivatives.instruments[instrument].spec.tick_size
        price = self.touch(instrument)[1] * Decimal(fraction)
        return price - price % tick


def perps_session(perps: Perps) -> TradingSession:
    """A bare trading session on the same account: orders placed by hand, not through an engine."""
    key = perps.cdp_key()
    url = perps.base_url.replace("http://", "ws://") + "/ws/api/v2"
    return TradingSession(key, url, config=TEST_SESSION, credits=GatewayCredits(key.name, ROOMY))


@pytest.fixture
def sim_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def perps(tmp_path: Path, sim_overrides: dict[str, Any]) -> AsyncIterator[Perps]:
    overrides: dict[str, Any] = {"seed": 7, "tick_interval_s": 0.05, "heartbeat_interval_s": 60.0}
    overrides.update(sim_overrides)
    overrides.setdefault(
        "derivatives", DerivativesConfig(credits=Credits(enabled=False), funding_interval_s=0)
    )
    sim = Simulator(SimConfig(**overrides))
    key = new_ed25519_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve() as base_url:
        yield Perps(sim, base_url, key, tmp_path / "journal.db")
