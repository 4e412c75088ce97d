"""Fixtures for the Coinbase Exchange suite: a served simulator with an Exchange (HMAC) key registered, and
the engine's client for it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from engine.auth import ExchangeKey
from engine.rest import Client, RetryPolicy
from engine.sim import Simulator
from tests.sim.conftest import quiet_config, tls  # noqa: F401 - the session's TLS fixture
from tests.support.keys import TestExchangeKey, new_exchange_key

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.005, max_delay_s=0.05, budget_s=8.0)


def exchange_sim(**overrides: Any) -> tuple[Simulator, TestExchangeKey]:
    sim = Simulator(quiet_config(**overrides))
    key = new_exchange_key()
    sim.register_exchange_key(key.key, key.secret, key.passphrase)
    return sim, key


def stdlib_headers(
    key: TestExchangeKey, method: str, request_path: str, body: bytes, *, timestamp: str | None = None
) -> dict[str, str]:
    """The HMAC headers by Coinbase's documented recipe, in the standard library: an independent signer."""
    stamp = timestamp or f"{time.time():.3f}"
    digest = hmac.new(
        base64.b64decode(key.secret),
        stamp.encode() + method.encode() + request_path.encode() + body,
        hashlib.sha256,
    )
    return {
        "CB-ACCESS-KEY": key.key,
        "CB-ACCESS-SIGN": base64.b64encode(digest.digest()).decode(),
        "CB-ACCESS-TIMESTAMP": stamp,
        "CB-ACCESS-PASSPHRASE": key.passphrase,
        "Content-Type": "application/json",
    }


@dataclass
class ServedExchange:
    sim: Simulator
    base_url: str
    key: TestExchangeKey
    http: aiohttp.ClientSession

    def client(self, *, passphrase: str | None = None, secret: str | None = None, **options: Any) -> Client:
        options.setdefault("retry", FAST_RETRY)
        key = ExchangeKey(self.key.key, secret or self.key.secret, passphrase or self.key.passphrase)
        return Client(key, self.base_url, **options)

    async def raw(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """One request signed by the stdlib recipe (or with `headers` as given)."""
        sent = headers if headers is not None else stdlib_headers(self.key, method, path, body)
        async with self.http.request(
            method, self.base_url + path, data=body or None, headers=sent
        ) as response:
            text = await response.read()
            try:
                return response.status, await response.json(content_type=None)
            except ValueError:
                return response.status, text.decode()


@pytest.fixture
def sim_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def served(sim_overrides: dict[str, Any]) -> AsyncIterator[ServedExchange]:
    sim, key = exchange_sim(**sim_overrides)
    async with sim.serve() as base_url, aiohttp.ClientSession() as http:
        yield ServedExchange(sim, base_url, key, http)
