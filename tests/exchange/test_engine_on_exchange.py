"""The Engine trading on Coinbase Exchange (`exchange_venue`) against the simulator on 127.0.0.1: orders,
states from the user channel, fills, the journal before the wire, a lost response settled by `client_oid`,
reconciliation on restart, the kill switch."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.errors import ConfigError, OrderRejected, OutcomeUnknown
from engine.risk import OrderRefused, ProductLimits, RiskConfig, RiskRule
from engine.trading.journal import OrderJournal, intent_log_path
from engine.trading.order_state import OrderState
from engine.venues.advanced.orders import LimitGtc, MarketFok, MarketIoc, Side
from engine.venues.exchange import LimitOrder, MarketOrder, StopOrder
from tests.exchange.engine_support import OnExchange, eventually, live_sim

D = Decimal


@pytest.fixture
async def exchange(tmp_path: Path) -> AsyncIterator[OnExchange]:
    sim, key = live_sim()
    async with sim.serve() as base_url:
        yield OnExchange(sim, base_url, key, tmp_path / "journal.db")


async def test_place_track_and_cancel_a_limit_order(exchange: OnExchange) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        assert engine.venue.name == "exchange"
        updates: list[OrderState] = []
        engine.on_order(lambda order: updates.append(order.state))
        price = exchange.below_market()
        order = await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=price))
        assert order.state is OrderState.OPEN
        assert uuid.UUID(order.client_order_id).version == 4  # Exchange takes only UUIDs as client_oid
        assert [e["order_id"] for e in exchange.ledger(order.client_order_id)] == [order.order_id]
        assert engine.open_orders("BTC-USD") == [order]
        usd_before = engine.balances()["USD"]
        assert await engine.cancel(order)
        assert order.state is OrderState.CANCELLED
        assert await order.done(1) is OrderState.CANCELLED
        assert engine.balances()["USD"] > usd_before  # the reservation was released
        assert not await engine.cancel(order)  # already done
        assert updates[0] is OrderState.OPEN
        assert updates[-1] is OrderState.CANCELLED
        assert exchange.sim.engine.orders[order.order_id].status == "CANCELLED"
    with OrderJournal(exchange.journal_path) as journal:
        entry = journal.get(order.client_order_id)
        assert entry is not None
        assert (entry.state, entry.order_id) == (OrderState.CANCELLED, order.order_id)
        sent = json.loads(entry.request)  # the Exchange body, as signed and sent
        assert sent == {
            "client_oid": order.client_order_id,
            "product_id": "BTC-USD",
            "side": "buy",
            "type": "limit",
            "price": format(D(price), "f"),
            "size": "0.01",
            "time_in_force": "GTC",
        }


async def test_the_intent_is_journalled_before_the_order_reaches_the_exchange(exchange: OnExchange) -> None:
    seen_at_accept: dict[str, bool] = {}
    log_path = intent_log_path(exchange.journal_path)

    def at_accept(order: Any, fill: Any) -> None:
        if order.client_order_id and order.client_order_id not in seen_at_accept:
            seen_at_accept[order.client_order_id] = order.client_order_id.encode() in log_path.read_bytes()

    exchange.sim.engine.order_listeners.insert(0, at_accept)
    async with exchange.engine() as engine:
        await engine.wait_ready()
        placed = [
            await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market(i)))
            for i in (100, 101)
        ]
        placed.append(await engine.place("BTC-USD", "BUY", MarketOrder(size="0.001")))
    assert seen_at_accept == {order.client_order_id: True for order in placed}


async def test_a_market_order_fills_from_the_user_channel_with_its_fees(exchange: OnExchange) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        btc_before = engine.balances()["BTC"]
        order = await engine.place("BTC-USD", "BUY", MarketOrder(size="0.05"))
        assert await order.done(5) is OrderState.FILLED
        assert order.filled_size == D("0.05")
        assert order.average_price is not None
        assert engine.position("BTC-USD") == D("0.05")
        assert engine.balances()["BTC"] == btc_before + D("0.05")
        truth = exchange.sim.engine.orders[order.order_id]
        await eventually(lambda: order.total_fees == truth.total_fees)  # read back after `done`
        assert truth.total_fees > 0
        assert engine.portfolio.fees_today == truth.total_fees
        await eventually(lambda: not engine._fills_due)
        # an Advanced Trade configuration that Exchange also has places the same order
        sell = await engine.place("BTC-USD", Side.SELL, MarketIoc(base_size="0.02"))
        assert await sell.done(5) is OrderState.FILLED
        assert engine.position("BTC-USD") == D("0.03")
    with OrderJournal(exchange.journal_path) as journal:
        fills = [f for f in journal.fills() if f.order_id == order.order_id]
        assert sum(f.size for f in fills) == D("0.05")
        assert sum(f.commission for f in fills) == truth.total_fees
        assert {f.client_order_id for f in fills} == {order.client_order_id}
        entry = journal.get(order.client_order_id)
        assert entry is not None
        assert (entry.state, entry.filled_size, entry.total_fees) == (
            OrderState.FILLED,
            D("0.05"),
            truth.total_fees,
        )


async def test_resting_orders_filled_by_the_market_are_followed_on_the_user_channel(
    exchange: OnExchange,
) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        exchange.sim.market_paused = True  # the test moves the market
        price = exchange.sim.markets["BTC-USD"].best_bid() - 100
        resting = await engine.place("BTC-USD", "BUY", LimitOrder(size="0.002", price=str(price)))
        stop = await engine.place(
            "BTC-USD",
            "SELL",
            StopOrder(size="0.001", price=str(price - 1000), stop_price=str(price - 200), stop="loss"),
        )
        assert (resting.state, stop.state) == (OrderState.OPEN, OrderState.OPEN)
        events = [(o.client_order_id, o.state, o.filled_size) for o in (resting, stop)]
        engine.on_order(lambda o: events.append((o.client_order_id, o.state, o.filled_size)))
        exchange.sim.set_mid("BTC-USD", price - 400)  # trades through the buy (as maker) and the stop
        assert await resting.done(5) is OrderState.FILLED
        assert await stop.done(5) is OrderState.FILLED
        assert (resting.filled_size, stop.filled_size) == (D("0.002"), D("0.001"))
        assert (resting.client_order_id, OrderState.FILLED, D("0.002")) in events
        for order in (resting, stop):
            truth = exchange.sim.engine.orders[str(order.order_id)]
            assert order.filled_value == truth.filled_value
            await eventually(lambda order=order, truth=truth: order.total_fees == truth.total_fees)  # type: ignore[misc]
        assert engine.position("BTC-USD") == D("0.001")


BUY_LIMIT = "limit"  # a resting buy under the market
BUY_MARKET = "market"
# rule -> (the risk config, the orders placed first, the order refused)
RULE_CASES: dict[RiskRule, tuple[RiskConfig, tuple[str, ...], Any]] = {
    RiskRule.ORDER_SIZE: (RiskConfig(default_limits=ProductLimits(max_order_size=D("0.5"))), (), "size 1"),
    RiskRule.ORDER_NOTIONAL: (
        RiskConfig(default_limits=ProductLimits(max_order_notional=D("100"))),
        (),
        BUY_LIMIT,
    ),
    RiskRule.PRICE_BAND: (RiskConfig(price_band=D("0.02")), (), "far"),
    RiskRule.NO_MARKET: (RiskConfig(price_band=D("0.02")), (), "eth market"),
    RiskRule.OPEN_ORDERS: (
        RiskConfig(default_limits=ProductLimits(max_open_orders=1)),
        (BUY_LIMIT,),
        BUY_LIMIT,
    ),
    RiskRule.POSITION: (RiskConfig(default_limits=ProductLimits(max_position=D("0.01"))), (), "market 0.02"),
    RiskRule.ALLOCATION: (RiskConfig(default_limits=ProductLimits(max_allocation=D("100"))), (), BUY_LIMIT),
    RiskRule.BALANCE: (RiskConfig(), (), "sell 5"),
    RiskRule.ORDER_RATE: (RiskConfig(max_orders=1, rate_window=60.0), (BUY_LIMIT,), BUY_LIMIT),
    RiskRule.COOLDOWN: (
        RiskConfig(max_orders=1, rate_window=60.0, rate_cooldown=60.0),
        (BUY_LIMIT, "refused"),
        BUY_LIMIT,
    ),
    RiskRule.CIRCUIT_BREAKER: (
        RiskConfig(breaker_failures=1, check_balance=False),
        ("rejected",),
        BUY_LIMIT,
    ),
    RiskRule.DAILY_LOSS: (RiskConfig(daily_loss_limit=D("0.01")), ("market fees",), BUY_MARKET),
    RiskRule.KILL_SWITCH: (RiskConfig(), ("kill",), BUY_LIMIT),
}


def _order(exchange: OnExchange, step: str) -> tuple[str, str, Any]:
    below = exchange.below_market()
    return {
        BUY_LIMIT: ("BTC-USD", "BUY", LimitOrder(size="0.01", price=below)),
        BUY_MARKET: ("BTC-USD", "BUY", MarketOrder(size="0.01")),
        "size 1": ("BTC-USD", "BUY", LimitOrder(size="1", price=below)),
        "far": ("BTC-USD", "BUY", StopOrder(size="0.01", price="6000", stop_price="6100", stop="loss")),
        "eth market": ("ETH-USD", "BUY", MarketOrder(size="0.01")),  # no market data for ETH-USD
        "market 0.02": ("BTC-USD", "BUY", MarketOrder(size="0.02")),
        "sell 5": ("BTC-USD", "SELL", LimitOrder(size="5", price="90000")),
        "rejected": ("BTC-USD", "BUY", LimitOrder(size="1000", price=below)),
        "market fees": ("BTC-USD", "BUY", MarketOrder(size="0.01")),
    }[step]


async def test_an_order_whose_user_channel_messages_are_lost_is_found_by_the_periodic_listing(
    exchange: OnExchange,
) -> None:
    async with exchange.engine(venue={"open_orders_refresh_s": 0.2}) as engine:
        await engine.wait_ready()
        order = await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market()))
        exchange.sim.faults.update({"ws_gap_rate": 1.0})  # every feed message lost on its way from here
        await client_cancel(exchange, str(order.order_id))
        assert await order.done(5) is OrderState.CANCELLED  # not on the feed: the listing missed it
        exchange.sim.faults.clear()
        assert exchange.sim.exchange.feed.gaps_injected > 0


async def test_an_order_that_finishes_while_the_feed_is_down_is_looked_up(exchange: OnExchange) -> None:
    async with exchange.engine() as engine:  # the periodic listing is 15 s off: the reconnect finds it
        await engine.wait_ready()
        order = await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market()))
        user_feed = engine.venue.connections[-1]
        connects = user_feed.stats.connects
        exchange.sim.faults.update({"ws_gap_rate": 1.0})  # the done goes missing as if the feed were down
        await client_cancel(exchange, str(order.order_id))
        exchange.sim.faults.clear()
        user_feed.drop_connection()  # type: ignore[attr-defined]
        assert await order.done(5) is OrderState.CANCELLED
        assert user_feed.stats.connects > connects


@pytest.mark.parametrize("rule", list(RULE_CASES), ids=lambda rule: rule.value)
async def test_every_risk_rule_refuses_before_the_wire(exchange: OnExchange, rule: RiskRule) -> None:
    risk, first, refused_step = RULE_CASES[rule]
    async with exchange.engine(risk=risk) as engine:
        await engine.wait_ready()
        for step in first:
            if step == "kill":
                await engine.kill("test")
            elif step == "refused":
                with pytest.raises(OrderRefused):
                    await engine.place(*_order(exchange, BUY_LIMIT))
            elif step == "rejected":
                with pytest.raises(OrderRejected):
                    await engine.place(*_order(exchange, step))
            else:
                order = await engine.place(*_order(exchange, step))
                if step == "market fees":  # its fees are read back after `done`: the day is now a loss
                    await eventually(lambda placed=order: placed.total_fees > 0)  # type: ignore[misc]
        sent_before = len(exchange.sim.ledger.entries())
        product_id, side, configuration = _order(exchange, refused_step)
        with pytest.raises(OrderRefused) as refused:
            await engine.place(product_id, side, configuration)
        assert refused.value.rule is rule
        assert len(exchange.sim.ledger.entries()) == sent_before  # nothing reached the exchange
        assert engine.order(refused.value.client_order_id) is None
    with OrderJournal(exchange.journal_path) as journal:
        assert journal.get(refused.value.client_order_id) is None


async def test_a_bad_order_is_a_clear_error_before_anything_is_journalled(exchange: OnExchange) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        with pytest.raises(ValueError, match="client_oid"):
            await engine.place("BTC-USD", "BUY", MarketOrder(size="0.01"), client_order_id="not-a-uuid")
        with pytest.raises(ValueError, match="exactly one of size or funds"):
            await engine.place("BTC-USD", "BUY", MarketOrder(size="0.01", funds="10"))
        with pytest.raises(ValueError, match="post_only"):
            await engine.place(
                "BTC-USD", "BUY", LimitOrder(size="0.01", price="100", time_in_force="FOK", post_only=True)
            )
        with pytest.raises(ValueError, match="no order like"):
            await engine.place("BTC-USD", "BUY", MarketFok(base_size="0.01"))
        with pytest.raises(ValueError, match="spot"):
            await engine.place("BTC-USD", "BUY", MarketOrder(size="0.01"), leverage="2")
        with pytest.raises(ConfigError, match="cannot edit"):
            await engine.venue.edit("any", price="1")
        with pytest.raises(ConfigError, match="no positions to close"):
            await engine.close_position("BTC-USD")
        assert engine.orders == {}
        assert exchange.sim.ledger.entries() == []
    with OrderJournal(exchange.journal_path) as journal:
        assert journal.unresolved() == []  # nothing was journalled for what was refused


async def test_a_rejected_order_is_journalled_rejected(exchange: OnExchange) -> None:
    async with exchange.engine(risk=RiskConfig(check_balance=False)) as engine:
        await engine.wait_ready()
        with pytest.raises(OrderRejected) as rejected:
            await engine.place("BTC-USD", "BUY", LimitOrder(size="1000", price=exchange.below_market()))
        client_order_id = rejected.value.client_order_id
        assert client_order_id is not None
        order = engine.order(client_order_id)
        assert order is not None
        assert order.state is OrderState.REJECTED
    with OrderJournal(exchange.journal_path) as journal:
        entry = journal.get(client_order_id)
        assert entry is not None
        assert entry.state is OrderState.REJECTED


async def test_a_lost_response_is_settled_by_client_oid_and_never_makes_two_orders(
    exchange: OnExchange,
) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        exchange.sim.faults.update({"drop_after_accept_rate": 1.0})  # accepted, then the answer is lost
        order = await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market()))
        exchange.sim.faults.clear()
        assert order.state is OrderState.OPEN  # the lookup by client_oid found it: no second send
        placed = exchange.ledger(order.client_order_id)
        assert [e["order_id"] for e in placed] == [order.order_id]
        assert exchange.sim.dice.faults.drop_after_accept_rate == 0.0


async def test_an_unknown_outcome_is_resolved_in_the_background(exchange: OnExchange) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        # accepted, the answer lost, and every lookup fails: the client gives up with the outcome unknown
        exchange.sim.faults.update({"drop_after_accept_rate": 1.0, "error_5xx_rate": 1.0})
        with pytest.raises(OutcomeUnknown) as unknown:
            await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market()))
        order = engine.order(unknown.value.client_order_id)
        assert order is not None
        assert order.state is OrderState.UNKNOWN
        exchange.sim.faults.clear()
        await eventually(lambda: not order.state.is_unresolved)
        placed = exchange.ledger(order.client_order_id)
        if placed:  # the 503s may have refused every attempt: then nothing was placed
            assert order.state is OrderState.OPEN
            assert [e["order_id"] for e in placed] == [order.order_id]
        else:
            assert order.state is OrderState.NOT_PLACED


async def test_cancel_all_and_the_kill_switch_take_every_order_off(exchange: OnExchange) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        mine = [
            await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market(i)))
            for i in range(100, 104)
        ]
        assert await engine.cancel_all("BTC-USD") == 4
        assert all(order.state is OrderState.CANCELLED for order in mine)
        mine = [
            await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market(i)))
            for i in range(100, 103)
        ]
        # an order placed with the same key by someone else: the engine does not track it
        foreign = await engine.client.exchange.create_order(
            "BTC-USD", "buy", size="0.01", price=exchange.below_market(200)
        )
        assert await engine.kill("test: runaway strategy") == 4
        assert all(order.state is OrderState.CANCELLED for order in mine)
        assert exchange.sim.engine.orders[foreign.id].status == "CANCELLED"
        with pytest.raises(OrderRefused) as refused:
            await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market()))
        assert refused.value.rule is RiskRule.KILL_SWITCH
        engine.risk.reset_kill_switch()
        again = await engine.place(
            "BTC-USD", "BUY", LimitGtc(base_size="0.01", limit_price=exchange.below_market())
        )
        assert again.state is OrderState.OPEN


async def test_restart_reconciles_the_journal_with_the_exchange(exchange: OnExchange) -> None:
    async with exchange.engine() as engine:
        await engine.wait_ready()
        resting = await engine.place("BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market()))
        to_cancel = await engine.place(
            "BTC-USD", "BUY", LimitOrder(size="0.01", price=exchange.below_market(150))
        )
        bought = await engine.place("BTC-USD", "BUY", MarketOrder(size="0.03"))
        assert await bought.done(5) is OrderState.FILLED
    # while the engine is down: one order is cancelled, one is placed by hand (unknown to the journal)
    client = exchange.client()
    async with client:
        await client.exchange.cancel_order(str(to_cancel.order_id))
        foreign = await client.exchange.create_order(
            "BTC-USD", "buy", size="0.01", price=exchange.below_market(300)
        )
    async with exchange.engine() as engine:
        report = engine.reconcile_report
        assert report is not None
        assert report.refreshed == {to_cancel.client_order_id: OrderState.CANCELLED}
        assert [o.order_id for o in report.unknown_open_orders] == [foreign.id]
        assert engine.order(resting.client_order_id) is not None
        assert engine.open_orders() == [engine.order(resting.client_order_id)]
        assert engine.position("BTC-USD") == D("0.03")
        await engine.wait_ready()
        # the user channel follows an order of the last run: cancelled by hand now, the engine hears it
        await client_cancel(exchange, str(resting.order_id))
        tracked = engine.order(resting.client_order_id)
        assert tracked is not None
        assert await tracked.done(5) is OrderState.CANCELLED
    ledger = {e["client_order_id"]: e for e in exchange.sim.ledger.entries()}
    with OrderJournal(exchange.journal_path) as journal:
        for entry in journal.entries():
            assert entry.order_id == ledger[entry.client_order_id]["order_id"]
            assert entry.state.value == ledger[entry.client_order_id]["status"]


async def client_cancel(exchange: OnExchange, order_id: str) -> None:
    async with exchange.client() as client:
        await client.exchange.cancel_order(order_id)
