"""A price band around the touch: a limit price far from the best bid/ask is a fat finger or a stale signal.

The band is one interval for both sides, [bid x (1 - band), ask x (1 + band)]: it catches the aggressive error
(a buy far above the ask) and the passive one (a price off by a factor of ten).
"""

from __future__ import annotations

from decimal import Decimal

from engine.risk.refusal import OrderRefused, RiskRule
from engine.risk.terms import OrderTerms


def check_price_band(order: OrderTerms, band: Decimal, bid: Decimal | None, ask: Decimal | None) -> None:
    prices = order.prices
    if not prices:
        return  # a market order takes the touch: its size and notional rules cover it
    if bid is None or ask is None:
        raise OrderRefused(
            RiskRule.NO_MARKET,
            "no best bid/ask to check the price band against",
            product_id=order.product_id,
            client_order_id=order.client_order_id,
        )
    low, high = bid * (1 - band), ask * (1 + band)
    for price in prices:
        if not low <= price <= high:
            raise OrderRefused(
                RiskRule.PRICE_BAND,
                f"price {price} outside [{low}, {high}]",
                product_id=order.product_id,
                client_order_id=order.client_order_id,
            )
