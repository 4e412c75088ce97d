"""Maximum leverage per instrument: the position's notional at the mark over the account's equity, as it would
be once the order filled. An order that shrinks the position always passes."""

from __future__ import annotations

from decimal import Decimal

from engine.risk.exposure import Exposure, refuse
from engine.risk.refusal import RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import MarginSnapshot


def check_leverage(
    order: OrderTerms, max_leverage: Decimal, margin: MarginSnapshot | None, exposure: Exposure
) -> None:
    if not exposure.increases:
        return
    if margin is None or margin.equity is None:
        raise refuse(RiskRule.NO_MARGIN, "no account equity to check leverage against", order)
    if margin.equity <= 0:
        raise refuse(RiskRule.LEVERAGE, f"equity is {margin.equity}", order)
    leverage = abs(exposure.after) * exposure.price / margin.equity
    if leverage > max_leverage:
        raise refuse(RiskRule.LEVERAGE, f"leverage would be {leverage:.4f}x, max {max_leverage}x", order)
