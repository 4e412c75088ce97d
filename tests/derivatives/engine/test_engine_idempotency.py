"""Ids and idempotency on a venue without an idempotency key: the label is our client order id, the intent is
journalled before the frame leaves, and a create whose answer was lost stays UNKNOWN until it is looked up by
label; it is never sent again, so one intent is never two orders."""

from __future__ import annotations

import pytest

from engine.errors import InvalidValue, OutcomeUnknown
from engine.trading.order_state import OrderState
from engine.venues.derivatives import PerpLimit, PerpMarket
from tests.derivatives.engine.conftest import BTC, Perps, until


async def test_an_order_whose_answer_was_lost_is_found_by_label_and_never_sent_twice(perps: Perps) -> None:
    async with perps.engine() as engine:
        perps.sim.faults.drop_after_accept_rate = 1.0
        with pytest.raises(OutcomeUnknown):
            await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid()))
        perps.sim.faults.drop_after_accept_rate = 0.0
        [tracked] = engine.orders.values()
        assert tracked.state is OrderState.UNKNOWN
        journalled = await engine.journalled(tracked.client_order_id)
        assert journalled is not None  # the intent was on record before the frame went out
        # looked up by label once the session is back: the gateway's cancel-on-disconnect took it off
        await until(lambda: tracked.state.is_terminal, what="the lost order's outcome")
        [placed] = perps.ledger()[tracked.client_order_id]
        assert tracked.order_id == placed.order_id
        assert tracked.state is OrderState.CANCELLED
        assert placed.cancel_reason == "cancel_on_disconnect"
        assert perps.sim.derivatives.table.calls["private/buy"] == 1
        assert perps.sim.derivatives.table.calls["private/get_order_state_by_label"] >= 1


async def test_a_lost_market_order_that_filled_is_found_filled_with_its_fill(perps: Perps) -> None:
    async with perps.engine() as engine:
        perps.sim.faults.drop_after_accept_rate = 1.0
        with pytest.raises(OutcomeUnknown):
            await engine.place(BTC, "SELL", PerpMarket("0.02"))
        perps.sim.faults.drop_after_accept_rate = 0.0
        [tracked] = engine.orders.values()
        await until(lambda: tracked.state is OrderState.FILLED, what="the lost order found filled")
        [placed] = perps.ledger()[tracked.client_order_id]
        assert tracked.filled_size == placed.filled_amount == placed.amount
        assert engine.position(BTC) == -placed.amount
        assert perps.sim.derivatives.table.calls["private/sell"] == 1


async def test_client_order_ids_are_unique_labels_traceable_to_the_worker(perps: Perps) -> None:
    async with perps.engine() as engine:
        orders = [await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid())) for _ in range(5)]
        labels = [o.client_order_id for o in orders]
        assert len(set(labels)) == 5
        assert all(label.startswith("perp-") and len(label) <= 64 for label in labels)
        assert {o.label for o in perps.desk.orders.values()} == set(labels)
        with pytest.raises(ValueError, match="already used"):
            await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid()), client_order_id=labels[0])
        assert len(perps.desk.orders) == 5


async def test_an_id_too_long_for_a_label_is_refused_before_anything_is_journalled(perps: Perps) -> None:
    async with perps.engine(worker="w" * 50) as engine:
        with pytest.raises(InvalidValue, match="client_order_id"):
            await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid()))
        assert not engine.orders
        assert not perps.desk.orders
