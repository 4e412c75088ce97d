"""Engine.close_position: a Decimal size is sent as its decimal string; a bad size leaves no tracked order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import InvalidValue
from engine.rest import MarketIoc, Side
from tests.trading.conftest import Venue


async def test_close_position_with_a_decimal_size(venue: Venue) -> None:
    async with venue.engine(products=("BTC-USD", "BIP-20DEC30-CDE")) as engine:
        await engine.client.create_order("BIP-20DEC30-CDE", Side.BUY, MarketIoc(base_size="3"))
        tracked = await engine.close_position("BIP-20DEC30-CDE", Decimal("1"))
        assert tracked.order_id
        position = await engine.client.futures.position("BIP-20DEC30-CDE")
        assert position is not None
        assert position.number_of_contracts == Decimal("2")
        before = dict(engine.orders)
        with pytest.raises(InvalidValue):
            await engine.close_position("BIP-20DEC30-CDE", Decimal("-1"))
        assert engine.orders == before  # nothing tracked, nothing left dangling
