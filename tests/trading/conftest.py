"""Fixtures: an in-process simulator with a live market, a registered key, and engines pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from engine.auth import CdpKey
from engine.marketdata.ws import Backoff
from engine.net.retry import RetryPolicy
from engine.sim import RateLimits, SimConfig, Simulator
from engine.trading.engine import Engine, EngineConfig
from engine.venues.advanced.client import Client
from tests.support.keys import TestKey, new_es256_key

FAST_RETRY = RetryPolicy(max_attempts=3, base_delay_s=0.005, max_delay_s=0.02, budget_s=2.0)


@dataclass
class Venue:
    sim: Simulator
    base_url: str
    key: TestKey
    journal_path: Path

    def cdp_key(self) -> CdpKey:
        return CdpKey(self.key.name, self.key.private_key)

    def config(self, **overrides: Any) -> EngineConfig:
        base = EngineConfig(
            journal_path=self.journal_path,
            worker="t",
            products=("BTC-USD",),
            housekeeping_s=0.05,
            unknown_grace_s=0.1,
            ws_backoff=Backoff(initial=0.01, maximum=0.1),
        )
        return replace(base, **overrides)

    def client(self) -> Client:
        return Client(self.cdp_key(), self.base_url, retry=FAST_RETRY, timeout_s=2.0)

    def engine(self, **overrides: Any) -> AbstractAsyncContextManager[Engine]:
        @asynccontextmanager
        async def running() -> AsyncIterator[Engine]:
            key = self.cdp_key()
            client = Client(key, self.base_url, retry=FAST_RETRY, timeout_s=2.0)
            async with (
                client,
                Engine(key, self.config(**overrides), client=client, base_url=self.base_url) as engine,
            ):
                yield engine

        return running()

    def ledger(self, client_order_id: str) -> list[dict[str, Any]]:
        return [e for e in self.sim.ledger.entries() if e["client_order_id"] == client_order_id]


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[Venue]:
    sim = Simulator(
        SimConfig(
            seed=11, tick_interval_s=0.05, heartbeat_interval_s=0.5, rate_limits=RateLimits(enabled=False)
        )
    )
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve() as base_url:
        yield Venue(sim, base_url, key, tmp_path / "journal.db")


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until `predicate()` holds (bounded); fails the test with the predicate's name otherwise."""
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition never held: {predicate}")
