"""What the risk rules read from an order: its product, side, sizes and prices, as `Decimal`s.

Orders are built by a venue (Advanced Trade: `engine.venues.advanced.orders`, one class per Coinbase order
configuration) and read through `engine.venues.base.OrderIntent`. Their rendered fragment is already
validated, so the terms are read from it uniformly, whatever the configuration: sizes from
`base_size`/`quote_size`, prices from `limit_price`, `stop_price` and `stop_trigger_price`, and the children
of a scaled order summed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.venues.base import OrderIntent

_PRICE_FIELDS = ("limit_price", "stop_price", "stop_trigger_price", "min_price", "max_price")


@dataclass(frozen=True, slots=True)
class OrderTerms:
    client_order_id: str
    product_id: str
    side: str  # "BUY" or "SELL"
    base_size: Decimal | None
    quote_size: Decimal | None
    limit_price: Decimal | None  # the price the order trades at, if it names one
    prices: tuple[Decimal, ...]  # every price in the order: the price band checks each
    reduce_only: bool = False  # the venue may only shrink the position with it

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"

    @classmethod
    def of(cls, order: OrderIntent) -> OrderTerms:
        fragment: dict[str, Any] = order.configuration.fragment()
        children: list[dict[str, Any]] = list(fragment.get("orders") or ())
        base = _decimal(fragment.get("base_size"))
        quote = _decimal(fragment.get("quote_size"))
        if base is None and quote is None and children:
            base = sum(
                (Decimal(child["base_size"]) for child in children if child.get("base_size")), Decimal(0)
            )
        prices = tuple(
            Decimal(part[name]) for part in (fragment, *children) for name in _PRICE_FIELDS if part.get(name)
        )
        side = str(order.side)
        limit_price = _decimal(fragment.get("limit_price"))
        if limit_price is None and prices:  # a ladder is valued at its least favourable rung
            limit_price = max(prices) if side == "BUY" else min(prices)
        return cls(
            order.client_order_id,
            order.product_id,
            side,
            base,
            quote,
            limit_price,
            prices,
            fragment.get("reduce_only") is True,
        )

    def reference_price(self, best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
        """The price the order is expected to trade at: its limit, else the touch it would take."""
        if self.limit_price is not None:
            return self.limit_price
        return best_ask if self.is_buy else best_bid

    def notional(self, best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
        """The order's value in quote currency, or None when it cannot be priced (no market)."""
        if self.quote_size is not None:
            return self.quote_size
        price = self.reference_price(best_bid, best_ask)
        if price is None or self.base_size is None:
            return None
        return self.base_size * price

    def base_quantity(self, best_bid: Decimal | None, best_ask: Decimal | None) -> Decimal | None:
        """The size in base units (a quote-sized order converted at its price or the touch)."""
        if self.base_size is not None:
            return self.base_size
        price = self.reference_price(best_bid, best_ask)
        if price is None or self.quote_size is None:
            return None
        return self.quote_size / price


def _decimal(value: Any) -> Decimal | None:
    return Decimal(value) if value else None
