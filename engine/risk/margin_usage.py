"""Maximum margin usage: the account's initial margin plus what the order adds, over its equity.

The order adds its new notional divided by the instrument's leverage (the venue's setting: initial margin is
1/leverage of notional). Resting orders that have not filled are not counted: the venue reserves for them,
and its `available_funds` is what the balance rule checks.
"""

from __future__ import annotations

from decimal import Decimal

from engine.risk.exposure import Exposure, refuse
from engine.risk.refusal import RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import MarginSnapshot


def order_initial_margin(exposure: Exposure, margin: MarginSnapshot) -> Decimal | None:
    if not exposure.increases:
        return Decimal(0)
    if not margin.leverage:
        return None
    return exposure.added_notional / margin.leverage


def check_margin_usage(
    order: OrderTerms, max_usage: Decimal, margin: MarginSnapshot | None, exposure: Exposure
) -> None:
    if not exposure.increases:
        return
    if margin is None or margin.equity is None or margin.initial_margin is None:
        raise refuse(RiskRule.NO_MARGIN, "no account margin to check margin usage against", order)
    added = order_initial_margin(exposure, margin)
    if added is None:
        raise refuse(RiskRule.NO_MARGIN, "the instrument's leverage is not known", order)
    if margin.equity <= 0:
        raise refuse(RiskRule.MARGIN_USAGE, f"equity is {margin.equity}", order)
    usage = (margin.initial_margin + added) / margin.equity
    if usage > max_usage:
        raise refuse(RiskRule.MARGIN_USAGE, f"margin usage would be {usage:.4f}, max {max_usage}", order)
