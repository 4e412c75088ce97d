"""Two workers on one key sharing a real redis-server: signals through either webhook go on the stream and are
executed once, by whichever worker takes them, through each worker's Engine; the rate budget is the Redis
limiter's; when Redis goes away the limiter's fallback shows in /metrics and /healthz."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from engine.ops.config import parse_config
from engine.ratelimit.redis_limiter import RedisRateLimiter
from engine.signals.execution import OutcomeStatus
from engine.signals.model import parse_signal, signal_client_order_id
from engine.worker import Worker
from tests.ops.conftest import RunningSim
from tests.ops.worker_process import eventually, metric, post_signal, resting_buy
from tests.scaleout.redis_server import RedisServer
from tests.support.keys import new_es256_key, new_webhook_secret


def _config(running_sim: RunningSim, redis_url: str, tmp_path: Path, name: str) -> Any:
    return parse_config(
        {
            "exchange": {"base_url": running_sim.base_url},
            "limits": {"redis_url": redis_url, "redis_namespace": "ops", "expected_workers": 2},
            "risk": {"products": ["BTC-USD"], "max_order_size": "1"},
            "signals": {
                "port": 0,
                "redis_url": redis_url,
                "redis_namespace": "ops",
                "consumer": name,
                "reclaim_idle_s": 5,
            },
            "metrics": {"port": 0},
            "journal": {"path": str(tmp_path / f"{name}.sqlite")},
        }
    )


async def test_two_workers_share_the_stream_and_the_redis_limiter(
    running_sim: RunningSim, redis_server: RedisServer, tmp_path: Path
) -> None:
    sim = running_sim.sim
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    webhook_secret = new_webhook_secret()
    env = {
        "COINBASE_API_KEY": key.name,
        "COINBASE_API_SECRET": key.private_key,
        "ENGINE_WEBHOOK_SECRET": webhook_secret,
    }
    workers = [Worker(_config(running_sim, redis_server.url, tmp_path, name), environ=env) for name in "ab"]
    for worker in workers:
        await worker.start()
    signal_ids = [f"shared-{i}" for i in range(8)]
    try:
        mid = sim.markets["BTC-USD"].mid
        async with aiohttp.ClientSession() as session:
            for i, signal_id in enumerate(signal_ids):
                webhook = workers[i % 2].webhook_url
                assert await post_signal(session, webhook, webhook_secret, resting_buy(signal_id, mid)) == 202
            # the same signal through the other worker's webhook: the shared replay guard refuses it
            body = resting_buy(signal_ids[0], mid)
            assert await post_signal(session, workers[1].webhook_url, webhook_secret, body) == 409

            async def all_placed() -> bool:
                acked = sum(
                    w.metrics.value("engine_orders_total", {"outcome": "acknowledged"}) for w in workers
                )
                return acked == len(signal_ids)

            await eventually(all_placed)
            # a signal handed over again (its worker died) is looked up before anything is placed:
            # found on the exchange even by the worker that did not place it
            for worker in workers:
                assert worker.executor is not None
                outcome = await worker.executor.recover(parse_signal(body))
                assert outcome is not None
                assert (outcome.status, outcome.client_order_id) == (
                    OutcomeStatus.PLACED,
                    signal_client_order_id(signal_ids[0]),
                )
                assert outcome.order_id
            for worker in workers:
                limiter = worker.limiter
                assert isinstance(limiter, RedisRateLimiter)
                assert limiter.redis_calls > 0  # every request's slot came from Redis
                assert await metric(session, worker.ops_url, "engine_limiter_fallback_active") == 0

            # Redis goes away: the limiter falls back to its local share, and says so
            redis_server.stop()
            engine = workers[0].engine
            assert engine is not None
            await engine.refresh_balances()  # a REST call through the limiter
            assert await metric(session, workers[0].ops_url, "engine_limiter_fallback_active") == 1
            assert await metric(session, workers[0].ops_url, "engine_limiter_fallbacks_total") == 1
            async with session.get(f"{workers[0].ops_url}/healthz") as response:
                health = await response.json()
            assert health["checks"]["limiter_fallback"] is True
            redis_server.start()
    finally:
        await asyncio.gather(*(worker.stop() for worker in workers))
    assert sum(w.stats.cancelled_on_exit for w in workers) == len(signal_ids)

    # one order per signal
    assert running_sim.ledger() == {signal_client_order_id(s): ["CANCELLED"] for s in signal_ids}
