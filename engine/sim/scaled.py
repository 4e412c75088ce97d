"""A scaled order's ladder: the child limit orders it places, each a size at a price.

Either the children are given (`orders`: a list of `{base_size, limit_price}`), or they are spread evenly
from `min_price` to `max_price`, `num_orders` of them, the total `base_size` split by `size_distribution`:
FLAT (equal), LINEAR_INCREASING (the highest price gets the most) or LINEAR_DECREASING (the lowest price
gets the most). Sizes and prices are rounded to the product's increments; the last child takes the rounding
remainder so the ladder adds up to the total.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from engine.sim.book import ZERO
from engine.sim.config import ProductSpec
from engine.sim.orders import OrderRefused
from engine.sim.values import InvalidValue, parse_decimal, parse_int

FLAT, INCREASING, DECREASING = "FLAT", "LINEAR_INCREASING", "LINEAR_DECREASING"
MAX_CHILDREN = 50


def _refuse(message: str) -> OrderRefused:
    return OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_ARGUMENT", message)


def _round(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value(rounding=ROUND_DOWN) * increment


def ladder(config: dict[str, Any], spec: ProductSpec) -> list[tuple[Decimal, Decimal]]:
    """[(base_size, limit_price)], lowest price first."""
    given = config.get("orders")
    if isinstance(given, list) and given:
        legs = []
        for child in given:
            try:
                legs.append(
                    (
                        parse_decimal(child["base_size"], "base_size"),
                        parse_decimal(child["limit_price"], "limit_price"),
                    )
                )
            except (InvalidValue, KeyError, TypeError) as bad:
                raise _refuse(f"each child order needs a base_size and a limit_price: {bad}") from None
        return sorted(legs, key=lambda leg: leg[1])
    try:
        count = parse_int(config.get("num_orders", 2), "num_orders", minimum=2, maximum=MAX_CHILDREN)
        low = parse_decimal(config.get("min_price"), "min_price")
        high = parse_decimal(config.get("max_price"), "max_price")
        total = parse_decimal(config.get("base_size"), "base_size")
    except InvalidValue as bad:
        raise _refuse(str(bad)) from None
    if high <= low:
        raise _refuse("max_price must be above min_price")
    distribution = config.get("size_distribution", FLAT)
    if distribution not in (FLAT, INCREASING, DECREASING):
        raise _refuse("size_distribution must be FLAT, LINEAR_INCREASING or LINEAR_DECREASING")
    step = (high - low) / (count - 1)
    prices = [_round(low + step * i, spec.price_increment) for i in range(count - 1)] + [high]
    weights = [Decimal(1)] * count
    if distribution == INCREASING:
        weights = [Decimal(i + 1) for i in range(count)]
    elif distribution == DECREASING:
        weights = [Decimal(count - i) for i in range(count)]
    unit = total / sum(weights, ZERO)
    sizes = [_round(unit * w, spec.base_increment) for w in weights[:-1]]
    sizes.append(total - sum(sizes, ZERO))
    if any(size < spec.base_min_size for size in sizes):
        raise _refuse("a child order would be below the product's minimum size")
    return list(zip(sizes, prices, strict=True))
