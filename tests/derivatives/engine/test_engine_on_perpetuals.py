"""The Engine trading perpetuals through `DerivativesVenue` against the gateway simulator on 127.0.0.1: the
same API as spot (place, cancel, edit, cancel_all, close_position, kill), order states from the user
channels, positions and margin from the gateway; the simulator's ledger is the oracle."""

from __future__ import annotations

from decimal import Decimal

from engine.trading.order_state import OrderState
from engine.venues.derivatives import PerpLimit
from tests.derivatives.engine.conftest import BTC, Perps

D = Decimal


async def test_a_resting_limit_is_placed_with_our_id_as_label_edited_and_cancelled(perps: Perps) -> None:
    async with perps.engine() as engine:
        price = perps.far_bid()
        order = await engine.place(BTC, "BUY", PerpLimit("0.01", price))
        assert order.state is OrderState.OPEN
        assert order.client_order_id.startswith("perp-")
        [placed] = perps.ledger()[order.client_order_id]
        assert placed.order_id == order.order_id
        assert placed.is_live

        assert await engine.edit(order, size="0.02", price=price - 10)
        assert placed.amount == D("0.02")
        assert placed.price == price - 10

        assert await engine.cancel(order)
        assert order.state is OrderState.CANCELLED
        assert not placed.is_live
        journalled = await engine.journalled(order.client_order_id)
        assert journalled is not None
        assert journalled.order_id == order.order_id
