"""The Advanced Trade venue behind the `Venue` protocol, against the simulator: typed values in and out,
and an Engine given the venue explicitly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import NotFound
from engine.marketdata.feed import MarketFeed
from engine.trading.engine import Engine
from engine.trading.order_state import OrderState
from engine.venues.advanced.orders import LimitGtc, MarketIoc, OrderRequest, Side
from engine.venues.advanced.venue import AdvancedTradeVenue, user_channel_events
from engine.venues.base import OpenOrdersSnapshot, OrderEvent, OrderUpdate, Venue
from tests.trading.conftest import Venue as Simulated
from tests.trading.conftest import eventually

D = Decimal


def below(sim: Simulated) -> str:
    return str(sim.sim.markets["BTC-USD"].best_bid() - 100)


async def test_the_adapter_speaks_typed_values(venue: Simulated) -> None:
    adapter: Venue = AdvancedTradeVenue(venue.cdp_key(), base_url=venue.base_url)
    assert adapter.capabilities.idempotent_client_order_id
    await adapter.open()
    try:
        products = {p.product_id: p.currencies for p in await adapter.products()}
        assert products["BTC-USD"] == ("BTC", "USD")
        balances = {b.currency: b for b in await adapter.balances()}
        assert balances["USD"].available is not None
        assert balances["USD"].available > 0

        events: list[OrderEvent] = []
        adapter.start(MarketFeed(), events.append)
        await adapter.wait_ready(5)
        request = adapter.order_request(
            "BTC-USD", "BUY", LimitGtc(base_size="0.01", limit_price=below(venue)), client_order_id="v-1"
        )
        assert isinstance(request, OrderRequest)
        assert request.side is Side.BUY
        ack = await adapter.submit(request)
        assert (ack.client_order_id, ack.side) == ("v-1", "BUY")
        found = await adapter.find_order("v-1")
        assert found is not None
        assert (found.order_id, found.state) == (ack.order_id, OrderState.OPEN)
        assert [o.order_id for o in await adapter.open_orders("BTC-USD")] == [ack.order_id]
        assert await adapter.edit(ack.order_id, size="0.02")
        outcomes = await adapter.cancel([ack.order_id])
        assert [(o.order_id, o.success) for o in outcomes] == [(ack.order_id, True)]
        assert (await adapter.order(ack.order_id)).state is OrderState.CANCELLED
        with pytest.raises(NotFound):
            await adapter.order("00000000-0000-0000-0000-000000000000")
        assert await adapter.find_order("v-never") is None

        filled = await adapter.submit(
            adapter.order_request("BTC-USD", "BUY", MarketIoc(base_size="0.01"), client_order_id="v-2")
        )
        fills = await adapter.fills([filled.order_id])
        assert fills
        assert sum(f.size for f in fills) == D("0.01")
        assert {(f.order_id, f.product_id, f.side) for f in fills} == {(filled.order_id, "BTC-USD", "BUY")}

        def updates(coid: str) -> list[OrderUpdate]:
            return [e for e in events if isinstance(e, OrderUpdate) and e.client_order_id == coid]

        await eventually(lambda: any(u.state is OrderState.CANCELLED for u in updates("v-1")))
        await eventually(lambda: any(u.state is OrderState.FILLED for u in updates("v-2")))
        assert isinstance(events[0], OpenOrdersSnapshot)  # the subscribe's snapshot comes first
        last = updates("v-2")[-1]
        assert (last.order_id, last.filled_size) == (filled.order_id, D("0.01"))
    finally:
        await adapter.stop()
        await adapter.close()
    assert not adapter.connections


def test_user_channel_messages_become_order_events_in_order() -> None:
    envelope = {
        "channel": "user",
        "events": [
            {
                "type": "snapshot",
                "orders": [
                    {"client_order_id": "a", "order_id": "1", "status": "OPEN", "cumulative_quantity": "0"},
                    {"client_order_id": "b", "order_id": "2", "status": "PENDING", "cumulative_quantity": ""},
                ],
            },
            {
                "type": "update",
                "orders": [
                    {
                        "client_order_id": "a",
                        "order_id": "1",
                        "status": "FILLED",
                        "cumulative_quantity": "0.5",
                        "filled_value": "25000",
                        "total_fees": "1.5",
                    }
                ],
            },
        ],
    }
    events = user_channel_events(envelope)
    assert events == [
        OrderUpdate("a", "1", OrderState.OPEN, filled_size=D(0)),
        OrderUpdate("b", "2", OrderState.OPEN),
        OpenOrdersSnapshot(frozenset({"a", "b"})),
        OrderUpdate("a", "1", OrderState.FILLED, D("0.5"), D("25000"), D("1.5")),
    ]
    assert user_channel_events({"channel": "heartbeats", "events": [{"orders": [{}]}]}) == []


async def test_an_engine_trades_through_a_venue_it_is_given(venue: Simulated) -> None:
    adapter = AdvancedTradeVenue(venue.cdp_key(), base_url=venue.base_url, products=("BTC-USD",))
    async with Engine(config=venue.config(), venue=adapter) as engine:  # opens and closes the venue
        assert engine.venue is adapter
        assert engine.client is adapter.client
        await engine.wait_ready()
        order = await engine.place("BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below(venue)))
        assert order.state is OrderState.OPEN
        assert [e["order_id"] for e in venue.ledger(order.client_order_id)] == [order.order_id]
        assert engine.sockets == adapter.connections
        assert len(engine.sockets) == 2
        assert await engine.cancel(order)
        assert await order.done(5) is OrderState.CANCELLED
    assert not adapter.connections  # stopped with the engine


def test_an_engine_needs_a_key_or_a_venue(venue: Simulated) -> None:
    with pytest.raises(TypeError, match="API key, or a venue"):
        Engine(config=venue.config())
    with pytest.raises(TypeError, match="either a venue or a key"):
        Engine(venue.cdp_key(), venue.config(), venue=AdvancedTradeVenue(venue.cdp_key()))
