"""Order configurations as Coinbase documents them, and the futures bookkeeping around them: each test
checks what the order did to the book and the balances, not only that it was accepted."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from typing import Any

import pytest

from engine.sim import Simulator
from engine.sim.orders import Order, OrderSpec
from tests.sim.conftest import Served, quiet_config

_ids = itertools.count()
FUTURE = "BIP-20DEC30-CDE"


def place(sim: Simulator, side: str, config: dict[str, Any], product: str = "BTC-USD") -> Order:
    order, created = sim.engine.submit(f"s-{next(_ids)}", product, side, OrderSpec.parse(config))
    assert created
    return order


@pytest.fixture
def sim() -> Simulator:
    return Simulator(quiet_config())


def _book_asks(sim: Simulator) -> D:
    return sum((size for _, size in sim.markets["BTC-USD"].book.asks.walk()), D(0))


@pytest.mark.parametrize("sized_by", ["base_size", "quote_size"])
def test_market_fok_fills_all_or_nothing(sim: Simulator, sized_by: str) -> None:
    market = sim.markets["BTC-USD"]
    depth = _book_asks(sim)
    value = sum((p * s for p, s in market.book.asks.walk()), D(0))
    too_much = format(depth + 1, "f") if sized_by == "base_size" else format(value * 2, "f")
    sim.accounts.credit("USD", value * 3)  # funds for the whole book: only the liquidity is short
    before = sim.accounts.available("USD")
    order = place(sim, "BUY", {"market_market_fok": {sized_by: too_much}})
    assert order.status == "CANCELLED"
    assert order.filled_size == 0
    assert _book_asks(sim) == depth  # nothing was taken
    assert sim.accounts.available("USD") == before
    # the same order sized within the book fills completely
    small = "0.01" if sized_by == "base_size" else "1000"
    filled = place(sim, "BUY", {"market_market_fok": {sized_by: small}})
    assert filled.status == "FILLED"
    if sized_by == "base_size":
        assert filled.filled_size == D("0.01")


def test_market_ioc_fills_what_the_book_has(sim: Simulator) -> None:
    depth = _book_asks(sim)
    sim.accounts.credit("USD", D("1e9"))
    order = place(sim, "BUY", {"market_market_ioc": {"base_size": format(depth + 1, "f")}})
    assert order.filled_size == depth  # unlike FOK, the part the book holds is taken


def test_futures_realized_pnl_survives_the_position_closing(sim: Simulator) -> None:
    place(sim, "BUY", {"market_market_ioc": {"base_size": "2"}}, FUTURE)
    entry = sim.engine.positions.get(FUTURE)
    assert entry is not None
    sim.set_mid(FUTURE, D("66000"))
    place(sim, "SELL", {"market_market_ioc": {"base_size": "2"}}, FUTURE)
    assert sim.engine.positions.get(FUTURE) is None
    summary = sim.advanced.balance_summary_json()
    realized = D(summary["daily_realized_pnl"]["value"])
    assert realized > 0
    fills = [f for f in sim.engine.fills if f.product_id == FUTURE]
    bought = sum((f.price * f.size for f in fills if f.side == "BUY"), D(0))
    sold = sum((f.price * f.size for f in fills if f.side == "SELL"), D(0))
    assert realized == (sold - bought) * D("0.01")


async def test_close_position_refusal_parses_in_the_official_sdk(served: Served) -> None:
    from coinbase.rest.types.orders_types import ClosePositionResponse

    status, body = await served.call(
        "POST", "/api/v3/brokerage/orders/close_position", {"client_order_id": "x", "product_id": FUTURE}
    )
    assert status == 200
    assert body["success"] is False
    parsed = ClosePositionResponse(body)
    assert parsed.order_configuration.market_market_ioc is not None
