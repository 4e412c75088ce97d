"""An Engine trading on Coinbase Exchange against the simulator: a live market on 127.0.0.1, an Exchange
(HMAC) key generated at test time, engines built on `exchange_venue`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.auth import ExchangeKey
from engine.marketdata.ws import Backoff
from engine.net.retry import RetryPolicy
from engine.sim import RateLimits, SimConfig, Simulator
from engine.trading.engine import Engine, EngineConfig
from engine.venues.advanced.client import Client
from engine.venues.exchange import ExchangeVenue, exchange_venue
from tests.support.keys import TestExchangeKey, new_exchange_key

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.005, max_delay_s=0.02, budget_s=2.0)


def live_sim(**overrides: Any) -> tuple[Simulator, TestExchangeKey]:
    fields: dict[str, Any] = {
        "seed": 11,
        "tick_interval_s": 0.05,
        "heartbeat_interval_s": 0.5,
        "rate_limits": RateLimits(enabled=False),
    }
    fields.update(overrides)
    sim = Simulator(SimConfig(**fields))
    key = new_exchange_key()
    sim.register_exchange_key(key.key, key.secret, key.passphrase)
    return sim, key


@dataclass
class OnExchange:
    sim: Simulator
    base_url: str
    key: TestExchangeKey
    journal_path: Path

    def exchange_key(self) -> ExchangeKey:
        return ExchangeKey(self.key.key, self.key.secret, self.key.passphrase)

    def config(self, **overrides: Any) -> EngineConfig:
        base = EngineConfig(
            journal_path=self.journal_path,
            worker="t",
            products=("BTC-USD",),
            housekeeping_s=0.05,
            unknown_grace_s=0.1,
        )
        return replace(base, **overrides)

    def client(self, key: ExchangeKey | None = None) -> Client:
        return Client(key or self.exchange_key(), self.base_url, retry=FAST_RETRY, timeout_s=2.0)

    def venue(self, key: ExchangeKey, client: Client, config: EngineConfig, **settings: Any) -> ExchangeVenue:
        settings.setdefault("ws_backoff", Backoff(initial=0.01, maximum=0.1))
        return exchange_venue(key, client=client, products=config.products, **settings)

    def engine(
        self, venue: dict[str, Any] | None = None, **overrides: Any
    ) -> AbstractAsyncContextManager[Engine]:
        """An Engine on Exchange; `venue` holds `exchange_venue` settings, `overrides` EngineConfig's."""

        @asynccontextmanager
        async def running() -> AsyncIterator[Engine]:
            config = self.config(**overrides)
            key = self.exchange_key()
            client = self.client(key)
            trading_venue = self.venue(key, client, config, **(venue or {}))
            async with client, Engine(config=config, venue=trading_venue) as engine:
                yield engine

        return running()

    def ledger(self, client_order_id: str) -> list[dict[str, Any]]:
        return [e for e in self.sim.ledger.entries() if e["client_order_id"] == client_order_id]

    def below_market(self, ticks: int = 100) -> str:
        return str(self.sim.markets["BTC-USD"].best_bid() - ticks)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until `predicate()` holds (bounded); fails the test with the predicate's name otherwise."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition never held: {predicate}")
