"""`ExchangeVenue` on its own against the simulator: the `Venue` protocol's typed values in and out, every
time in force, and the feed's messages folded into order events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from engine.errors import ConfigError
from engine.marketdata.feed import MarketFeed
from engine.venues.advanced.orders import (
    LimitFok,
    LimitGtc,
    MarketIoc,
    SorLimitIoc,
    StopDirection,
    StopLimitGtc,
)
from engine.venues.base import OpenOrdersSnapshot, OrderEvent, OrderState, OrderUpdate, Venue
from engine.venues.exchange import ExchangeVenue, LimitOrder, MarketOrder, StopOrder, exchange_venue
from engine.venues.exchange.feed import OrderEvent as FeedMessage
from engine.venues.exchange.orders import ExchangeOrderRequest
from tests.exchange.engine_support import OnExchange, eventually, live_sim

D = Decimal


@pytest.fixture
async def exchange(tmp_path: Path) -> AsyncIterator[OnExchange]:
    sim, key = live_sim()
    async with sim.serve() as base_url:
        yield OnExchange(sim, base_url, key, tmp_path / "journal.db")


def new_id() -> str:
    return str(uuid.uuid4())


async def test_the_adapter_speaks_typed_values(exchange: OnExchange) -> None:
    adapter: Venue = exchange_venue(
        exchange.exchange_key(), base_url=exchange.base_url, products=("BTC-USD",)
    )
    assert isinstance(adapter, ExchangeVenue)
    assert adapter.capabilities.idempotent_client_order_id
    assert adapter.capabilities.uuid_client_order_ids
    assert not adapter.capabilities.edit
    await adapter.open()
    try:
        products = {p.product_id: p.currencies for p in await adapter.products()}
        assert products["BTC-USD"] == ("BTC", "USD")
        balances = {b.currency: b for b in await adapter.balances()}
        assert balances["USD"].available is not None
        assert balances["USD"].available > 0
        assert await adapter.positions() == []  # spot: holdings are balances

        events: list[OrderEvent] = []
        adapter.start(MarketFeed(), events.append)
        await adapter.wait_ready(5)
        # the subscribe's listing (REST, after the subscribe is confirmed) before anything is placed
        await eventually(lambda: any(isinstance(e, OpenOrdersSnapshot) for e in events))
        resting_id, filled_id = new_id(), new_id()
        request = adapter.order_request(
            "BTC-USD",
            "BUY",
            LimitOrder(size="0.01", price=exchange.below_market()),
            client_order_id=resting_id,
        )
        assert isinstance(request, ExchangeOrderRequest)
        assert request.side == "BUY"
        assert request.configuration.fragment() == {
            "base_size": "0.01",
            "limit_price": exchange.below_market(),
        }
        ack = await adapter.submit(request)
        assert (ack.client_order_id, ack.side) == (resting_id, "BUY")
        found = await adapter.find_order(resting_id)
        assert found is not None
        assert (found.order_id, found.client_order_id, found.state) == (
            ack.order_id,
            resting_id,
            OrderState.OPEN,
        )
        assert [o.order_id for o in await adapter.open_orders("BTC-USD")] == [ack.order_id]
        with pytest.raises(ConfigError, match="cannot edit"):
            await adapter.edit(ack.order_id, size="0.02")
        with pytest.raises(ConfigError, match="spot"):
            await adapter.close_position("BTC-USD", None, client_order_id=new_id())
        outcomes = await adapter.cancel([ack.order_id, ack.order_id])  # the second: already done
        assert [(o.order_id, o.success) for o in outcomes] == [(ack.order_id, True), (ack.order_id, False)]
        assert (await adapter.order(ack.order_id)).state is OrderState.CANCELLED
        forgotten = await adapter.order(new_id())  # Exchange's 404: cancelled with nothing filled
        assert (forgotten.state, forgotten.filled_size) == (OrderState.CANCELLED, 0)
        assert await adapter.find_order(new_id()) is None

        filled = await adapter.submit(
            adapter.order_request("BTC-USD", "BUY", MarketOrder(size="0.01"), client_order_id=filled_id)
        )
        fills = await adapter.fills([filled.order_id])
        assert sum(f.size for f in fills) == D("0.01")
        assert {(f.order_id, f.client_order_id, f.product_id, f.side) for f in fills} == {
            (filled.order_id, filled_id, "BTC-USD", "BUY")
        }
        assert all(f.commission > 0 and f.trade_time for f in fills)

        def updates(coid: str) -> list[OrderUpdate]:
            return [e for e in events if isinstance(e, OrderUpdate) and e.client_order_id == coid]

        await eventually(lambda: any(u.state is OrderState.CANCELLED for u in updates(resting_id)))
        await eventually(lambda: any(u.total_fees for u in updates(filled_id)))  # read back after done
        assert isinstance(events[0], OpenOrdersSnapshot)  # the subscribe's listing came first
        states = [u.state for u in updates(filled_id)]
        assert states[0] is OrderState.OPEN
        assert OrderState.FILLED in states
        last = updates(filled_id)[-1]
        truth = exchange.sim.engine.orders[filled.order_id]
        assert (last.order_id, last.filled_size, last.total_fees) == (
            filled.order_id,
            D("0.01"),
            truth.total_fees,
        )
    finally:
        await adapter.stop()
        await adapter.close()
    assert not adapter.connections


@pytest.mark.parametrize(
    ("configuration", "spec_key", "post_only"),
    [
        (LimitOrder(size="0.01", price="1000"), "limit_limit_gtc", False),
        (LimitOrder(size="0.01", price="1000", post_only=True), "limit_limit_gtc", True),
        (
            LimitOrder(size="0.01", price="1000", time_in_force="GTT", cancel_after="min"),
            "limit_limit_gtd",
            False,
        ),
        (LimitOrder(size="0.01", price="1000", time_in_force="IOC"), "sor_limit_ioc", False),
        (LimitOrder(size="0.01", price="1000", time_in_force="FOK"), "limit_limit_fok", False),
        (
            StopOrder(size="0.01", price="900", stop_price="1000", stop="loss"),
            "stop_limit_stop_limit_gtc",
            False,
        ),
        (MarketOrder(funds="10"), "market_market_ioc", False),
        # the Advanced Trade configurations Exchange also has
        (LimitGtc(base_size="0.01", limit_price="1000", post_only=True), "limit_limit_gtc", True),
        (LimitFok(base_size="0.01", limit_price="1000"), "limit_limit_fok", False),
        (SorLimitIoc(base_size="0.01", limit_price="1000"), "sor_limit_ioc", False),
        (MarketIoc(quote_size="10"), "market_market_ioc", False),
        (
            StopLimitGtc(
                base_size="0.01", limit_price="900", stop_price="1000", stop_direction=StopDirection.DOWN
            ),
            "stop_limit_stop_limit_gtc",
            False,
        ),
    ],
)
async def test_every_order_shape_reaches_the_exchange_as_meant(
    exchange: OnExchange, configuration: object, spec_key: str, post_only: bool
) -> None:
    adapter = exchange_venue(exchange.exchange_key(), base_url=exchange.base_url, user_channel=False)
    await adapter.open()
    try:
        ack = await adapter.submit(
            adapter.order_request("BTC-USD", "BUY", configuration, client_order_id=new_id())
        )
        spec = exchange.sim.engine.orders[ack.order_id].spec
        assert (spec.config_key, spec.post_only) == (spec_key, post_only)
    finally:
        await adapter.close()


async def test_a_done_whose_matches_were_lost_is_read_back_from_rest(exchange: OnExchange) -> None:
    """The user channel's `done` arrives but the `match`es before it did not: the fold knows no fill, the
    read-back after `done` brings the exchange's own filled size and fees."""
    adapter = exchange_venue(exchange.exchange_key(), base_url=exchange.base_url, user_channel=False)
    events: list[OrderEvent] = []
    await adapter.open()
    try:
        adapter.start(MarketFeed(), events.append)
        client_oid = new_id()
        filled = await adapter.submit(
            adapter.order_request("BTC-USD", "BUY", MarketOrder(size="0.01"), client_order_id=client_oid)
        )
        for kind, reason in (("received", ""), ("done", "filled")):  # as the feed hands them on
            adapter._on_feed_message(
                FeedMessage(
                    kind, filled.order_id, client_oid, "BTC-USD", "buy", 1, None, None, None, reason, ""
                )
            )
        await eventually(lambda: any(isinstance(e, OrderUpdate) and e.total_fees for e in events))
        updates = [e for e in events if isinstance(e, OrderUpdate)]
        assert [u.state for u in updates] == [OrderState.OPEN, OrderState.FILLED, OrderState.FILLED]
        assert updates[1].filled_size == 0  # the fold: no match seen
        truth = exchange.sim.engine.orders[filled.order_id]
        assert (updates[2].filled_size, updates[2].total_fees) == (D("0.01"), truth.total_fees)
    finally:
        await adapter.stop()
        await adapter.close()
