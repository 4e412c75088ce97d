"""Reduce-only for closing orders: an order against the position must say it is reduce-only (so the venue
can never turn a close into a new position the other way, e.g. after a fill the engine has not seen yet),
and a reduce-only order must be against the position and no larger than it."""

from __future__ import annotations

from engine.risk.exposure import Exposure, refuse
from engine.risk.refusal import RiskRule
from engine.risk.terms import OrderTerms


def check_reduce_only(order: OrderTerms, exposure: Exposure) -> None:
    current, after = exposure.current, exposure.after
    closing = current != 0 and (after - current) * current < 0  # trades against the position
    if order.reduce_only:
        if not closing:
            raise refuse(RiskRule.REDUCE_ONLY, f"reduce-only but the position is {current}", order)
        if after * current < 0:
            raise refuse(RiskRule.REDUCE_ONLY, f"reduce-only order larger than the position {current}", order)
    elif closing:
        raise refuse(
            RiskRule.REDUCE_ONLY,
            f"an order against the position {current} must be reduce-only",
            order,
        )
