"""Matching, holds, fees, expiry and futures, through the simulator's engine with the market steered."""

from __future__ import annotations

import itertools
import time
from decimal import Decimal as D
from typing import Any

import pytest

from engine.sim import Simulator
from engine.sim.book import ZERO, BookSide
from engine.sim.clock import iso
from engine.sim.orders import Order, OrderRefused, OrderSpec
from tests.sim.conftest import quiet_config

_ids = itertools.count()


def place(
    sim: Simulator, side: str, config: dict[str, Any], product: str = "BTC-USD", cid: str = ""
) -> Order:
    order, created = sim.engine.submit(cid or f"t-{next(_ids)}", product, side, OrderSpec.parse(config))
    assert created
    return order


def usd(sim: Simulator) -> tuple[D, D]:
    account = sim.accounts.get("USD")
    assert account is not None
    return account.balance, account.hold


@pytest.fixture
def sim() -> Simulator:
    return Simulator(quiet_config())


def test_market_buy_by_quote_fills_against_the_book_with_taker_fee(sim: Simulator) -> None:
    before_usd, _ = usd(sim)
    best_ask = sim.markets["BTC-USD"].best_ask()
    order = place(sim, "BUY", {"market_market_ioc": {"quote_size": "1000"}})
    assert order.status == "FILLED"
    assert order.filled_size > 0
    assert order.average_filled_price >= best_ask
    assert order.total_fees == order.filled_value * D("0.006")
    after_usd, hold = usd(sim)
    assert hold == 0
    assert before_usd - after_usd == order.filled_value + order.total_fees
    assert before_usd - after_usd <= D("1000")
    btc = sim.accounts.get("BTC")
    assert btc is not None
    assert btc.balance == D("2") + order.filled_size
    assert [f.liquidity_indicator for f in sim.engine.fills] == ["TAKER"] * order.number_of_fills


def test_market_sell_walks_several_levels_and_consumes_liquidity(sim: Simulator) -> None:
    market = sim.markets["BTC-USD"]
    top = market.best_bid()
    top_size = market.book.bids.size_at(top)
    order = place(sim, "SELL", {"market_market_ioc": {"base_size": format(top_size + D("0.5"), "f")}})
    assert order.status == "FILLED"
    assert order.number_of_fills >= 2
    assert market.book.bids.size_at(top) == 0  # the top level was taken
    changes = market.book.drain_changes()
    assert ("bid", top, D(0)) in changes


def test_limit_gtc_rests_with_hold_then_fills_as_maker_when_the_market_crosses(sim: Simulator) -> None:
    order = place(sim, "BUY", {"limit_limit_gtc": {"base_size": "0.1", "limit_price": "59000.00"}})
    assert order.status == "OPEN"
    _, hold = usd(sim)
    assert hold == D("0.1") * D("59000.00") * D("1.006")
    sim.set_mid("BTC-USD", D("58900"))
    assert order.status == "FILLED"
    assert order.average_filled_price == D("59000.00")
    assert sim.engine.fills[-1].liquidity_indicator == "MAKER"
    assert order.total_fees == D("0.1") * D("59000.00") * D("0.004")
    balance, hold = usd(sim)
    assert hold == 0
    assert balance == D("100000") - D("5900") - order.total_fees


def test_marketable_limit_takes_then_rests_the_remainder(sim: Simulator) -> None:
    market = sim.markets["BTC-USD"]
    price = market.best_ask()
    available = market.book.asks.size_at(price)
    order = place(
        sim,
        "BUY",
        {"limit_limit_gtc": {"base_size": format(available + D("0.1"), "f"), "limit_price": str(price)}},
    )
    assert order.status == "OPEN"
    assert order.filled_size == available
    assert order.leaves == D("0.1")


def test_ioc_cancels_the_remainder_and_fok_fills_all_or_nothing(sim: Simulator) -> None:
    market = sim.markets["BTC-USD"]
    price = market.best_ask()
    available = market.book.asks.size_at(price)
    too_much = format(available + D("0.1"), "f")
    ioc = place(sim, "BUY", {"sor_limit_ioc": {"base_size": too_much, "limit_price": str(price)}})
    assert ioc.status == "CANCELLED"
    assert ioc.filled_size == available
    price = market.best_bid()
    available = market.book.bids.size_at(price)
    fok = place(
        sim,
        "SELL",
        {"limit_limit_fok": {"base_size": format(available + D("0.1"), "f"), "limit_price": str(price)}},
    )
    assert fok.status == "CANCELLED"
    assert fok.filled_size == 0
    assert fok.number_of_fills == 0
    fok_ok = place(
        sim, "SELL", {"limit_limit_fok": {"base_size": format(available, "f"), "limit_price": str(price)}}
    )
    assert fok_ok.status == "FILLED"
    assert fok_ok.filled_size == available
    assert usd(sim)[1] == 0


def test_post_only_that_would_cross_is_refused_and_holds_nothing(sim: Simulator) -> None:
    ask = sim.markets["BTC-USD"].best_ask()
    with pytest.raises(OrderRefused) as refused:
        place(
            sim, "BUY", {"limit_limit_gtc": {"base_size": "0.1", "limit_price": str(ask), "post_only": True}}
        )
    assert refused.value.error == "INVALID_LIMIT_PRICE_POST_ONLY"
    assert len(sim.ledger) == 0
    assert usd(sim)[1] == 0


def test_insufficient_funds_is_refused(sim: Simulator) -> None:
    with pytest.raises(OrderRefused) as refused:
        place(sim, "BUY", {"limit_limit_gtc": {"base_size": "10", "limit_price": "59000.00"}})
    assert refused.value.error == "INSUFFICIENT_FUND"
    assert refused.value.preview_failure_reason == "PREVIEW_INSUFFICIENT_FUND"
    with pytest.raises(OrderRefused):
        place(sim, "SELL", {"market_market_ioc": {"base_size": "3"}})  # only 2 BTC


def test_stop_limit_waits_for_its_trigger_then_trades(sim: Simulator) -> None:
    config = {
        "stop_limit_stop_limit_gtc": {
            "base_size": "0.5",
            "limit_price": "57000.00",
            "stop_price": "58000.00",
            "stop_direction": "STOP_DIRECTION_STOP_DOWN",
        }
    }
    order = place(sim, "SELL", config)
    assert order.status == "OPEN"
    assert order.trigger_status == "STOP_PENDING"
    btc = sim.accounts.get("BTC")
    assert btc is not None
    assert btc.hold == D("0.5")
    sim.set_mid("BTC-USD", D("59000"))
    assert order.trigger_status == "STOP_PENDING"
    sim.set_mid("BTC-USD", D("57900"))
    assert order.trigger_status == "STOP_TRIGGERED"
    assert order.status == "FILLED"
    assert order.average_filled_price >= D("57000.00")
    assert btc.hold == 0
    assert btc.balance == D("1.5")
    with pytest.raises(OrderRefused) as refused:  # a stop-down above the last trade is refused
        place(
            sim,
            "SELL",
            {"stop_limit_stop_limit_gtc": {**config["stop_limit_stop_limit_gtc"], "stop_price": "60000.00"}},
        )
    assert refused.value.preview_failure_reason == "PREVIEW_STOP_PRICE_ABOVE_LAST_TRADE_PRICE"


def test_bracket_takes_profit_or_stops_out(sim: Simulator) -> None:
    take_profit = place(
        sim,
        "SELL",
        {
            "trigger_bracket_gtc": {
                "base_size": "0.2",
                "limit_price": "61000.00",
                "stop_trigger_price": "59000.00",
            }
        },
    )
    stop_out = place(
        sim,
        "SELL",
        {
            "trigger_bracket_gtc": {
                "base_size": "0.2",
                "limit_price": "65000.00",
                "stop_trigger_price": "59500.00",
            }
        },
    )
    assert take_profit.status == stop_out.status == "OPEN"
    sim.set_mid("BTC-USD", D("59400"))
    assert stop_out.status == "FILLED"
    assert stop_out.trigger_status == "STOP_TRIGGERED"
    assert stop_out.average_filled_price < D("59500")  # sold at market after the trigger
    assert take_profit.status == "OPEN"
    sim.set_mid("BTC-USD", D("61100"))
    assert take_profit.status == "FILLED"
    assert take_profit.average_filled_price == D("61000.00")


def test_gtd_order_expires_and_releases_its_hold(sim: Simulator) -> None:
    end = iso(time.time() + 30)
    order = place(
        sim, "BUY", {"limit_limit_gtd": {"base_size": "0.1", "limit_price": "50000.00", "end_time": end}}
    )
    assert usd(sim)[1] > 0
    sim.faults.clock_offset_s = 31  # the server's clock moves past end_time
    sim.engine.expire_due()
    assert order.status == "EXPIRED"
    assert usd(sim)[1] == 0


def test_cancel_releases_the_hold_and_a_second_cancel_fails(sim: Simulator) -> None:
    order = place(sim, "SELL", {"limit_limit_gtc": {"base_size": "1", "limit_price": "70000.00"}})
    btc = sim.accounts.get("BTC")
    assert btc is not None
    assert btc.hold == 1
    assert sim.engine.cancel(order.order_id) == (True, "UNKNOWN_CANCEL_FAILURE_REASON")
    assert btc.hold == 0
    assert order.status == "CANCELLED"
    assert sim.engine.cancel(order.order_id)[0] is False
    assert sim.engine.cancel("no-such-order") == (False, "UNKNOWN_CANCEL_ORDER")


def test_edit_moves_price_and_hold(sim: Simulator) -> None:
    order = place(sim, "BUY", {"limit_limit_gtc": {"base_size": "0.1", "limit_price": "50000.00"}})
    assert sim.engine.edit(order.order_id, D("0.2"), D("51000.00")) is None
    assert usd(sim)[1] == D("0.2") * D("51000.00") * D("1.006")
    assert order.spec.config["limit_price"] == "51000.00"
    assert len(order.edit_history) == 1
    sim.set_mid("BTC-USD", D("50900"))
    assert order.status == "FILLED"
    assert order.average_filled_price == D("51000.00")


def test_client_order_id_is_idempotent(sim: Simulator) -> None:
    spec = {"limit_limit_gtc": {"base_size": "0.1", "limit_price": "50000.00"}}
    first, created = sim.engine.submit("same-id", "BTC-USD", "BUY", OrderSpec.parse(spec))
    again, created_again = sim.engine.submit("same-id", "BTC-USD", "BUY", OrderSpec.parse(spec))
    assert created
    assert not created_again
    assert again is first
    assert len(sim.ledger) == 1
    assert usd(sim)[1] == D("0.1") * D("50000.00") * D("1.006")  # held once


def test_every_documented_configuration_does_what_it_says(sim: Simulator) -> None:
    end = iso(time.time() + 3600)
    configs = [
        {"market_market_fok": {"base_size": "0.001"}},
        {
            "twap_limit_gtd": {
                "base_size": "0.01",
                "limit_price": "50000.00",
                "start_time": iso(time.time()),
                "end_time": end,
            }
        },
        {
            "scaled_limit_gtc": {
                "orders": [
                    {"base_size": "0.01", "limit_price": "50000.00"},
                    {"base_size": "0.01", "limit_price": "49000.00"},
                ]
            }
        },
        {
            "stop_limit_stop_limit_gtd": {
                "base_size": "0.01",
                "limit_price": "62000.00",
                "stop_price": "61000.00",
                "stop_direction": "STOP_DIRECTION_STOP_UP",
                "end_time": end,
            }
        },
        {
            "trigger_bracket_gtd": {
                "base_size": "0.01",
                "limit_price": "65000.00",
                "stop_trigger_price": "55000.00",
                "end_time": end,
            }
        },
    ]
    btc_before = sim.accounts.available("BTC")
    fok, twap, scaled, stop, bracket = (
        place(sim, "SELL" if "trigger_bracket_gtd" in config else "BUY", config) for config in configs
    )
    # each did what its configuration says, not only "accepted"
    assert (fok.status, fok.filled_size) == ("FILLED", D("0.001"))
    assert (twap.status, twap.filled_size) == ("OPEN", 0)
    assert twap.hold_amount == D("0.01") * D("50000.00") * D("1.006")  # limit value plus the taker fee
    children = [sim.engine.orders[c] for c in scaled.children]  # the ladder: one limit order per rung
    assert [(c.spec.limit_price, c.status, c.originating_order_id) for c in children] == [
        (D("49000.00"), "OPEN", scaled.order_id),
        (D("50000.00"), "OPEN", scaled.order_id),
    ]
    assert [c.hold_amount for c in children] == [D("0.01") * p * D("1.006") for p in (D("49000"), D("50000"))]
    assert (scaled.status, scaled.hold_amount) == ("OPEN", 0)
    assert (stop.status, stop.trigger_status, stop.spec.end_time is not None) == (
        "OPEN",
        "STOP_PENDING",
        True,
    )
    assert (bracket.status, bracket.trigger_status) == ("OPEN", "STOP_PENDING")
    assert (bracket.hold_currency, bracket.hold_amount) == ("BTC", D("0.01"))
    assert sim.accounts.available("BTC") == btc_before + fok.filled_size - D("0.01")
    sim.set_mid("BTC-USD", D("60900"))  # below the stop: nothing happens
    assert (stop.trigger_status, stop.filled_size) == ("STOP_PENDING", 0)
    sim.set_mid("BTC-USD", D("61500"))  # through the stop: its limit order buys up to 62000
    assert (stop.trigger_status, stop.status) == ("STOP_TRIGGERED", "FILLED")
    assert D("61000") < stop.average_filled_price <= D("62000.00")
    with pytest.raises(OrderRefused) as refused:
        place(sim, "BUY", {"limit_limit_gtc": {"base_size": 0.1, "limit_price": "50000.00"}})  # a float
    assert refused.value.error == "INVALID_ARGUMENT"


def test_futures_position_margin_and_close_position(sim: Simulator) -> None:
    product = "BIP-20DEC30-CDE"
    market = sim.markets[product]
    buying_power = sim.engine.futures_buying_power()
    order = place(sim, "BUY", {"market_market_ioc": {"base_size": "10"}}, product=product)
    assert order.status == "FILLED"
    position = sim.engine.positions.get(product)
    assert position is not None
    assert position.contracts == 10
    assert position.side == "LONG"
    margin = D(10) * D("0.01") * market.mid * D("0.10")
    assert sim.engine.futures_buying_power() == buying_power - margin - order.total_fees
    assert order.total_fees == D("2.00")  # 10 contracts at $0.20
    summary = sim.advanced.balance_summary_json()
    assert summary["initial_margin"]["value"] == format(margin, "f")
    sim.set_mid(product, market.mid + 1000)
    summary = sim.advanced.balance_summary_json()
    assert D(summary["unrealized_pnl"]["value"]) > 0
    close = sim.engine.close_position("close-1", product, None, "")
    assert close.side == "SELL"
    assert close.status == "FILLED"
    assert sim.engine.positions.get(product) is None
    assert D(sim.advanced.balance_summary_json()["initial_margin"]["value"]) == 0
    with pytest.raises(OrderRefused):
        sim.engine.close_position("close-2", product, None, "")


def test_same_seed_same_market() -> None:
    a, b = Simulator(quiet_config(seed=42)), Simulator(quiet_config(seed=42))
    for sim in (a, b):
        for _ in range(50):
            sim.tick()
    assert a.markets["BTC-USD"].mid == b.markets["BTC-USD"].mid
    assert a.markets["ETH-USD"].book.snapshot() == b.markets["ETH-USD"].book.snapshot()
    assert (
        place(a, "BUY", {"market_market_ioc": {"base_size": "0.01"}}).order_id
        == place(b, "BUY", {"market_market_ioc": {"base_size": "0.01"}}).order_id
    )
    c = Simulator(quiet_config(seed=43))
    for _ in range(50):
        c.tick()
    assert c.markets["BTC-USD"].mid != a.markets["BTC-USD"].mid


@pytest.mark.parametrize("is_bid", [True, False])
def test_book_walk_is_best_first_while_the_taker_removes_or_resizes_each_level(is_bid: bool) -> None:
    side = BookSide(is_bid)
    prices = [D(p) for p in ("100", "101", "102", "103")]
    for price in prices:
        side.set(price, D(1))
    best_first = sorted(prices, reverse=is_bid)
    walked = []
    for n, (price, size) in enumerate(side.walk()):
        walked.append((price, size))
        side.set(price, ZERO if n % 2 == 0 else D("0.5"))  # consume the 1st and 3rd, shrink the others
    assert walked == [(price, D(1)) for price in best_first]
    assert side.levels() == [(price, D("0.5")) for price in best_first[1::2]]
