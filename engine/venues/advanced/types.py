"""Typed Advanced Trade responses.

Frozen, slotted dataclasses rather than TypedDicts: amounts become `Decimal` once, at the edge, so no
caller ever does arithmetic on strings or floats, and attribute access is checked by mypy. The cost is one
small object per response (about a microsecond), noise beside the HTTP round trip. Each keeps the decoded
JSON as `raw` (excluded from repr and equality) for fields Coinbase adds later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, TypeVar

from engine.net.wire import Json, KeyPermissions, ServerTime, as_str, dec

__all__ = [
    "Account",
    "BestBidAsk",
    "CancelResult",
    "CreateOrderResult",
    "EditPreview",
    "EditResult",
    "Fill",
    "KeyPermissions",
    "Money",
    "Order",
    "Page",
    "PreviewResult",
    "PriceLevel",
    "Product",
    "ServerTime",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Money:
    value: Decimal
    currency: str

    @classmethod
    def parse(cls, data: Any) -> Money | None:
        if not isinstance(data, Mapping):
            return None
        value = dec(data.get("value"))
        return None if value is None else cls(value, as_str(data.get("currency")))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass `cursor` back to get the next when `has_next`."""

    items: list[T]
    has_next: bool = False
    cursor: str = ""

    @classmethod
    def parse(cls, data: Json, key: str, item: Callable[[Json], T]) -> Page[T]:
        cursor = as_str(data.get("cursor"))
        # Fills send only a cursor, non-empty while more remain; the other listings say has_next as well.
        has_next = data.get("has_next", bool(cursor))
        return cls([item(entry) for entry in data.get(key) or ()], bool(has_next), cursor)


@dataclass(frozen=True, slots=True)
class Account:
    uuid: str
    name: str
    currency: str
    available_balance: Money | None
    hold: Money | None
    active: bool
    type: str
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> Account:
        return cls(
            as_str(data.get("uuid")),
            as_str(data.get("name")),
            as_str(data.get("currency")),
            Money.parse(data.get("available_balance")),
            Money.parse(data.get("hold")),
            bool(data.get("active", True)),
            as_str(data.get("type")),
            data,
        )


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    price: Decimal | None
    base_increment: Decimal | None
    quote_increment: Decimal | None
    base_min_size: Decimal | None
    base_max_size: Decimal | None
    quote_min_size: Decimal | None
    status: str
    product_type: str
    trading_disabled: bool
    # what the product takes now: cancels only; no market orders; only orders that add liquidity
    cancel_only: bool
    limit_only: bool
    post_only: bool
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> Product:
        return cls(
            as_str(data.get("product_id")),
            dec(data.get("price")),
            dec(data.get("base_increment")),
            dec(data.get("quote_increment")),
            dec(data.get("base_min_size")),
            dec(data.get("base_max_size")),
            dec(data.get("quote_min_size")),
            as_str(data.get("status")),
            as_str(data.get("product_type")),
            bool(data.get("trading_disabled", False)),
            bool(data.get("cancel_only", False)),
            bool(data.get("limit_only", False)),
            bool(data.get("post_only", False)),
            data,
        )


@dataclass(frozen=True, slots=True)
class PriceLevel:
    price: Decimal
    size: Decimal


def _levels(entries: Any) -> list[PriceLevel]:
    levels = []
    for entry in entries or ():
        price, size = dec(entry.get("price")), dec(entry.get("size"))
        if price is not None and size is not None:
            levels.append(PriceLevel(price, size))
    return levels


@dataclass(frozen=True, slots=True)
class BestBidAsk:
    product_id: str
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    time: str

    @property
    def best_bid(self) -> PriceLevel | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> PriceLevel | None:
        return self.asks[0] if self.asks else None

    @classmethod
    def parse(cls, data: Json) -> BestBidAsk:
        return cls(
            as_str(data.get("product_id")),
            _levels(data.get("bids")),
            _levels(data.get("asks")),
            as_str(data.get("time")),
        )


@dataclass(frozen=True, slots=True)
class CreateOrderResult:
    """An order the exchange holds. `confirmed_by_lookup` is True when the create response was lost and the
    order was found by its client_order_id instead."""

    order_id: str
    client_order_id: str
    product_id: str
    side: str
    confirmed_by_lookup: bool = False
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json, *, client_order_id: str) -> CreateOrderResult:
        success = data.get("success_response") or {}
        return cls(
            as_str(success.get("order_id") or data.get("order_id")),
            as_str(success.get("client_order_id") or client_order_id),
            as_str(success.get("product_id")),
            as_str(success.get("side")),
            False,
            data,
        )


@dataclass(frozen=True, slots=True)
class PreviewResult:
    preview_id: str
    order_total: Decimal | None
    commission_total: Decimal | None
    base_size: Decimal | None
    quote_size: Decimal | None
    best_bid: Decimal | None
    best_ask: Decimal | None
    errs: list[str]
    warnings: list[str]
    raw: Json = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.errs

    @classmethod
    def parse(cls, data: Json) -> PreviewResult:
        return cls(
            as_str(data.get("preview_id")),
            dec(data.get("order_total")),
            dec(data.get("commission_total")),
            dec(data.get("base_size")),
            dec(data.get("quote_size")),
            dec(data.get("best_bid")),
            dec(data.get("best_ask")),
            [str(e) for e in data.get("errs") or ()],
            [str(w) for w in data.get("warning") or data.get("warnings") or ()],
            data,
        )


@dataclass(frozen=True, slots=True)
class CancelResult:
    order_id: str
    success: bool
    failure_reason: str

    @classmethod
    def parse(cls, data: Json) -> CancelResult:
        return cls(
            as_str(data.get("order_id")), bool(data.get("success")), as_str(data.get("failure_reason"))
        )


@dataclass(frozen=True, slots=True)
class EditResult:
    success: bool
    errors: list[str]
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> EditResult:
        errors = []
        for err in data.get("errors") or ():
            if isinstance(err, Mapping):
                reason = err.get("edit_failure_reason") or err.get("preview_failure_reason")
                errors.append(as_str(reason or err))
            else:
                errors.append(str(err))
        return cls(bool(data.get("success")), errors, data)


@dataclass(frozen=True, slots=True)
class EditPreview:
    """What an edit would do (`POST /orders/edit_preview`); `errors` names why it would be refused."""

    errors: list[str]
    slippage: Decimal | None
    order_total: Decimal | None
    commission_total: Decimal | None
    quote_size: Decimal | None
    base_size: Decimal | None
    best_bid: Decimal | None
    best_ask: Decimal | None
    average_filled_price: Decimal | None
    raw: Json = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    @classmethod
    def parse(cls, data: Json) -> EditPreview:
        return cls(
            EditResult.parse(data).errors,
            dec(data.get("slippage")),
            dec(data.get("order_total")),
            dec(data.get("commission_total")),
            dec(data.get("quote_size")),
            dec(data.get("base_size")),
            dec(data.get("best_bid")),
            dec(data.get("best_ask")),
            dec(data.get("average_filled_price")),
            data,
        )


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    client_order_id: str
    product_id: str
    side: str
    status: str
    order_type: str
    time_in_force: str
    created_time: str
    filled_size: Decimal | None
    average_filled_price: Decimal | None
    filled_value: Decimal | None
    total_fees: Decimal | None
    configuration: Json
    reject_reason: str
    # the take-profit / stop-loss order placed when this one filled (`attached_order_configuration`)
    attached_order_id: str
    retail_portfolio_id: str
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> Order:
        return cls(
            as_str(data.get("order_id")),
            as_str(data.get("client_order_id")),
            as_str(data.get("product_id")),
            as_str(data.get("side")),
            as_str(data.get("status")),
            as_str(data.get("order_type")),
            as_str(data.get("time_in_force")),
            as_str(data.get("created_time")),
            dec(data.get("filled_size")),
            dec(data.get("average_filled_price")),
            dec(data.get("filled_value")),
            dec(data.get("total_fees")),
            data.get("order_configuration") or {},
            as_str(data.get("reject_reason")),
            as_str(data.get("attached_order_id")),
            as_str(data.get("retail_portfolio_id")),
            data,
        )


@dataclass(frozen=True, slots=True)
class Fill:
    entry_id: str
    trade_id: str
    order_id: str
    product_id: str
    side: str
    price: Decimal | None
    size: Decimal | None
    commission: Decimal | None
    trade_time: str
    liquidity_indicator: str
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> Fill:
        return cls(
            as_str(data.get("entry_id")),
            as_str(data.get("trade_id")),
            as_str(data.get("order_id")),
            as_str(data.get("product_id")),
            as_str(data.get("side")),
            dec(data.get("price")),
            dec(data.get("size")),
            dec(data.get("commission")),
            as_str(data.get("trade_time")),
            as_str(data.get("liquidity_indicator")),
            data,
        )
