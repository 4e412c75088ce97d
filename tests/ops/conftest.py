"""Fixtures for the ops suite: a running simulator and a key registered in it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from engine.sim import SimConfig, Simulator


@dataclass
class RunningSim:
    sim: Simulator
    base_url: str


@pytest.fixture
async def running_sim() -> AsyncIterator[RunningSim]:
    sim = Simulator(SimConfig(seed=7, tick_interval_s=0.05))
    async with sim.serve(host="127.0.0.1", port=0) as base_url:
        yield RunningSim(sim, base_url)
