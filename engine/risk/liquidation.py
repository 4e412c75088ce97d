"""A minimum distance to the estimated liquidation price, as a fraction of the mark, after the order.

Estimated as the venue estimates a cross-margined position's: liquidation comes when equity falls to the
maintenance margin, so the price may move (equity - maintenance margin) / |position| against it. The order's
added maintenance margin is its new notional times the instrument's maintenance rate (the venue's, read from
the position; half the initial margin rate when there is no position to read it from). An estimate, never
the venue's own figure: it treats this position as the one that moves.
"""

from __future__ import annotations

from decimal import Decimal

from engine.risk.exposure import Exposure, refuse
from engine.risk.refusal import RiskRule
from engine.risk.terms import OrderTerms
from engine.risk.view import MarginSnapshot


def check_liquidation_distance(
    order: OrderTerms, min_distance: Decimal, margin: MarginSnapshot | None, exposure: Exposure
) -> None:
    if not exposure.increases:
        return
    if margin is None or margin.equity is None or margin.maintenance_margin is None:
        raise refuse(RiskRule.NO_MARGIN, "no account margin to estimate the liquidation price", order)
    rate = margin.maintenance_rate
    if rate is None:
        if not margin.leverage:
            raise refuse(RiskRule.NO_MARGIN, "the instrument's margin rates are not known", order)
        rate = 1 / (2 * margin.leverage)
    maintenance = margin.maintenance_margin + exposure.added_notional * rate
    cushion = margin.equity - maintenance
    if cushion <= 0:
        raise refuse(RiskRule.LIQUIDATION_DISTANCE, "equity would be below maintenance margin", order)
    distance = cushion / abs(exposure.after) / exposure.price
    if distance < min_distance:
        move = -cushion / exposure.after  # down for a long, up for a short
        raise refuse(
            RiskRule.LIQUIDATION_DISTANCE,
            f"estimated liquidation at {exposure.price + move:.2f} is {distance:.4f} of the mark away, "
            f"min {min_distance}",
            order,
        )
