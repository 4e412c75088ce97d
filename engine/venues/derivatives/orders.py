"""Perpetual orders as the Engine places them: a limit or market configuration, and the prepared request.

The request carries our client order id as the gateway's `label` (at most 64 characters). The label is not
unique on the gateway, so the Engine's ids make it so: a create whose answer was lost is found again with
`private/get_order_state_by_label` instead of being sent twice
(https://docs.cdp.coinbase.com/api-reference/coinbase-deribit-app-api/).
`body` is the exact method and params sent, kept in the journal beside the intent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from engine.decimals import bounded_decimal
from engine.errors import InvalidValue
from engine.venues.derivatives.types import Direction, OrderType, TimeInForce

__all__ = ["MAX_LABEL_LENGTH", "PerpLimit", "PerpMarket", "PerpOrderRequest", "order_side"]

MAX_LABEL_LENGTH = 64  # the gateway's limit on `label`


def order_side(side: object) -> str:
    """`BUY` or `SELL` from a side as a caller writes it (`"buy"`, `Direction.SELL`, a `Side`)."""
    text = str(getattr(side, "value", side)).upper()
    if text not in ("BUY", "SELL"):
        raise InvalidValue("side", "BUY or SELL")
    return text


@dataclass(frozen=True, slots=True)
class PerpLimit:
    """A limit order of `amount` (base coin, for the USDC perpetuals) at `price`."""

    amount: Decimal
    price: Decimal
    time_in_force: TimeInForce = TimeInForce.GOOD_TIL_CANCELLED
    post_only: bool = False
    reduce_only: bool = False

    def __init__(
        self,
        amount: Decimal | int | str,
        price: Decimal | int | str,
        time_in_force: TimeInForce = TimeInForce.GOOD_TIL_CANCELLED,
        *,
        post_only: bool = False,
        reduce_only: bool = False,
    ) -> None:
        object.__setattr__(self, "amount", bounded_decimal(amount, "amount"))
        object.__setattr__(self, "price", bounded_decimal(price, "price"))
        try:
            object.__setattr__(self, "time_in_force", TimeInForce(time_in_force))
        except ValueError:
            raise InvalidValue("time_in_force", "one of " + ", ".join(t.value for t in TimeInForce)) from None
        object.__setattr__(self, "post_only", bool(post_only))
        object.__setattr__(self, "reduce_only", bool(reduce_only))

    def fragment(self) -> dict[str, Any]:
        return {
            "base_size": format(self.amount, "f"),
            "limit_price": format(self.price, "f"),
            "reduce_only": self.reduce_only,
        }

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "type": OrderType.LIMIT.value,
            "amount": self.amount,
            "price": self.price,
            "time_in_force": self.time_in_force.value,
        }
        if self.post_only:
            params["post_only"] = True
        if self.reduce_only:
            params["reduce_only"] = True
        return params


@dataclass(frozen=True, slots=True)
class PerpMarket:
    """A market order of `amount`; `reduce_only` makes it a close that can never open or flip a position."""

    amount: Decimal
    reduce_only: bool = False

    def __init__(self, amount: Decimal | int | str, *, reduce_only: bool = False) -> None:
        object.__setattr__(self, "amount", bounded_decimal(amount, "amount"))
        object.__setattr__(self, "reduce_only", bool(reduce_only))

    def fragment(self) -> dict[str, Any]:
        return {"base_size": format(self.amount, "f"), "reduce_only": self.reduce_only}

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"type": OrderType.MARKET.value, "amount": self.amount}
        if self.reduce_only:
            params["reduce_only"] = True
        return params


PerpConfiguration = PerpLimit | PerpMarket


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f"))
    raise TypeError(type(value).__name__)


@dataclass(frozen=True, slots=True)
class PerpOrderRequest:
    """One prepared perpetual order (`DerivativesVenue.order_request`): the `OrderIntent` the Engine sends."""

    client_order_id: str
    product_id: str
    side: str  # BUY or SELL
    configuration: PerpConfiguration
    method: str = field(init=False)
    params: dict[str, Any] = field(init=False, repr=False, compare=False)
    body: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > MAX_LABEL_LENGTH:
            raise InvalidValue(
                "client_order_id",
                f"1 to {MAX_LABEL_LENGTH} characters, as it is the gateway's label "
                "(use a shorter worker prefix)",
            )
        if not isinstance(self.configuration, PerpLimit | PerpMarket):
            raise TypeError("a perpetual order's configuration is a PerpLimit or a PerpMarket")
        side = order_side(self.side)
        object.__setattr__(self, "side", side)
        method = "private/buy" if side == Direction.BUY.value.upper() else "private/sell"
        params = {
            "instrument_name": self.product_id,
            **self.configuration.params(),
            "label": self.client_order_id,
        }
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "body", orjson.dumps({"method": method, "params": params}, default=_number))
