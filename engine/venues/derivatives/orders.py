"""Perpetual orders as the Engine places them: a limit or market configuration, and the prepared request.

The request carries our client order id as the gateway's `label` (at most 64 characters). The label is not
unique on the gateway, so the Engine's ids make it so: a create whose answer was lost is found again with
`private/get_order_state_by_label` instead of being sent twice
(https://docs.cdp.coinbase.com/api-reference/coinbase-deribit-app-api/).
`body` is the exact method and params sent, kept in the journal beside the intent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from engine.decimals import bounded_decimal
from engine.errors import InvalidValue
from engine.venues.derivatives.types import OrderType, TimeInForce

__all__ = ["MAX_LABEL_LENGTH", "PerpLimit", "PerpMarket", "PerpOrderRequest", "order_side"]

MAX_LABEL_LENGTH = 64  # the gateway's limit on `label`


def order_side(side: object) -> str:
    """`BUY` or `SELL` from a side as a caller writes it (`"buy"`, `Direction.SELL`, a `Side`)."""
    text = str(getattr(side, "value", side)).upper()
    if text not in ("BUY", "SELL"):
        raise InvalidValue("side", "BUY or SELL")
    return text


class PerpLimit:
    """A limit order of `amount` (base coin, for the USDC perpetuals) at `price`. Immutable: its wire params
    and risk fragment are built once, so a strategy quoting the same terms again pays for neither."""

    __slots__ = ("_fragment", "_params", "amount", "post_only", "price", "reduce_only", "time_in_force")

    def __init__(
        self,
        amount: Decimal | int | str,
        price: Decimal | int | str,
        time_in_force: TimeInForce = TimeInForce.GOOD_TIL_CANCELLED,
        *,
        post_only: bool = False,
        reduce_only: bool = False,
    ) -> None:
        self.amount = bounded_decimal(amount, "amount")
        self.price = bounded_decimal(price, "price")
        try:
            self.time_in_force = TimeInForce(time_in_force)
        except ValueError:
            raise InvalidValue("time_in_force", "one of " + ", ".join(t.value for t in TimeInForce)) from None
        self.post_only = bool(post_only)
        self.reduce_only = bool(reduce_only)
        amount_text, price_text = format(self.amount, "f"), format(self.price, "f")
        self._fragment = {
            "base_size": amount_text,
            "limit_price": price_text,
            "reduce_only": self.reduce_only,
        }
        params: dict[str, Any] = {
            "type": OrderType.LIMIT.value,
            "amount": orjson.Fragment(amount_text),
            "price": orjson.Fragment(price_text),
            "time_in_force": self.time_in_force.value,
        }
        if self.post_only:
            params["post_only"] = True
        if self.reduce_only:
            params["reduce_only"] = True
        self._params = params

    def fragment(self) -> dict[str, Any]:
        return self._fragment

    def params(self) -> dict[str, Any]:
        """The order's JSON-RPC params (numbers as exact JSON fragments), without instrument and label."""
        return self._params

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_params"):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PerpLimit)
            and self._fragment == other._fragment
            and (
                self.time_in_force,
                self.post_only,
            )
            == (other.time_in_force, other.post_only)
        )

    def __hash__(self) -> int:
        return hash((self.amount, self.price, self.time_in_force, self.post_only, self.reduce_only))

    def __repr__(self) -> str:
        return (
            f"PerpLimit(amount={self.amount}, price={self.price}, {self.time_in_force.value}"
            f"{', post_only' if self.post_only else ''}{', reduce_only' if self.reduce_only else ''})"
        )


class PerpMarket:
    """A market order of `amount`; `reduce_only` makes it a close that can never open or flip a position."""

    __slots__ = ("_fragment", "_params", "amount", "reduce_only")

    def __init__(self, amount: Decimal | int | str, *, reduce_only: bool = False) -> None:
        self.amount = bounded_decimal(amount, "amount")
        self.reduce_only = bool(reduce_only)
        amount_text = format(self.amount, "f")
        self._fragment = {"base_size": amount_text, "reduce_only": self.reduce_only}
        params: dict[str, Any] = {"type": OrderType.MARKET.value, "amount": orjson.Fragment(amount_text)}
        if self.reduce_only:
            params["reduce_only"] = True
        self._params = params

    def fragment(self) -> dict[str, Any]:
        return self._fragment

    def params(self) -> dict[str, Any]:
        return self._params

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(self, "_params"):
            raise AttributeError(f"{type(self).__name__} is immutable")
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PerpMarket) and self._fragment == other._fragment

    def __hash__(self) -> int:
        return hash((self.amount, self.reduce_only))

    def __repr__(self) -> str:
        return f"PerpMarket(amount={self.amount}{', reduce_only' if self.reduce_only else ''})"


PerpConfiguration = PerpLimit | PerpMarket
_METHODS = {"BUY": "private/buy", "SELL": "private/sell"}


class PerpOrderRequest:
    """One prepared perpetual order (`DerivativesVenue.order_request`): the `OrderIntent` the Engine sends.

    `params` is the call's JSON-RPC params, our id as `label`; `body` the method and params as sent."""

    __slots__ = ("body", "client_order_id", "configuration", "method", "params", "product_id", "side")

    def __init__(
        self, client_order_id: str, product_id: str, side: object, configuration: PerpConfiguration
    ) -> None:
        if not client_order_id or len(client_order_id) > MAX_LABEL_LENGTH:
            raise InvalidValue(
                "client_order_id",
                f"1 to {MAX_LABEL_LENGTH} characters, as it is the gateway's label "
                "(use a shorter worker prefix)",
            )
        if configuration.__class__ is not PerpLimit and configuration.__class__ is not PerpMarket:
            raise TypeError("a perpetual order's configuration is a PerpLimit or a PerpMarket")
        method = _METHODS.get(side) if side.__class__ is str else None
        if method is None:
            side = order_side(side)
            method = _METHODS[side]
        self.client_order_id = client_order_id
        self.product_id = product_id
        self.side: str = side  # type: ignore[assignment]
        self.configuration = configuration
        self.method = method
        params = {"instrument_name": product_id, **configuration.params(), "label": client_order_id}
        self.params = params
        self.body = orjson.dumps({"method": method, "params": params})

    def __repr__(self) -> str:
        return (
            f"PerpOrderRequest({self.client_order_id!r}, {self.product_id!r}, {self.side!r}, "
            f"{self.configuration!r})"
        )
