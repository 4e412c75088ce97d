"""Fixtures for the ops suite: a running simulator, and a real redis-server (from tests.scaleout)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from engine.sim import SimConfig, Simulator
from tests.scaleout.conftest import redis_server

__all__ = ["RunningSim", "redis_server"]


@dataclass
class RunningSim:
    sim: Simulator
    base_url: str

    def ledger(self) -> dict[str, list[str]]:
        """Every order the simulator accepted: client_order_id -> the status of each order under it."""
        by_coid: dict[str, list[str]] = {}
        for order in self.sim.ledger:
            by_coid.setdefault(order.client_order_id, []).append(order.status)
        return by_coid


@pytest.fixture
async def running_sim() -> AsyncIterator[RunningSim]:
    sim = Simulator(SimConfig(seed=7, tick_interval_s=0.05))
    async with sim.serve(host="127.0.0.1", port=0) as base_url:
        yield RunningSim(sim, base_url)
