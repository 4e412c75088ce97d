"""Coinbase Exchange's REST responses as typed, frozen values (https://docs.cdp.coinbase.com/exchange/reference).

Amounts become `Decimal` once, here; enumerations become enums, with `UNKNOWN` for a value Coinbase adds later
rather than a failure; times become aware `datetime`s. Each value keeps its decoded JSON as `raw` (out of repr
and equality) for fields not modelled.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from engine.net.wire import Json, as_str, dec

__all__ = [
    "BookEntry",
    "Candle",
    "Conversion",
    "Currency",
    "ExchangeAccount",
    "ExchangeBook",
    "ExchangeFill",
    "ExchangeOrder",
    "ExchangeOrderType",
    "ExchangeProduct",
    "ExchangeTicker",
    "ExchangeTrade",
    "Fees",
    "Hold",
    "LedgerEntry",
    "Liquidity",
    "OrderSide",
    "OrderStatus",
    "ProductStats",
    "Profile",
    "SelfTradePrevention",
    "StopType",
    "TimeInForce",
]

E = TypeVar("E", bound=enum.Enum)


class OrderSide(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    UNKNOWN = "unknown"


class ExchangeOrderType(enum.StrEnum):
    LIMIT = "limit"
    MARKET = "market"
    STOP = "stop"
    UNKNOWN = "unknown"


class TimeInForce(enum.StrEnum):
    GTC = "GTC"
    GTT = "GTT"  # good till time: with `cancel_after`
    IOC = "IOC"
    FOK = "FOK"
    UNKNOWN = "unknown"


class CancelAfter(enum.StrEnum):
    """How long a GTT order lives."""

    MIN = "min"
    HOUR = "hour"
    DAY = "day"


class StopType(enum.StrEnum):
    LOSS = "loss"  # triggers when the last trade is at or below stop_price
    ENTRY = "entry"  # triggers when the last trade is at or above stop_price
    UNKNOWN = "unknown"


class SelfTradePrevention(enum.StrEnum):
    DECREMENT_AND_CANCEL = "dc"
    CANCEL_OLDEST = "co"
    CANCEL_NEWEST = "cn"
    CANCEL_BOTH = "cb"
    UNKNOWN = "unknown"


class OrderStatus(enum.StrEnum):
    RECEIVED = "received"
    PENDING = "pending"
    OPEN = "open"
    ACTIVE = "active"  # a stop order waiting for its trigger
    DONE = "done"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class Liquidity(enum.StrEnum):
    MAKER = "M"
    TAKER = "T"
    UNKNOWN = "unknown"


def _enum(kind: type[E], value: Any) -> E:
    """`kind(value)`, or its UNKNOWN member; a dict lookup (Enum's own call runs several Python frames)."""
    member = kind._value2member_map_.get(value) if isinstance(value, str) else None
    return member if member is not None else kind["UNKNOWN"]  # type: ignore[return-value]


def _time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _bool(value: Any) -> bool:
    return value is True or value == "true"


@dataclass(frozen=True, slots=True)
class ExchangeAccount:
    id: str
    currency: str
    balance: Decimal | None
    available: Decimal | None
    hold: Decimal | None
    profile_id: str
    trading_enabled: bool
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> ExchangeAccount:
        return cls(
            as_str(data.get("id")),
            as_str(data.get("currency")),
            dec(data.get("balance")),
            dec(data.get("available")),
            dec(data.get("hold")),
            as_str(data.get("profile_id")),
            data.get("trading_enabled", True) is not False,
            data,
        )


@dataclass(frozen=True, slots=True)
class Hold:
    id: str
    account_id: str
    amount: Decimal | None
    type: str  # "order" (an open order) or "transfer"
    ref: str  # the order (or transfer) id
    created_at: datetime | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> Hold:
        return cls(
            as_str(data.get("id")),
            as_str(data.get("account_id")),
            dec(data.get("amount")),
            as_str(data.get("type")),
            as_str(data.get("ref")),
            _time(data.get("created_at")),
            data,
        )


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: str
    amount: Decimal | None
    balance: Decimal | None
    type: str  # "match", "fee", "conversion", "transfer", ...
    created_at: datetime | None
    details: Mapping[str, str]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> LedgerEntry:
        details = data.get("details")
        return cls(
            as_str(data.get("id")),
            dec(data.get("amount")),
            dec(data.get("balance")),
            as_str(data.get("type")),
            _time(data.get("created_at")),
            {str(k): as_str(v) for k, v in details.items()} if isinstance(details, Mapping) else {},
            data,
        )


@dataclass(frozen=True, slots=True)
class ExchangeOrder:
    id: str
    client_oid: str
    product_id: str
    side: OrderSide
    type: ExchangeOrderType
    status: OrderStatus
    price: Decimal | None
    size: Decimal | None
    funds: Decimal | None
    filled_size: Decimal | None
    executed_value: Decimal | None
    fill_fees: Decimal | None
    time_in_force: TimeInForce
    post_only: bool
    stp: SelfTradePrevention
    stop: StopType | None
    stop_price: Decimal | None
    max_floor: Decimal | None
    created_at: datetime | None
    expire_time: datetime | None
    done_at: datetime | None
    done_reason: str  # "filled" or "canceled" once done
    settled: bool
    confirmed_by_lookup: bool = False  # a lost create response, settled by GET /orders/client:{client_oid}
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_open(self) -> bool:
        return self.status in (
            OrderStatus.OPEN,
            OrderStatus.ACTIVE,
            OrderStatus.PENDING,
            OrderStatus.RECEIVED,
        )

    @classmethod
    def parse(cls, data: Json, *, confirmed_by_lookup: bool = False) -> ExchangeOrder:
        stop = data.get("stop")
        return cls(
            as_str(data.get("id")),
            as_str(data.get("client_oid")),
            as_str(data.get("product_id")),
            _enum(OrderSide, data.get("side")),
            _enum(ExchangeOrderType, data.get("type")),
            _enum(OrderStatus, data.get("status")),
            dec(data.get("price")),
            dec(data.get("size")),
            dec(data.get("funds")),
            dec(data.get("filled_size")),
            dec(data.get("executed_value")),
            dec(data.get("fill_fees")),
            _enum(TimeInForce, data.get("time_in_force", "GTC")),
            _bool(data.get("post_only")),
            _enum(SelfTradePrevention, data.get("stp", "dc")),
            _enum(StopType, stop) if stop else None,
            dec(data.get("stop_price")),
            dec(data.get("max_floor")),
            _time(data.get("created_at")),
            _time(data.get("expire_time")),
            _time(data.get("done_at")),
            as_str(data.get("done_reason")),
            _bool(data.get("settled")),
            confirmed_by_lookup,
            data,
        )


@dataclass(frozen=True, slots=True)
class ExchangeFill:
    trade_id: int
    order_id: str
    product_id: str
    side: OrderSide
    price: Decimal | None
    size: Decimal | None
    fee: Decimal | None
    liquidity: Liquidity
    created_at: datetime | None
    settled: bool
    usd_volume: Decimal | None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> ExchangeFill:
        return cls(
            int(data.get("trade_id") or 0),
            as_str(data.get("order_id")),
            as_str(data.get("product_id")),
            _enum(OrderSide, data.get("side")),
            dec(data.get("price")),
            dec(data.get("size")),
            dec(data.get("fee")),
            _enum(Liquidity, data.get("liquidity")),
            _time(data.get("created_at")),
            _bool(data.get("settled")),
            dec(data.get("usd_volume")),
            data,
        )


@dataclass(frozen=True, slots=True)
class ExchangeProduct:
    id: str
    base_currency: str
    quote_currency: str
    base_increment: Decimal | None
    quote_increment: Decimal | None
    min_market_funds: Decimal | None
    display_name: str
    status: str
    trading_disabled: bool
    post_only: bool
    limit_only: bool
    cancel_only: bool
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> ExchangeProduct:
        return cls(
            as_str(data.get("id")),
            as_str(data.get("base_currency")),
            as_str(data.get("quote_currency")),
            dec(data.get("base_increment")),
            dec(data.get("quote_increment")),
            dec(data.get("min_market_funds")),
            as_str(data.get("display_name")),
            as_str(data.get("status")),
            _bool(data.get("trading_disabled")),
            _bool(data.get("post_only")),
            _bool(data.get("limit_only")),
            _bool(data.get("cancel_only")),
            data,
        )


@dataclass(frozen=True, slots=True)
class BookEntry:
    """One row of the book: at level 1/2 `orders` counts the orders at the price; at level 3 each row is one
    order, named by `order_id`."""

    price: Decimal
    size: Decimal
    orders: int = 1
    order_id: str = ""

    @classmethod
    def parse(cls, row: Any) -> BookEntry:
        price, size, third = Decimal(str(row[0])), Decimal(str(row[1])), row[2] if len(row) > 2 else 1
        if isinstance(third, str):
            return cls(price, size, 1, third)
        return cls(price, size, int(third))


@dataclass(frozen=True, slots=True)
class ExchangeBook:
    product_id: str
    sequence: int
    bids: tuple[BookEntry, ...]  # best first
    asks: tuple[BookEntry, ...]
    time: datetime | None

    @classmethod
    def parse(cls, product_id: str, data: Json) -> ExchangeBook:
        return cls(
            product_id,
            int(data.get("sequence") or 0),
            tuple(BookEntry.parse(r) for r in data.get("bids") or ()),
            tuple(BookEntry.parse(r) for r in data.get("asks") or ()),
            _time(data.get("time")),
        )

    def levels(self) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids, asks) aggregated by price, best first: a level-3 book summed into levels."""

        def aggregate(entries: tuple[BookEntry, ...]) -> list[tuple[Decimal, Decimal]]:
            sizes: dict[Decimal, Decimal] = {}
            for entry in entries:
                sizes[entry.price] = sizes.get(entry.price, Decimal(0)) + entry.size
            return list(sizes.items())

        return aggregate(self.bids), aggregate(self.asks)


@dataclass(frozen=True, slots=True)
class ExchangeTicker:
    product_id: str
    trade_id: int
    price: Decimal | None
    size: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    volume: Decimal | None
    time: datetime | None

    @classmethod
    def parse(cls, product_id: str, data: Json) -> ExchangeTicker:
        return cls(
            product_id,
            int(data.get("trade_id") or 0),
            dec(data.get("price")),
            dec(data.get("size")),
            dec(data.get("bid")),
            dec(data.get("ask")),
            dec(data.get("volume")),
            _time(data.get("time")),
        )


@dataclass(frozen=True, slots=True)
class ExchangeTrade:
    trade_id: int
    product_id: str
    price: Decimal | None
    size: Decimal | None
    side: OrderSide  # the maker's side, as Exchange reports it: "sell" means a buyer took a resting sell
    time: datetime | None

    @classmethod
    def parse(cls, product_id: str, data: Json) -> ExchangeTrade:
        return cls(
            int(data.get("trade_id") or 0),
            product_id,
            dec(data.get("price")),
            dec(data.get("size")),
            _enum(OrderSide, data.get("side")),
            _time(data.get("time")),
        )


@dataclass(frozen=True, slots=True)
class Candle:
    start: int  # epoch seconds of the bucket's start
    low: Decimal
    high: Decimal
    open: Decimal
    close: Decimal
    volume: Decimal

    @classmethod
    def parse(cls, row: Any) -> Candle:
        return cls(int(row[0]), *(Decimal(repr(v)) if isinstance(v, float) else Decimal(v) for v in row[1:6]))


@dataclass(frozen=True, slots=True)
class ProductStats:
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    last: Decimal | None
    volume: Decimal | None
    volume_30day: Decimal | None

    @classmethod
    def parse(cls, data: Json) -> ProductStats:
        return cls(*(dec(data.get(k)) for k in ("open", "high", "low", "last", "volume", "volume_30day")))


@dataclass(frozen=True, slots=True)
class Currency:
    id: str
    name: str
    min_size: Decimal | None
    max_precision: Decimal | None
    status: str
    type: str  # "fiat" or "crypto"
    convertible_to: tuple[str, ...]
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> Currency:
        details = data.get("details")
        return cls(
            as_str(data.get("id")),
            as_str(data.get("name")),
            dec(data.get("min_size")),
            dec(data.get("max_precision")),
            as_str(data.get("status")),
            as_str(details.get("type")) if isinstance(details, Mapping) else "",
            tuple(as_str(c) for c in data.get("convertible_to") or ()),
            data,
        )


@dataclass(frozen=True, slots=True)
class Fees:
    maker_fee_rate: Decimal | None
    taker_fee_rate: Decimal | None
    usd_volume: Decimal | None

    @classmethod
    def parse(cls, data: Json) -> Fees:
        return cls(
            dec(data.get("maker_fee_rate")), dec(data.get("taker_fee_rate")), dec(data.get("usd_volume"))
        )


@dataclass(frozen=True, slots=True)
class Profile:
    id: str
    user_id: str
    name: str
    active: bool
    is_default: bool
    created_at: datetime | None

    @classmethod
    def parse(cls, data: Json) -> Profile:
        return cls(
            as_str(data.get("id")),
            as_str(data.get("user_id")),
            as_str(data.get("name")),
            _bool(data.get("active")),
            _bool(data.get("is_default")),
            _time(data.get("created_at")),
        )


@dataclass(frozen=True, slots=True)
class Conversion:
    id: str
    amount: Decimal | None
    from_currency: str
    to_currency: str
    from_account_id: str
    to_account_id: str

    @classmethod
    def parse(cls, data: Json) -> Conversion:
        return cls(
            as_str(data.get("id")),
            dec(data.get("amount")),
            as_str(data.get("from")),
            as_str(data.get("to")),
            as_str(data.get("from_account_id")),
            as_str(data.get("to_account_id")),
        )
