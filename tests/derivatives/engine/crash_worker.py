"""A perpetuals trading process for the crash test: starts an Engine on the gateway (which reconciles), then
places a random stream of orders until it is killed. `--final` only starts (reconciles) and stops cleanly.

    python -m tests.derivatives.engine.crash_worker BASE_URL KEY_FILE JOURNAL SEED [--final]

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
from engine.risk import RiskConfig
from engine.trading.engine import Engine, EngineConfig
from engine.trading.tracked import TrackedOrder
from engine.venues.derivatives import GatewayCredits, PerpLimit, PerpMarket, SessionConfig, derivatives_venue
from engine.venues.derivatives.credits import CreditLimits, CreditPool

BTC = "BTC_USDC-PERPETUAL"
FAR_BELOW, FAR_ABOVE = "40000", "80000"  # resting prices the simulated market never reaches
SESSION = SessionConfig(
    call_timeout_s=3.0,
    reconnect=RetryPolicy(max_attempts=50, base_delay_s=0.01, max_delay_s=0.1, budget_s=30.0),
)
ROOMY = CreditLimits(matching=CreditPool(1, 10_000, 10_000), non_matching=CreditPool(1, 10_000, 10_000))


async def place_one(engine: Engine, rng: random.Random) -> TrackedOrder | None:
    roll = rng.random()
    try:
        if roll < 0.4:
            return await engine.place(BTC, "BUY", PerpLimit("0.001", FAR_BELOW))
        if roll < 0.6:
            return await engine.place(BTC, "SELL", PerpLimit("0.001", FAR_ABOVE))
        if roll < 0.75:
            return await engine.place(BTC, rng.choice(("BUY", "SELL")), PerpMarket("0.001"))
        open_orders = [o for o in engine.open_orders() if o.order_id]
        if open_orders:
            await engine.cancel(rng.choice(open_orders))
    except EngineError:  # rejected or unknown: the journal and reconciliation deal with it
        pass
    return None


async def main(base_url: str, key_file: str, journal: str, seed: int, final: bool) -> None:
    key = CdpKey.from_json_file(key_file)
    venue = derivatives_venue(
        key, base_url, session_config=SESSION, credits=GatewayCredits(key.name, ROOMY), market_data=False
    )
    config = EngineConfig(
        journal_path=journal,
        worker="crash",
        market_channels=(),
        risk=RiskConfig(check_balance=False),
        housekeeping_s=0.1,
        unknown_grace_s=0.3,
    )
    async with Engine(config=config, venue=venue) as engine:
        report = engine.reconcile_report
        assert report is not None
        summary = {
            "resolved": {coid: state.value for coid, state in report.resolved.items()},
            "refreshed": {coid: state.value for coid, state in report.refreshed.items()},
            "unknown_open_orders": [o.client_order_id for o in report.unknown_open_orders],
            "fills_fetched": report.fills_fetched,
            "position": str(engine.position(BTC)),  # from the gateway
        }
        print("ready", orjson.dumps(summary).decode(), flush=True)
        if final:
            # what the last kill left unknown is settled by now; let housekeeping settle what this run saw
            while any(o.state.is_unresolved for o in engine.orders.values()):
                await asyncio.sleep(0.05)
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
