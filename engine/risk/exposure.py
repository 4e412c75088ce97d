"""What an order does to a margined position: the size it would leave and the exposure it adds.

Shared by the leverage, margin and liquidation rules, which all let an order that brings the position toward
zero through (it is how an over-extended book gets out) and price what is left at the mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from engine.risk.refusal import OrderRefused, RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import RiskView


@dataclass(frozen=True, slots=True)
class Exposure:
    current: Decimal  # signed position now
    after: Decimal  # signed position if the order filled completely
    price: Decimal  # the mark (else the order's own price): what the position is valued at

    @property
    def increases(self) -> bool:
        return abs(self.after) > abs(self.current)

    @property
    def added_notional(self) -> Decimal:
        """The notional the order adds beyond what it closes."""
        return max(Decimal(0), abs(self.after) - abs(self.current)) * self.price


def exposure(order: OrderTerms, view: RiskView, bid: Decimal | None, ask: Decimal | None) -> Exposure:
    size = order.base_quantity(bid, ask)
    mark = view.mark_price(order.product_id)
    price = mark if mark is not None else order.reference_price(bid, ask)
    if size is None or price is None:
        raise OrderRefused(
            RiskRule.NO_MARKET,
            "cannot value the order without a mark price or a best bid/ask",
            product_id=order.product_id,
            client_order_id=order.client_order_id,
        )
    current = view.position(order.product_id)
    after = current + size if order.is_buy else current - size
    return Exposure(current, after, price)


def refuse(rule: RiskRule, detail: str, order: OrderTerms) -> OrderRefused:
    return OrderRefused(rule, detail, product_id=order.product_id, client_order_id=order.client_order_id)
