"""Order configurations as Coinbase documents them, and the futures bookkeeping around them: each test
checks what the order did to the book and the balances, not only that it was accepted."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from typing import Any

import pytest

from engine.sim import Simulator
from engine.sim.orders import Order, OrderRefused, OrderSpec
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


def _cross_to(sim: Simulator, mid: D) -> None:
    """Move the mid without letting resting orders react yet (the test reads the book first)."""
    market = sim.markets["BTC-USD"]
    market.set_mid(mid)
    market.last_price = market.mid


def test_resting_orders_fill_partly_with_price_time_priority(sim: Simulator) -> None:
    sim.accounts.credit("USD", D("5000000"))
    first = place(sim, "BUY", {"limit_limit_gtc": {"base_size": "60", "limit_price": "59000.00"}})
    better = place(sim, "BUY", {"limit_limit_gtc": {"base_size": "1", "limit_price": "59005.00"}})
    later = place(sim, "BUY", {"limit_limit_gtc": {"base_size": "1", "limit_price": "59000.00"}})
    _cross_to(sim, D("58990"))
    market = sim.markets["BTC-USD"]
    through = sum((s for p, s in market.book.asks.walk() if p <= D("59000.00")), D(0))
    assert D(1) < through < D(61)
    sim.engine.on_tick("BTC-USD")
    assert better.status == "FILLED"  # the better price first
    assert first.status == "OPEN"
    assert first.filled_size == through - 1  # the rest of what traded through its price, no more
    assert later.filled_size == 0  # same price, queued later: waits behind the first
    assert first.average_filled_price == D("59000.00")
    assert {f.liquidity_indicator for f in sim.engine.fills} == {"MAKER"}
    usd = sim.accounts.get("USD")
    assert usd is not None
    assert usd.hold == first.hold_amount + later.hold_amount  # the unfilled part is still held


def test_a_triggered_bracket_stop_leg_works_as_a_limit_order(sim: Simulator) -> None:
    sim.accounts.credit("BTC", D("500"))
    order = place(
        sim,
        "SELL",
        {
            "trigger_bracket_gtc": {
                "base_size": "300",
                "limit_price": "65000.00",
                "stop_trigger_price": "59500.00",
            }
        },
    )
    sim.set_mid("BTC-USD", D("59400"))
    floor = D("59500.00") * D("0.95")
    assert order.trigger_status == "STOP_TRIGGERED"
    assert 0 < order.filled_size < D("300")  # not a market order: it stops at its limit
    assert order.status == "OPEN"
    assert all(f.price >= floor for f in sim.engine.fills)
    filled = order.filled_size
    sim.set_mid("BTC-USD", D("57000"))  # the book refills with bids above the stop leg's limit
    assert order.filled_size > filled
    assert sim.engine.fills[-1].price == floor
    assert sim.engine.fills[-1].liquidity_indicator == "MAKER"


def test_futures_brackets_are_reduce_only(sim: Simulator) -> None:
    bracket = {
        "trigger_bracket_gtc": {"base_size": "2", "limit_price": "70000", "stop_trigger_price": "55000"}
    }
    with pytest.raises(OrderRefused, match="reduce-only"):
        place(sim, "SELL", bracket, FUTURE)  # no position to reduce
    place(sim, "BUY", {"market_market_ioc": {"base_size": "3"}}, FUTURE)
    with pytest.raises(OrderRefused, match="reduce-only"):
        place(
            sim,
            "BUY",
            {
                "trigger_bracket_gtc": {
                    **bracket["trigger_bracket_gtc"],
                    "limit_price": "50000",
                    "stop_trigger_price": "70000",
                }
            },
            FUTURE,
        )
    with pytest.raises(OrderRefused, match="reduce-only"):
        place(
            sim, "SELL", {"trigger_bracket_gtc": {**bracket["trigger_bracket_gtc"], "base_size": "4"}}, FUTURE
        )
    assert place(sim, "SELL", bracket, FUTURE).status == "OPEN"


def test_a_quote_sized_limit_order_is_rounded_down_to_the_size_increment(sim: Simulator) -> None:
    # 1000 USD at 59000.00 is 0.01694915254... BTC: Coinbase takes 0.01694915 (BTC-USD's increment is 1e-8)
    order = place(sim, "BUY", {"limit_limit_gtc": {"quote_size": "1000", "limit_price": "59000.00"}})
    assert order.status == "OPEN"
    assert order.spec.base_size == D("0.01694915")
    assert order.spec.base_size * D("59000.00") <= D("1000")
    eth = place(sim, "SELL", {"limit_limit_gtc": {"quote_size": "100", "limit_price": "3100.00"}}, "ETH-USD")
    assert eth.spec.base_size == D("0.03225806")


async def test_preview_reports_slippage_and_is_max(served: Served) -> None:
    path = "/api/v3/brokerage/orders/preview"
    market = served.sim.markets["BTC-USD"]
    body: dict[str, Any] = {"product_id": "BTC-USD", "side": "BUY", "is_max": True}
    body["order_configuration"] = {"market_market_ioc": {"quote_size": "1"}}
    status, preview = await served.call("POST", path, body)
    assert status == 200
    assert preview["is_max"] is True
    available = served.sim.accounts.available("USD")
    assert available * D("0.99") < D(preview["order_total"]) <= available  # sized to what is there, not to 1

    served.sim.accounts.credit("USD", D("1000000"))
    top = market.best_ask()
    deep = format(market.book.asks.size_at(top) * 3, "f")
    body = {
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"market_market_ioc": {"base_size": deep}},
    }
    status, preview = await served.call("POST", path, body)
    assert status == 200
    assert preview["is_max"] is False
    average = D(preview["quote_size"]) / D(preview["base_size"])
    assert D(preview["slippage"]) == ((average - top) / top).quantize(D("1e-6"))
    assert D(preview["slippage"]) > 0  # it walks past the best level


async def test_list_orders_sequence_grows_with_order_events(served: Served) -> None:
    path = "/api/v3/brokerage/orders/historical/batch"
    _, first = await served.call("GET", path)
    place(served.sim, "BUY", {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "50000.00"}})
    _, second = await served.call("GET", path)
    assert int(second["sequence"]) > int(first["sequence"])


@pytest.mark.parametrize(
    ("when", "kind", "ends"),
    [
        ("2026-12-02T14:00:00+00:00", "INTRADAY", "2026-12-02T21:00:00+00:00"),  # 9 AM in New York
        ("2026-12-02T22:00:00+00:00", "OVERNIGHT", "2026-12-03T13:00:00+00:00"),  # 5 PM: until 8 AM
        ("2026-12-04T22:00:00+00:00", "OVERNIGHT", "2026-12-07T13:00:00+00:00"),  # Friday: until Monday
        ("2026-07-01T12:30:00+00:00", "INTRADAY", "2026-07-01T20:00:00+00:00"),  # summer time
    ],
)
def test_the_margin_window_follows_the_new_york_clock(when: str, kind: str, ends: str) -> None:
    from datetime import datetime

    from engine.sim.margin_window import current_window

    got_kind, got_end = current_window(datetime.fromisoformat(when).timestamp())
    assert got_kind == f"FCM_MARGIN_WINDOW_TYPE_{kind}"
    assert got_end == datetime.fromisoformat(ends).timestamp()


async def test_fee_tier_follows_the_30_day_volume(served: Served) -> None:
    sim = served.sim
    path = "/api/v3/brokerage/transaction_summary"
    _, entry = await served.call("GET", path)
    assert (entry["fee_tier"]["pricing_tier"], entry["fee_tier"]["taker_fee_rate"]) == ("Advanced 1", "0.006")
    sim.accounts.credit("USD", D("100000"))
    bought = place(sim, "BUY", {"market_market_ioc": {"quote_size": "12000"}})
    assert bought.total_fees == bought.filled_value * D("0.006")  # charged at the tier it traded in
    _, stepped = await served.call("GET", path)
    assert stepped["total_volume"] == float(bought.filled_value)
    assert stepped["fee_tier"]["pricing_tier"] == "Advanced 2"
    assert (stepped["fee_tier"]["taker_fee_rate"], stepped["fee_tier"]["usd_from"]) == ("0.004", "10000")
    second = place(sim, "BUY", {"market_market_ioc": {"quote_size": "1000"}})
    assert second.total_fees == second.filled_value * D("0.004")
    sim.clock.base_offset_s += 31 * 86400  # a month on, the volume has rolled out of the window
    assert sim.engine.fees.current().name == "Advanced 1"
    assert sim.engine.fees.volume_30d() == 0
    sim.clock.base_offset_s = 0


def test_a_scaled_order_is_a_ladder_of_child_limit_orders(sim: Simulator) -> None:
    config = {
        "scaled_limit_gtc": {
            "base_size": "0.6",
            "min_price": "58000.00",
            "max_price": "59000.00",
            "num_orders": 3,
            "size_distribution": "LINEAR_INCREASING",
        }
    }
    usd_before = sim.accounts.available("USD")
    parent = place(sim, "BUY", config)
    children = [sim.engine.orders[c] for c in parent.children]
    # evenly spaced prices; sizes 1:2:3 of the total, the most at the highest price
    assert [(c.spec.limit_price, c.spec.base_size) for c in children] == [
        (D("58000.00"), D("0.1")),
        (D("58500.00"), D("0.2")),
        (D("59000.00"), D("0.3")),
    ]
    held = sum((c.hold_amount for c in children), D(0))
    assert held == (D("0.1") * 58000 + D("0.2") * 58500 + D("0.3") * 59000) * D("1.006")
    assert sim.accounts.available("USD") == usd_before - held
    sim.set_mid("BTC-USD", D("58800"))  # only the top rung is crossed
    assert [c.status for c in children] == ["OPEN", "OPEN", "FILLED"]
    assert (parent.status, parent.filled_size) == ("OPEN", D("0.3"))
    assert sim.engine.cancel(parent.order_id) == (True, "UNKNOWN_CANCEL_FAILURE_REASON")
    assert [c.status for c in children] == ["CANCELLED", "CANCELLED", "FILLED"]
    assert parent.status == "CANCELLED"
    assert sim.accounts.get("USD").hold == 0  # type: ignore[union-attr]


def test_a_scaled_order_with_flat_sizes_fills_completely_when_the_market_runs_through(sim: Simulator) -> None:
    config = {
        "scaled_limit_gtc": {
            "base_size": "0.3",
            "min_price": "100.00",
            "max_price": "102.00",
            "num_orders": 3,
        }
    }
    parent = place(sim, "SELL", config, "ETH-USD")
    children = [sim.engine.orders[c] for c in parent.children]
    assert [c.spec.base_size for c in children] == [D("0.1")] * 3
    with pytest.raises(OrderRefused, match="size_distribution"):
        place(
            sim,
            "SELL",
            {"scaled_limit_gtc": {**config["scaled_limit_gtc"], "size_distribution": "CUBIC"}},
            "ETH-USD",
        )
    # the rungs are far below ETH's market: they sell at once, as takers, each at or above its limit
    assert [c.status for c in children] == ["FILLED"] * 3
    assert (parent.status, parent.filled_size) == ("FILLED", D("0.3"))


def test_a_twap_order_slices_its_size_over_its_buckets(sim: Simulator) -> None:
    from engine.sim.clock import iso

    now = sim.clock.now()
    config = {
        "twap_limit_gtd": {
            "base_size": "0.4",
            "limit_price": "61000.00",
            "start_time": iso(now),
            "end_time": iso(now + 400),
            "number_buckets": 4,
        }
    }
    order = place(sim, "BUY", config)
    assert order.filled_size == D("0.1")  # the first bucket's slice, at once
    assert all(f.price <= D("61000.00") for f in sim.engine.fills)
    sim.engine.run_twaps()
    assert order.filled_size == D("0.1")  # nothing more until the next bucket begins
    sim.clock.base_offset_s += 100
    sim.engine.run_twaps()
    assert order.filled_size == D("0.2")
    sim.clock.base_offset_s += 200  # two buckets later: both slices
    sim.engine.run_twaps()
    assert (order.filled_size, order.status) == (D("0.4"), "FILLED")
    assert order.number_of_fills >= 3
    sim.clock.base_offset_s = 0


def test_a_twap_slice_waits_when_the_market_is_above_its_limit(sim: Simulator) -> None:
    from engine.sim.clock import iso

    now = sim.clock.now()
    config = {
        "twap_limit_gtd": {
            "base_size": "0.2",
            "limit_price": "59000.00",
            "end_time": iso(now + 200),
            "number_buckets": 2,
        }
    }
    order = place(sim, "BUY", config)
    assert order.filled_size == 0  # asks are near 60000: the slice does not chase the market
    sim.clock.base_offset_s += 120
    sim.set_mid("BTC-USD", D("58500"))  # the market comes to it: both slices, now due, trade
    assert (order.filled_size, order.status) == (D("0.2"), "FILLED")
    sim.clock.base_offset_s = 0
    with pytest.raises(OrderRefused):
        place(sim, "BUY", {"twap_limit_gtd": {**config["twap_limit_gtd"], "start_time": iso(now + 300)}})
