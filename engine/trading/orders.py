"""The orders a strategy asks for, and the Coinbase create-order body each becomes.

An `OrderRequest` is immutable and carries its `client_order_id` from birth: the id is the key of the journal
entry, the idempotency key of every retry, and the handle the strategy keeps.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"


class OrderKind(enum.Enum):
    """Coinbase `order_configuration` keys the engine places."""

    MARKET_IOC = "market_market_ioc"
    MARKET_FOK = "market_market_fok"
    LIMIT_GTC = "limit_limit_gtc"
    LIMIT_GTD = "limit_limit_gtd"
    LIMIT_FOK = "limit_limit_fok"
    SOR_LIMIT_IOC = "sor_limit_ioc"
    STOP_LIMIT_GTC = "stop_limit_stop_limit_gtc"
    STOP_LIMIT_GTD = "stop_limit_stop_limit_gtd"

    @property
    def has_limit_price(self) -> bool:
        return self not in (OrderKind.MARKET_IOC, OrderKind.MARKET_FOK)


class MarginType(enum.Enum):
    CROSS = "CROSS"
    ISOLATED = "ISOLATED"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_order_id: str
    product_id: str
    side: Side
    kind: OrderKind
    base_size: Decimal | None = None
    quote_size: Decimal | None = None  # market buys may be sized in quote currency
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_direction: str | None = None  # STOP_DIRECTION_STOP_UP / STOP_DIRECTION_STOP_DOWN
    end_time: str | None = None  # RFC 3339, for the GTD kinds
    post_only: bool = False
    leverage: Decimal | None = None  # futures
    margin_type: MarginType | None = None  # futures

    def __post_init__(self) -> None:
        if (self.base_size is None) == (self.quote_size is None):
            raise ValueError("an order needs exactly one of base_size or quote_size")
        if self.quote_size is not None and self.kind.has_limit_price:
            raise ValueError("quote_size is only for market orders")
        for size in (self.base_size, self.quote_size):
            if size is not None and not size > 0:
                raise ValueError("order size must be positive")
        if self.kind.has_limit_price and (self.limit_price is None or not self.limit_price > 0):
            raise ValueError(f"a {self.kind.value} order needs a positive limit_price")
        if self.kind in (OrderKind.STOP_LIMIT_GTC, OrderKind.STOP_LIMIT_GTD) and self.stop_price is None:
            raise ValueError("a stop-limit order needs a stop_price")
        if self.kind in (OrderKind.LIMIT_GTD, OrderKind.STOP_LIMIT_GTD) and self.end_time is None:
            raise ValueError("a GTD order needs an end_time")
        if len(self.client_order_id) > 128 or not self.client_order_id:
            raise ValueError("client_order_id must be 1-128 characters")

    def order_configuration(self) -> dict[str, dict[str, Any]]:
        config: dict[str, Any] = {}
        if self.base_size is not None:
            config["base_size"] = str(self.base_size)
        if self.quote_size is not None:
            config["quote_size"] = str(self.quote_size)
        if self.kind.has_limit_price:
            config["limit_price"] = str(self.limit_price)
        if self.stop_price is not None:
            config["stop_price"] = str(self.stop_price)
            config["stop_direction"] = self.stop_direction or (
                "STOP_DIRECTION_STOP_UP" if self.side is Side.BUY else "STOP_DIRECTION_STOP_DOWN"
            )
        if self.end_time is not None:
            config["end_time"] = self.end_time
        if self.kind in (OrderKind.LIMIT_GTC, OrderKind.LIMIT_GTD):
            config["post_only"] = self.post_only
        return {self.kind.value: config}

    def body(self) -> dict[str, Any]:
        """The `POST /orders` body."""
        body: dict[str, Any] = {
            "client_order_id": self.client_order_id,
            "product_id": self.product_id,
            "side": self.side.value,
            "order_configuration": self.order_configuration(),
        }
        if self.leverage is not None:
            body["leverage"] = str(self.leverage)
        if self.margin_type is not None:
            body["margin_type"] = self.margin_type.value
        return body

    def reference_price(self, best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
        """The price the order is expected to trade at: its limit, else the touch it would take."""
        if self.limit_price is not None:
            return self.limit_price
        return best_ask if self.side is Side.BUY else best_bid

    def notional(self, best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
        """The order's value in quote currency, or None when it cannot be priced (no market)."""
        if self.quote_size is not None:
            return self.quote_size
        price = self.reference_price(best_bid, best_ask)
        if price is None or self.base_size is None:
            return None
        return self.base_size * price

    def base_quantity(self, best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
        """The order's size in base units (a quote-sized market order converted at the touch)."""
        if self.base_size is not None:
            return self.base_size
        price = self.reference_price(best_bid, best_ask)
        if price is None or self.quote_size is None:
            return None
        return self.quote_size / price
