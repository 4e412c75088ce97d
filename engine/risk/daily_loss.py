"""A daily loss limit: once the day's loss reaches the limit, only orders that reduce a position pass."""

from __future__ import annotations

from decimal import Decimal

from engine.risk.refusal import OrderRefused, RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import RiskView


def check_daily_loss(
    order: OrderTerms, limit: Decimal, view: RiskView, bid: Decimal | None, ask: Decimal | None
) -> None:
    pnl = view.daily_pnl()
    if pnl > -limit:
        return
    position = view.position(order.product_id)
    size = order.base_quantity(bid, ask)
    reduces = size is not None and (
        (not order.is_buy and 0 < size <= position) or (order.is_buy and 0 < size <= -position)
    )
    if not reduces:
        raise OrderRefused(
            RiskRule.DAILY_LOSS,
            f"daily P&L {pnl} reached the loss limit {limit}; only position-reducing orders pass",
            product_id=order.product_id,
            client_order_id=order.client_order_id,
        )
