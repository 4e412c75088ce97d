"""Coinbase Exchange orders: the create-order body, validated and rendered once, and the typed orders the
Engine places (https://docs.cdp.coinbase.com/exchange/reference).

`order_body` is the one home of what a valid Exchange order is: `ExchangeApi.create_order` and the venue's
`ExchangeOrderRequest` both render through it, so the bytes journalled are the bytes signed and sent, on
every retry. `LimitOrder`, `MarketOrder` and `StopOrder` are what a strategy passes to `Engine.place` on
Exchange; `exchange_order` also takes the Advanced Trade configurations that mean the same thing on Exchange
(`LimitGtc`, `LimitFok`, `SorLimitIoc`, `MarketIoc`, `StopLimitGtc`), so a strategy or a signal written for
one venue runs on the other.

A `client_oid` must be a UUID (Coinbase answers "Invalid order id" to anything else); the venue checks it
before anything is journalled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.net.wire import Amount, decimal_str
from engine.venues.exchange.types import (
    CancelAfter,
    ExchangeOrderType,
    OrderSide,
    SelfTradePrevention,
    StopType,
    TimeInForce,
)

__all__ = [
    "ExchangeOrderRequest",
    "LimitOrder",
    "MarketOrder",
    "StopOrder",
    "exchange_order",
    "is_client_oid",
    "member_value",
    "order_body",
]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)


def is_client_oid(value: object) -> bool:
    """Whether `value` is a UUID in its 8-4-4-4-12 text form, the only `client_oid` Exchange takes."""
    return isinstance(value, str) and _UUID.fullmatch(value) is not None


def member_value(kind: type[Any], value: Any, what: str) -> str:
    """`value` as a known member of the enum `kind`; ValueError naming `what` and the choices otherwise."""
    member = kind._value2member_map_.get(value) if isinstance(value, str) else None
    if member is not None and member.name != "UNKNOWN":
        return str(member.value)
    try:
        member = kind(value)
    except ValueError:
        choices = ", ".join(m.value for m in kind if m.name != "UNKNOWN")
        raise ValueError(f"{what} must be one of {choices}, got {value!r}") from None
    if member.name == "UNKNOWN":
        raise ValueError(f"{what} must be a known value, got {value!r}")
    return str(member.value)


def _side(side: OrderSide | str) -> str:
    value = side.value if isinstance(side, OrderSide) else str(side).lower()
    if value not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    return value


def order_body(
    client_oid: str,
    product_id: str,
    side: OrderSide | str,
    *,
    type: ExchangeOrderType | str = ExchangeOrderType.LIMIT,
    size: Amount | None = None,
    price: Amount | None = None,
    funds: Amount | None = None,
    time_in_force: TimeInForce | str | None = None,
    cancel_after: CancelAfter | str | None = None,
    post_only: bool | None = None,
    stop: StopType | str | None = None,
    stop_price: Amount | None = None,
    stp: SelfTradePrevention | str | None = None,
    max_floor: Amount | None = None,
) -> dict[str, Any]:
    """The create-order JSON for these terms, or ValueError (TypeError for a float amount) naming what is
    wrong. limit: `size` and `price`, `time_in_force` GTC (default), GTT (+ `cancel_after`), IOC or FOK,
    `post_only`, `max_floor`. market: exactly one of `size` or `funds`. A stop is a limit order with `stop`
    (loss or entry) and `stop_price`."""
    order_type = member_value(ExchangeOrderType, type, "type")
    body: dict[str, Any] = {
        "client_oid": client_oid,
        "product_id": product_id,
        "side": _side(side),
        "type": order_type,
    }
    if order_type == "limit":
        if size is None or price is None:
            raise ValueError("a limit order needs size and price")
        if funds is not None:
            raise ValueError("funds is for market orders; a limit order takes size and price")
        body["price"] = decimal_str(price, "price")
        body["size"] = decimal_str(size, "size")
        tif = member_value(TimeInForce, time_in_force, "time_in_force") if time_in_force is not None else None
        if tif is not None:
            body["time_in_force"] = tif
        if cancel_after is not None:
            if tif != "GTT":
                raise ValueError("cancel_after needs time_in_force='GTT'")
            body["cancel_after"] = member_value(CancelAfter, cancel_after, "cancel_after")
        if post_only:
            if tif in ("IOC", "FOK"):
                raise ValueError("post_only cannot be combined with IOC or FOK")
            body["post_only"] = True
        if max_floor is not None:
            body["max_floor"] = decimal_str(max_floor, "max_floor")
    elif order_type == "market":
        if (size is None) == (funds is None):
            raise ValueError("a market order needs exactly one of size or funds")
        if price is not None or time_in_force is not None or post_only:
            raise ValueError("a market order takes no price, time_in_force or post_only")
        if size is not None:
            body["size"] = decimal_str(size, "size")
        else:
            body["funds"] = decimal_str(funds, "funds")
    else:
        raise ValueError("type must be 'limit' or 'market' (a stop is a limit order with stop/stop_price)")
    if (stop is None) != (stop_price is None):
        raise ValueError("a stop order needs both stop ('loss' or 'entry') and stop_price")
    if stop is not None:
        if body.get("time_in_force") in ("IOC", "FOK"):
            raise ValueError("a stop order is GTC or GTT")
        body["stop"] = member_value(StopType, stop, "stop")
        body["stop_price"] = decimal_str(stop_price, "stop_price")
    if stp is not None:
        body["stp"] = member_value(SelfTradePrevention, stp, "stp")
    return body


# == the orders a strategy places on Exchange ==============================================================


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitOrder:
    """A limit order: GTC by default, GTT (with `cancel_after`), IOC or FOK; `post_only` for GTC/GTT."""

    size: Amount
    price: Amount
    time_in_force: TimeInForce | str = TimeInForce.GTC
    cancel_after: CancelAfter | str | None = None
    post_only: bool = False
    stp: SelfTradePrevention | str | None = None
    max_floor: Amount | None = None

    def terms(self) -> dict[str, Any]:
        return {
            "type": "limit",
            "size": self.size,
            "price": self.price,
            "time_in_force": self.time_in_force,
            "cancel_after": self.cancel_after,
            "post_only": self.post_only,
            "stp": self.stp,
            "max_floor": self.max_floor,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketOrder:
    """A market order sized in base (`size`) or in quote (`funds`)."""

    size: Amount | None = None
    funds: Amount | None = None
    stp: SelfTradePrevention | str | None = None

    def terms(self) -> dict[str, Any]:
        return {"type": "market", "size": self.size, "funds": self.funds, "stp": self.stp}


@dataclass(frozen=True, slots=True, kw_only=True)
class StopOrder:
    """A stop-limit order: rests unseen until the last trade reaches `stop_price` (at or below for `loss`,
    at or above for `entry`), then becomes a limit order at `price`."""

    size: Amount
    price: Amount
    stop_price: Amount
    stop: StopType | str
    time_in_force: TimeInForce | str = TimeInForce.GTC
    cancel_after: CancelAfter | str | None = None
    stp: SelfTradePrevention | str | None = None

    def terms(self) -> dict[str, Any]:
        return {
            "type": "limit",
            "size": self.size,
            "price": self.price,
            "stop_price": self.stop_price,
            "stop": self.stop,
            "time_in_force": self.time_in_force,
            "cancel_after": self.cancel_after,
            "stp": self.stp,
        }


ExchangeOrder = LimitOrder | MarketOrder | StopOrder

# Advanced Trade configurations with an exact Exchange equivalent: key -> (type, time_in_force)
_ADVANCED = {
    "limit_limit_gtc": ("limit", "GTC"),
    "limit_limit_fok": ("limit", "FOK"),
    "sor_limit_ioc": ("limit", "IOC"),
    "market_market_ioc": ("market", None),
    "stop_limit_stop_limit_gtc": ("limit", "GTC"),
}
_STOP_DIRECTION = {"STOP_DIRECTION_STOP_UP": "entry", "STOP_DIRECTION_STOP_DOWN": "loss"}


def _from_advanced(configuration: Any) -> dict[str, Any]:
    key = getattr(configuration, "key", None)
    shape = _ADVANCED.get(key) if isinstance(key, str) else None
    if shape is None:
        raise ValueError(
            f"Coinbase Exchange has no order like {type(configuration).__name__}: use LimitOrder, "
            "MarketOrder or StopOrder (engine.venues.exchange), or LimitGtc, LimitFok, SorLimitIoc, "
            "MarketIoc, StopLimitGtc"
        )
    order_type, tif = shape
    fragment: dict[str, Any] = configuration.fragment()
    if order_type == "market":
        return {"type": "market", "size": fragment.get("base_size"), "funds": fragment.get("quote_size")}
    terms: dict[str, Any] = {
        "type": "limit",
        "size": fragment.get("base_size"),
        "price": fragment.get("limit_price"),
        "time_in_force": tif,
        "post_only": bool(fragment.get("post_only")),
    }
    if "stop_price" in fragment:
        terms["stop_price"] = fragment["stop_price"]
        terms["stop"] = _STOP_DIRECTION.get(str(fragment.get("stop_direction")), "")
    return terms


@dataclass(frozen=True, slots=True)
class _Shape:
    """An order's sizes and prices under the names the risk rules read (`OrderShape`)."""

    _fragment: dict[str, Any]

    def fragment(self) -> dict[str, Any]:
        return self._fragment


@dataclass(frozen=True, slots=True)
class ExchangeOrderRequest:
    """A validated Exchange order (an `OrderIntent`): `body` is the exact JSON sent, `client_order_id` is its
    `client_oid`."""

    client_order_id: str
    product_id: str
    side: str  # "BUY" or "SELL", as the risk rules and the journal read it
    configuration: _Shape
    body: bytes = field(repr=False)


def exchange_order(
    product_id: str, side: str, configuration: Any, *, client_order_id: str
) -> ExchangeOrderRequest:
    """The order `configuration` (an Exchange order, or an Advanced Trade configuration Exchange also has)
    as a request under `client_order_id`; ValueError (TypeError for a float) naming what is wrong."""
    if not is_client_oid(client_order_id):
        raise ValueError(
            "a Coinbase Exchange client_order_id (its client_oid) must be a UUID such as "
            "'0b0e2f4c-5d7a-4e1b-9c3d-2a6f8e4b1c7d'"
        )
    if not isinstance(product_id, str) or not product_id:
        raise ValueError("product_id must be a product such as 'BTC-USD'")
    if isinstance(configuration, LimitOrder | MarketOrder | StopOrder):
        terms = configuration.terms()
    else:
        terms = _from_advanced(configuration)
    body = order_body(client_order_id, product_id, str(side), **terms)
    fragment = {
        name: body[wire]
        for name, wire in (
            ("base_size", "size"),
            ("quote_size", "funds"),
            ("limit_price", "price"),
            ("stop_price", "stop_price"),
        )
        if wire in body
    }
    return ExchangeOrderRequest(
        client_order_id, product_id, body["side"].upper(), _Shape(fragment), orjson.dumps(body)
    )
