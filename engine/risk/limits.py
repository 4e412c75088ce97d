"""Static caps per product: order size and notional, position and allocation, and open orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from engine.decimals import bounded_decimal
from engine.risk.refusal import OrderRefused, RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import RiskView


class ProductLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Caps for one product. None switches a cap off. The worker's `[risk]` and `[risk.product.X]` tables."""

    max_order_size: Decimal | None = None  # base units per order
    max_order_notional: Decimal | None = None  # quote currency per order
    max_position: Decimal | None = None  # |position| in base units after the order fills
    max_allocation: Decimal | None = None  # |position| x price in quote currency after the order fills
    max_open_orders: Annotated[int, msgspec.Meta(ge=1, le=2**31)] | None = None  # open orders in this product
    # margined products: |position| x mark over the account's equity, after the order fills
    max_leverage: Decimal | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_order_size",
            "max_order_notional",
            "max_position",
            "max_allocation",
            "max_leverage",
        ):
            value = getattr(self, name)
            if value is not None:
                msgspec.structs.force_setattr(self, name, bounded_decimal(value, name))


def _refuse(rule: RiskRule, detail: str, order: OrderTerms) -> OrderRefused:
    return OrderRefused(rule, detail, product_id=order.product_id, client_order_id=order.client_order_id)


def check_order_size(
    order: OrderTerms, limits: ProductLimits, bid: Decimal | None, ask: Decimal | None
) -> None:
    if limits.max_order_size is not None:
        size = order.base_quantity(bid, ask)
        if size is None:
            raise _refuse(RiskRule.NO_MARKET, "cannot size a quote-sized order without a market", order)
        if size > limits.max_order_size:
            raise _refuse(RiskRule.ORDER_SIZE, f"size {size} > max {limits.max_order_size}", order)
    if limits.max_order_notional is not None:
        notional = order.notional(bid, ask)
        if notional is None:
            raise _refuse(RiskRule.NO_MARKET, "cannot price a market order without a best bid/ask", order)
        if notional > limits.max_order_notional:
            raise _refuse(
                RiskRule.ORDER_NOTIONAL, f"notional {notional} > max {limits.max_order_notional}", order
            )


def check_exposure(
    order: OrderTerms, limits: ProductLimits, view: RiskView, bid: Decimal | None, ask: Decimal | None
) -> None:
    """Position and allocation as they would be if the order filled completely.

    An order that brings the position toward zero is always allowed: it is how an over-limit book gets out.
    """
    if limits.max_position is None and limits.max_allocation is None:
        return
    size = order.base_quantity(bid, ask)
    if size is None:
        raise _refuse(RiskRule.NO_MARKET, "cannot size a quote-sized order without a market", order)
    current = view.position(order.product_id)
    after = current + size if order.is_buy else current - size
    if abs(after) <= abs(current):
        return
    if limits.max_position is not None and abs(after) > limits.max_position:
        raise _refuse(RiskRule.POSITION, f"position would be {after}, max {limits.max_position}", order)
    if limits.max_allocation is not None:
        price = order.reference_price(bid, ask)
        if price is None:
            raise _refuse(RiskRule.NO_MARKET, "cannot value the position without a best bid/ask", order)
        allocation = abs(after) * price
        if allocation > limits.max_allocation:
            raise _refuse(
                RiskRule.ALLOCATION, f"allocation would be {allocation}, max {limits.max_allocation}", order
            )


def check_open_orders(
    order: OrderTerms, limits: ProductLimits, max_open_orders_total: int | None, view: RiskView
) -> None:
    if limits.max_open_orders is not None:
        count = view.open_order_count(order.product_id)
        if count >= limits.max_open_orders:
            raise _refuse(
                RiskRule.OPEN_ORDERS,
                f"{count} open in {order.product_id}, max {limits.max_open_orders}",
                order,
            )
    if max_open_orders_total is not None:
        count = view.open_order_count(None)
        if count >= max_open_orders_total:
            raise _refuse(RiskRule.OPEN_ORDERS, f"{count} open orders, max {max_open_orders_total}", order)
