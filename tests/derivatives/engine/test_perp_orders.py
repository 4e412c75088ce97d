"""Perpetual orders as the Engine prepares them: bad input is a typed error naming the field (never the
value), the request is the exact JSON-RPC call with our id as its label, and the risk terms read from it."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import orjson
import pytest

from engine.errors import InvalidValue
from engine.risk import OrderTerms
from engine.venues.base import OrderState
from engine.venues.derivatives import PerpLimit, PerpMarket, PerpOrderRequest, TimeInForce
from engine.venues.derivatives.types import Order
from engine.venues.derivatives.venue import local_state

BTC = "BTC_USDC-PERPETUAL"


def test_the_request_is_the_call_sent_with_our_id_as_label() -> None:
    request = PerpOrderRequest("perp-1-1", BTC, "sell", PerpLimit("0.5", "61000.5", post_only=True))
    assert request.side == "SELL"
    assert request.method == "private/sell"
    assert orjson.loads(request.body) == {
        "method": "private/sell",
        "params": {
            "instrument_name": BTC,
            "type": "limit",
            "amount": 0.5,
            "price": 61000.5,
            "time_in_force": "good_til_cancelled",
            "post_only": True,
            "label": "perp-1-1",
        },
    }
    assert b'"price":61000.5' in request.body  # exact decimal text, not a float's repr
    market = PerpOrderRequest("perp-1-2", BTC, "BUY", PerpMarket("0.25", reduce_only=True))
    assert orjson.loads(market.body)["params"] == {
        "instrument_name": BTC,
        "type": "market",
        "amount": 0.25,
        "reduce_only": True,
        "label": "perp-1-2",
    }
    # immutable: what was risk-checked and journalled is what is sent
    with pytest.raises(AttributeError):
        market.configuration.amount = Decimal("100")  # type: ignore[misc]
    assert PerpMarket("0.25", reduce_only=True) == market.configuration
    terms = OrderTerms.of(market)
    assert (terms.side, terms.base_size, terms.limit_price, terms.reduce_only) == (
        "BUY",
        Decimal("0.25"),
        None,
        True,
    )


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: PerpLimit("0", "100"), "amount"),
        (lambda: PerpLimit("-1", "100"), "amount"),
        (lambda: PerpLimit("1e30", "100"), "amount"),
        (lambda: PerpLimit("1", "NaN"), "price"),
        (lambda: PerpLimit("1", "abc"), "price"),
        (lambda: PerpMarket("1e-30"), "amount"),
        (lambda: PerpOrderRequest("perp-1", BTC, "HOLD", PerpMarket("1")), "side"),
        (lambda: PerpOrderRequest("x" * 65, BTC, "BUY", PerpMarket("1")), "client_order_id"),
        (lambda: PerpOrderRequest("", BTC, "BUY", PerpMarket("1")), "client_order_id"),
    ],
)
def test_bad_input_is_a_typed_error_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidValue) as error:
        build()  # type: ignore[operator]
    assert error.value.field == field
    assert "abc" not in str(error.value)


def test_floats_and_foreign_configurations_are_refused() -> None:
    with pytest.raises(TypeError):
        PerpLimit(0.1, "100")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="PerpLimit or a PerpMarket"):
        PerpOrderRequest("perp-1", BTC, "BUY", object())  # type: ignore[arg-type]
    with pytest.raises(InvalidValue, match="time_in_force"):
        PerpLimit("1", "100", "good_til_next_year")  # type: ignore[arg-type]
    assert PerpLimit("1", "100", TimeInForce.IMMEDIATE_OR_CANCEL).params()["time_in_force"] == (
        "immediate_or_cancel"
    )


@pytest.mark.parametrize(
    ("wire", "filled", "state"),
    [
        ("open", "0", OrderState.OPEN),
        ("untriggered", "0", OrderState.OPEN),
        ("filled", "1", OrderState.FILLED),
        ("cancelled", "0.5", OrderState.CANCELLED),
        ("rejected", "0", OrderState.FAILED),
        ("archive", "1", OrderState.FILLED),
        ("archive", "0.5", OrderState.CANCELLED),
    ],
)
def test_gateway_states_map_onto_the_engines(wire: str, filled: str, state: OrderState) -> None:
    order = orjson.loads(orjson.dumps({"order_id": "1", "instrument_name": BTC, "direction": "buy"}))
    order.update(order_state=wire, order_type="limit", amount=1, filled_amount=float(filled))
    assert local_state(msgspec.convert(order, Order)) is state
