"""An attached order (`attached_order_configuration` on create order): a take-profit / stop-loss bracket
that comes to life when the order it is attached to fills.

As Coinbase documents it (https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_postorder):
only a trigger bracket can be attached, to a market or limit order; it carries no size, because it takes the
filled size of its parent, and trades the opposite side. For a buy, the take-profit limit sits above the
entry and the stop trigger below it (mirrored for a sell); anything else is refused with
PREVIEW_INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL. On futures the bracket is reduce-only, as every bracket is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.sim.clock import fmt
from engine.sim.orders import LIMIT, MARKET, OrderRefused, OrderSpec

BRACKETS = ("trigger_bracket_gtc", "trigger_bracket_gtd")


@dataclass(frozen=True, slots=True)
class AttachedBracket:
    """The bracket waiting for its parent to fill: its configuration key and fields, without a size."""

    config_key: str
    config: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {self.config_key: self.config}

    def spec(self, size: Decimal) -> OrderSpec:
        """The child order's spec, sized to what the parent filled."""
        return OrderSpec.parse({self.config_key: {**self.config, "base_size": fmt(size)}})


def _wrong_type(message: str) -> OrderRefused:
    return OrderRefused("UNSUPPORTED_ORDER_CONFIGURATION", "PREVIEW_INVALID_ORDER_TYPE_FOR_ATTACHED", message)


def parse_attached(
    raw: Any, parent: OrderSpec, side: str, entry_price: Decimal, price_increment: Decimal
) -> AttachedBracket:
    """Check an attached configuration against the order it rides on; OrderRefused says what is wrong.

    `entry_price` is where the parent trades: its limit price, or the touch for a market order.
    """
    if parent.order_type not in (MARKET, LIMIT) or parent.config_key == "scaled_limit_gtc":
        raise _wrong_type("an attached order rides only on a market or limit order")
    if not isinstance(raw, dict) or len(raw) != 1:
        raise _wrong_type("attached_order_configuration must hold exactly one configuration")
    ((key, config),) = raw.items()
    if key not in BRACKETS or not isinstance(config, dict):
        raise _wrong_type(f"only {' or '.join(BRACKETS)} can be attached, not {key!r}")
    if config.get("base_size") not in (None, ""):
        raise OrderRefused(
            "INVALID_ARGUMENT",
            "PREVIEW_INVALID_ARGUMENT",
            "an attached order takes its parent's filled size: omit base_size",
        )
    bracket = AttachedBracket(key, dict(config))
    probe = bracket.spec(parent.base_size or Decimal(1))  # the prices and end time, checked now
    take_profit, stop = probe.limit_price, probe.stop_price
    if take_profit is None or stop is None:  # a bracket's parse requires both: unreachable
        raise _wrong_type("a trigger bracket needs limit_price and stop_trigger_price")
    if take_profit % price_increment or stop % price_increment:
        raise OrderRefused("INVALID_PRICE_PRECISION", "PREVIEW_INVALID_PRICE_PRECISION", "price increment")
    protects_a_long = side == "BUY"  # the bracket sells what a buy bought
    if (
        (take_profit <= entry_price or stop >= entry_price)
        if protects_a_long
        else (take_profit >= entry_price or stop <= entry_price)
    ):
        raise OrderRefused(
            "INVALID_ARGUMENT",
            "PREVIEW_INVALID_ORDER_SIDE_FOR_ATTACHED_TPSL",
            "the take-profit must be beyond the entry price and the stop trigger short of it"
            f" (entry {fmt(entry_price)}, take-profit {fmt(take_profit)}, stop {fmt(stop)})",
        )
    return bracket
