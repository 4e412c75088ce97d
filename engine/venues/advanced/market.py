"""Market data over REST: candles, recent trades and the order book, private and public (`/market/*`).

https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api (Products, Public)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from engine.errors import InvalidValue
from engine.net.wire import Json, as_str, dec
from engine.venues.advanced.types import PriceLevel, _levels

__all__ = ["Candle", "Granularity", "MarketTrade", "MarketTrades", "ProductBook", "unix_time_str"]


class Granularity(enum.StrEnum):
    ONE_MINUTE = "ONE_MINUTE"
    FIVE_MINUTE = "FIVE_MINUTE"
    FIFTEEN_MINUTE = "FIFTEEN_MINUTE"
    THIRTY_MINUTE = "THIRTY_MINUTE"
    ONE_HOUR = "ONE_HOUR"
    TWO_HOUR = "TWO_HOUR"
    FOUR_HOUR = "FOUR_HOUR"
    SIX_HOUR = "SIX_HOUR"
    ONE_DAY = "ONE_DAY"


def unix_time_str(value: datetime | int | str | None, name: str) -> str | None:
    """Candle and trade windows are UNIX seconds on the wire; an aware datetime or whole seconds here."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidValue(name, "must be timezone-aware")
        return str(int(value.timestamp()))
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidValue(name, "must be an aware datetime or UNIX seconds")
    text = str(value)
    if not text.isdigit() or len(text) > 12:
        raise InvalidValue(name, "must be non-negative whole UNIX seconds")
    return text


@dataclass(frozen=True, slots=True)
class Candle:
    start: int
    low: Decimal | None
    high: Decimal | None
    open: Decimal | None
    close: Decimal | None
    volume: Decimal | None

    @classmethod
    def parse(cls, data: Json) -> Candle:
        start = as_str(data.get("start"))
        return cls(
            int(start) if start.isdigit() else 0,
            dec(data.get("low")),
            dec(data.get("high")),
            dec(data.get("open")),
            dec(data.get("close")),
            dec(data.get("volume")),
        )


@dataclass(frozen=True, slots=True)
class MarketTrade:
    trade_id: str
    product_id: str
    price: Decimal | None
    size: Decimal | None
    time: str
    side: str

    @classmethod
    def parse(cls, data: Json) -> MarketTrade:
        return cls(
            as_str(data.get("trade_id")),
            as_str(data.get("product_id")),
            dec(data.get("price")),
            dec(data.get("size")),
            as_str(data.get("time")),
            as_str(data.get("side")),
        )


@dataclass(frozen=True, slots=True)
class MarketTrades:
    """The latest trades, newest first, and the top of the book when they were read."""

    trades: list[MarketTrade]
    best_bid: Decimal | None
    best_ask: Decimal | None

    @classmethod
    def parse(cls, data: Json) -> MarketTrades:
        return cls(
            [MarketTrade.parse(t) for t in data.get("trades") or ()],
            dec(data.get("best_bid")),
            dec(data.get("best_ask")),
        )


@dataclass(frozen=True, slots=True)
class ProductBook:
    product_id: str
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    time: str
    last: Decimal | None
    mid_market: Decimal | None
    spread_bps: Decimal | None
    spread_absolute: Decimal | None
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> ProductBook:
        book = data.get("pricebook") or {}
        return cls(
            as_str(book.get("product_id")),
            _levels(book.get("bids")),
            _levels(book.get("asks")),
            as_str(book.get("time")),
            dec(data.get("last")),
            dec(data.get("mid_market")),
            dec(data.get("spread_bps")),
            dec(data.get("spread_absolute")),
            data,
        )
