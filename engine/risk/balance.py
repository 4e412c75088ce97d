"""Sufficient balance: the order must be covered by what is not already on hold.

A buy needs its notional (plus the fee allowance) in the quote currency, a sell its size in the base currency.
The view's `available` already subtracts holds, the engine's own open and in-flight orders included, so two
orders sent back to back cannot both spend the same balance.
"""

from __future__ import annotations

from decimal import Decimal

from engine.risk.refusal import OrderRefused, RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import RiskView


def required_funds(
    order: OrderTerms, bid: Decimal | None, ask: Decimal | None, fee_rate: Decimal
) -> Decimal | None:
    """What the order would put on hold: quote currency for a buy, base currency for a sell."""
    if order.is_buy:
        notional = order.notional(bid, ask)
        return None if notional is None else notional * (1 + fee_rate)
    return order.base_quantity(bid, ask)


def check_balance(
    order: OrderTerms, view: RiskView, bid: Decimal | None, ask: Decimal | None, fee_rate: Decimal
) -> None:
    currencies = view.currencies(order.product_id)
    if currencies is None:  # margined products are checked by the exchange against buying power
        return
    currency = currencies[1] if order.is_buy else currencies[0]
    needed = required_funds(order, bid, ask, fee_rate)
    if needed is None:
        raise OrderRefused(
            RiskRule.NO_MARKET,
            "cannot price a market order without a best bid/ask",
            product_id=order.product_id,
            client_order_id=order.client_order_id,
        )
    available = view.available(currency)
    if available is None or needed > available:
        raise OrderRefused(
            RiskRule.BALANCE,
            f"needs {needed} {currency}, {'unknown' if available is None else available} available",
            product_id=order.product_id,
            client_order_id=order.client_order_id,
        )
