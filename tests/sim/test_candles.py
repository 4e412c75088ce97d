"""Candles from the simulator's own trades: at every granularity each candle's OHLCV is that of the trades
whose time falls in its bucket."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from engine.sim.candles import GRANULARITIES
from engine.sim.market import Trade
from tests.sim.conftest import Served

P = "/api/v3/brokerage"


def _expected(trades: list[Trade], granularity: int) -> dict[str, dict[str, str]]:
    buckets: dict[int, list[Trade]] = {}
    for trade in trades:
        buckets.setdefault(int(trade.time) // granularity * granularity, []).append(trade)
    return {
        str(start): {
            "open": format(ts[0].price, "f"),
            "close": format(ts[-1].price, "f"),
            "high": format(max(t.price for t in ts), "f"),
            "low": format(min(t.price for t in ts), "f"),
            "volume": format(sum((t.size for t in ts), D(0)), "f"),
        }
        for start, ts in buckets.items()
    }


@pytest.mark.parametrize("public", [True, False], ids=["public", "private"])
async def test_candles_agree_with_the_trades_at_every_granularity(served: Served, public: bool) -> None:
    sim = served.sim
    seen: dict[str, Trade] = {}
    start = sim.clock.now()
    for _ in range(400):  # trades spread over about 28 hours of simulated time
        sim.clock.base_offset_s += 250
        sim.tick()
        for trade in sim.recent_trades("BTC-USD"):
            seen.setdefault(trade.trade_id, trade)
    trades = sorted(seen.values(), key=lambda t: t.time)
    assert len(trades) > 100
    end = sim.clock.now()
    sim.clock.base_offset_s = 0  # back to the host's time, so the JWTs minted now are in their window
    for name, granularity in GRANULARITIES.items():
        lo = max(int(start), int(end) - granularity * 340)
        path = f"/products/BTC-USD/candles?granularity={name}&start={lo}&end={int(end)}"
        if public:
            async with served.http.get(served.base_url + P + "/market" + path) as response:
                assert response.status == 200
                body: Any = await response.json()
        else:
            status, body = await served.call("GET", P + path)
            assert status == 200
        got = {
            c["start"]: {k: c[k] for k in ("open", "close", "high", "low", "volume")} for c in body["candles"]
        }
        in_range = [
            t for t in trades if int(t.time) // granularity * granularity >= lo // granularity * granularity
        ]
        assert got == _expected(in_range, granularity), name
        starts = [int(c["start"]) for c in body["candles"]]
        assert starts == sorted(starts, reverse=True)  # newest first, as Coinbase lists them


async def test_candles_refuse_an_unknown_granularity_and_too_wide_a_range(served: Served) -> None:
    status, _ = await served.call("GET", f"{P}/products/BTC-USD/candles?granularity=ONE_WEEK")
    assert status == 400
    path = f"{P}/products/BTC-USD/candles?granularity=ONE_MINUTE&start=0&end={60 * 400}"
    status, body = await served.call("GET", path)
    assert status == 400
    assert "350" in body["message"]
