"""Why the risk gate refused an order: a typed reason a strategy can branch on."""

from __future__ import annotations

import enum

from engine.errors import EngineError


class RiskRule(enum.Enum):
    KILL_SWITCH = "kill_switch"
    CIRCUIT_BREAKER = "circuit_breaker"
    DAILY_LOSS = "daily_loss"
    ORDER_RATE = "order_rate"
    COOLDOWN = "cooldown"
    ORDER_SIZE = "order_size"
    ORDER_NOTIONAL = "order_notional"
    PRICE_BAND = "price_band"
    NO_MARKET = "no_market"  # a rule needed a best bid/ask and there was none: fail closed
    OPEN_ORDERS = "open_orders"
    POSITION = "position"
    ALLOCATION = "allocation"
    BALANCE = "balance"
    LEVERAGE = "leverage"
    MARGIN_USAGE = "margin_usage"
    REDUCE_ONLY = "reduce_only"
    LIQUIDATION_DISTANCE = "liquidation_distance"
    NO_MARGIN = "no_margin"  # a margin rule needed the account's margin and the venue had not sent it


class OrderRefused(EngineError):
    """The risk gate refused an order before it was journalled or sent. `rule` says which rule."""

    def __init__(
        self, rule: RiskRule, detail: str, *, product_id: str = "", client_order_id: str = ""
    ) -> None:
        super().__init__(f"order refused by {rule.value}: {detail}")
        self.rule = rule
        self.detail = detail
        self.product_id = product_id
        self.client_order_id = client_order_id
