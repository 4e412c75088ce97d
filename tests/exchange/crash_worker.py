"""A process trading on Coinbase Exchange for the crash test: starts an Engine on `exchange_venue` (which
reconciles), then places a random stream of orders until it is killed. `--final` only starts (reconciles) and
stops cleanly.

    python -m tests.exchange.crash_worker BASE_URL EXCHANGE_KEY_FILE JOURNAL SEED [--final]

EXCHANGE_KEY_FILE is JSON `{key, secret, passphrase}`. Prints `ready <reconcile report as JSON>` once
reconciled, then `sent <client_order_id>` per order answered.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import orjson

from engine.auth import ExchangeKey
from engine.errors import EngineError
from engine.marketdata.ws import Backoff
from engine.net.retry import RetryPolicy
from engine.ratelimit import BucketLimit, RateLimits
from engine.risk import RiskConfig
from engine.trading.engine import Engine, EngineConfig
from engine.trading.tracked import TrackedOrder
from engine.venues.advanced.client import Client
from engine.venues.exchange import LimitOrder, MarketOrder, exchange_venue

FAR_BELOW, FAR_ABOVE = "30000", "90000"  # resting prices the simulated market never reaches


async def place_one(engine: Engine, rng: random.Random) -> TrackedOrder | None:
    roll = rng.random()
    try:
        if roll < 0.4:
            return await engine.place("BTC-USD", "BUY", LimitOrder(size="0.001", price=FAR_BELOW))
        if roll < 0.6:
            return await engine.place("BTC-USD", "SELL", LimitOrder(size="0.001", price=FAR_ABOVE))
        if roll < 0.7:
            return await engine.place(
                "BTC-USD", "BUY", LimitOrder(size="0.001", price=FAR_BELOW, time_in_force="IOC")
            )
        if roll < 0.8:
            return await engine.place("BTC-USD", "BUY", MarketOrder(size="0.0001"))
        open_orders = engine.open_orders()
        if open_orders:
            await engine.cancel(rng.choice(open_orders))
    except EngineError:  # rejected or unknown: the journal and reconciliation deal with it
        pass
    return None


async def main(base_url: str, key_file: str, journal: str, seed: int, final: bool) -> None:
    creds = json.loads(Path(key_file).read_text())
    key = ExchangeKey(creds["key"], creds["secret"], creds["passphrase"])
    fast = BucketLimit(5000.0, 5000.0)
    client = Client(
        key,
        base_url,
        rate_limits=RateLimits(private=fast, public=fast, fills=fast),
        retry=RetryPolicy(max_attempts=3, base_delay_s=0.005, max_delay_s=0.02, budget_s=2.0),
        timeout_s=3.0,
    )
    config = EngineConfig(
        journal_path=journal,
        worker="crash",
        products=(),
        risk=RiskConfig(check_balance=False),
        housekeeping_s=0.1,
    )
    venue = exchange_venue(key, client=client, ws_backoff=Backoff(initial=0.01, maximum=0.1))
    async with client, Engine(config=config, venue=venue) as engine:
        report = engine.reconcile_report
        assert report is not None
        summary = {
            "resolved": {coid: state.value for coid, state in report.resolved.items()},
            "refreshed": {coid: state.value for coid, state in report.refreshed.items()},
            "unknown_open_orders": [o.client_order_id for o in report.unknown_open_orders],
            "fills_fetched": report.fills_fetched,
        }
        print("ready", orjson.dumps(summary).decode(), flush=True)
        if final:
            await engine.wait_ready()
            return
        rng = random.Random(seed)
        while True:  # until killed
            burst = [place_one(engine, rng) for _ in range(rng.randint(1, 4))]
            for order in await asyncio.gather(*burst):
                if order is not None:
                    print("sent", order.client_order_id, flush=True)


if __name__ == "__main__":
    base_url, key_file, journal, seed = sys.argv[1:5]
    asyncio.run(main(base_url, key_file, journal, int(seed), "--final" in sys.argv[5:]))
