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
    if currencies is None:
        _check_margin_funds(order, view, bid, ask)
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


def _check_margin_funds(order: OrderTerms, view: RiskView, bid: Decimal | None, ask: Decimal | None) -> None:
    """A margined order's initial margin must be covered by the account's available funds. Without margin
    figures from the venue (Advanced Trade's futures) the exchange checks it against buying power."""
    margin = view.margin(order.product_id)
    if margin is None or margin.available_funds is None or not margin.leverage:
        return
    size = order.base_quantity(bid, ask)
    mark = view.mark_price(order.product_id)
    price = mark if mark is not None else order.reference_price(bid, ask)
    if size is None or price is None:
        raise OrderRefused(
            RiskRule.NO_MARKET,
            "cannot price the order's margin without a mark price or a best bid/ask",
            product_id=order.product_id,
            client_order_id=order.client_order_id,
        )
    current = view.position(order.product_id)
    after = current + size if order.is_buy else current - size
    added = max(Decimal(0), abs(after) - abs(current)) * price / margin.leverage
    if added > margin.available_funds:
        raise OrderRefused(
            RiskRule.BALANCE,
            f"needs {added} initial margin, {margin.available_funds} available",
            product_id=order.product_id,
            client_order_id=order.client_order_id,
        )
