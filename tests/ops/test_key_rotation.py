"""Key rotation inside one client and one engine (what the worker's SIGHUP uses): against the simulator,
requests after `replace_key` are signed by the new key on the same session and limiter, and the engine's
WebSocket subscriptions after a reconnect are too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.auth import CdpKey, ExchangeKey
from engine.errors import ConfigError
from engine.marketdata.ws import Backoff
from engine.net.retry import RetryPolicy
from engine.trading.engine import Engine, EngineConfig
from engine.venues.advanced.client import Client
from tests.ops.conftest import RunningSim
from tests.support.keys import new_ed25519_key, new_es256_key, new_exchange_key


async def test_client_replace_key_keeps_session_and_limiter(running_sim: RunningSim) -> None:
    sim = running_sim.sim
    first, second = new_es256_key(), new_ed25519_key()
    for key in (first, second):
        sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    old, new = CdpKey(first.name, first.private_key), CdpKey(second.name, second.private_key)
    async with Client(old, running_sim.base_url, retry=RetryPolicy.never()) as client:
        await client.accounts(limit=1)
        session, limiter, offset = client.transport.session, client.limiter, old.clock_offset
        before = sim.request_count(first.name)
        client.replace_key(new)
        await client.accounts(limit=1)
        await client.key_permissions()
        assert sim.request_count(first.name) == before  # nothing signed by the old key any more
        assert sim.request_count(second.name) == 2
        assert client.transport.session is session
        assert client.limiter is limiter
        assert new.clock_offset == offset == client.clock.signing_offset_s  # the measured clock carries over
        assert client.transport.key_id == second.name  # the new key's requests count under its own name
        exchange = new_exchange_key()
        hmac_key = ExchangeKey(exchange.key, exchange.secret, exchange.passphrase)
        with pytest.raises(ConfigError):  # another kind of key talks another API: not a rotation
            client.replace_key(hmac_key)
        assert client.transport.key is new
    old.close()
    new.close()


async def test_engine_replace_key_signs_rest_and_websocket(running_sim: RunningSim, tmp_path: Path) -> None:
    sim = running_sim.sim
    first, second = new_es256_key(), new_es256_key()
    for key in (first, second):
        sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    old, new = CdpKey(first.name, first.private_key), CdpKey(second.name, second.private_key)
    config = EngineConfig(
        journal_path=tmp_path / "journal.sqlite",
        products=("BTC-USD",),
        market_channels=("ticker",),
        ws_backoff=Backoff(initial=0.01, maximum=0.05),
    )
    client = Client(old, running_sim.base_url, retry=RetryPolicy.never())
    async with client, Engine(old, config, client=client) as engine:
        await engine.wait_ready()

        def user_session_keys() -> set[str]:
            return {s.key.name for s in sim.hub.sessions if s.key is not None and "user" in s.subscriptions}

        # wait_ready means the subscribe was sent; the simulator handles it on a later turn of the loop (on
        # 3.13 after wait_ready has returned)
        async with asyncio.timeout(10):
            while user_session_keys() != {first.name}:
                await asyncio.sleep(0.02)
        engine.replace_key(new)
        await engine.refresh_balances()
        assert sim.request_count(second.name) > 0
        for socket in engine.sockets:
            socket.drop_connection()  # the next subscribe signs with the new key
        async with asyncio.timeout(10):
            while user_session_keys() != {second.name}:
                await asyncio.sleep(0.02)
        assert all(s.stats.disconnects >= 1 for s in engine.sockets)
    old.close()
    new.close()
