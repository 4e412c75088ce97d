"""A trading process for the crash test: starts an Engine (which reconciles), then places a random stream of
orders until it is killed. `--final` only starts (reconciles) and stops cleanly.

    python -m tests.trading.crash_worker BASE_URL KEY_FILE JOURNAL SEED [--final]

Prints `ready <reconcile report as JSON>` once reconciled, then `sent <client_order_id>` per order answered.
"""

from __future__ import annotations

import asyncio
import random
import sys

import orjson

from engine.auth import CdpKey
from engine.errors import EngineError
from engine.net.retry import RetryPolicy
from engine.ratelimit import BucketLimit, RateLimits
from engine.risk import RiskConfig
from engine.trading.engine import Engine, EngineConfig
from engine.trading.tracked import TrackedOrder
from engine.venues.advanced.client import Client
from engine.venues.advanced.orders import LimitGtc, MarketIoc, Side

FAR_BELOW, FAR_ABOVE = "30000", "90000"  # resting prices the simulated market never reaches


async def place_one(engine: Engine, rng: random.Random) -> TrackedOrder | None:
    roll = rng.random()
    try:
        if roll < 0.45:
            return await engine.place("BTC-USD", Side.BUY, LimitGtc(base_size="0.001", limit_price=FAR_BELOW))
        if roll < 0.65:
            return await engine.place(
                "BTC-USD", Side.SELL, LimitGtc(base_size="0.001", limit_price=FAR_ABOVE)
            )
        if roll < 0.8:
            return await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.0001"))
        open_orders = engine.open_orders()
        if open_orders:
            await engine.cancel(rng.choice(open_orders))
    except EngineError:  # rejected or unknown: the journal and reconciliation deal with it
        pass
    return None


async def main(base_url: str, key_file: str, journal: str, seed: int, final: bool) -> None:
    key = CdpKey.from_json_file(key_file)
    client = Client(
        key,
        base_url,
        rate_limits=RateLimits(private=BucketLimit(5000.0, 5000.0), public=BucketLimit(5000.0, 5000.0)),
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
    async with client, Engine(key, config, client=client, base_url=base_url) as engine:
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
