"""Fixtures for the Coinbase Exchange suite: a served simulator with an Exchange (HMAC) key registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from engine.sim import Simulator
from tests.sim.conftest import quiet_config, tls  # noqa: F401 - the session's TLS fixture
from tests.support.keys import TestExchangeKey, new_exchange_key


@dataclass
class ServedExchange:
    sim: Simulator
    base_url: str
    key: TestExchangeKey


def exchange_sim(**overrides: Any) -> tuple[Simulator, TestExchangeKey]:
    sim = Simulator(quiet_config(**overrides))
    key = new_exchange_key()
    sim.register_exchange_key(key.key, key.secret, key.passphrase)
    return sim, key


@pytest.fixture
async def served() -> AsyncIterator[ServedExchange]:
    sim, key = exchange_sim()
    async with sim.serve() as base_url:
        yield ServedExchange(sim, base_url, key)
