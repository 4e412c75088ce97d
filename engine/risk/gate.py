"""The risk gate: every rule, checked before every order, each decision audited.

Rules run cheapest and most absolute first (kill switch, breaker, daily loss, rate), then the ones that need
the market and the account. The order-rate count and the breaker's probe are only taken once every rule
has passed, so a refused order never uses up rate budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from engine.decimals import bounded_decimal
from engine.risk.audit import AuditLog
from engine.risk.balance import check_balance
from engine.risk.circuit_breaker import BreakerState, CircuitBreaker
from engine.risk.daily_loss import check_daily_loss
from engine.risk.kill_switch import KillSwitch
from engine.risk.limits import ProductLimits, check_exposure, check_open_orders, check_order_size
from engine.risk.order_rate import OrderRateLimit
from engine.risk.price_band import check_price_band
from engine.risk.refusal import OrderRefused
from engine.risk.terms import OrderTerms
from engine.risk.view import RiskView


@dataclass(frozen=True)
class RiskConfig:
    """Every rule is off (None) unless configured; `products` overrides `default_limits` per product."""

    default_limits: ProductLimits = field(default_factory=ProductLimits)
    products: Mapping[str, ProductLimits] = field(default_factory=dict)
    max_open_orders: int | None = None  # across all products
    price_band: Decimal | None = None  # fraction of the touch, e.g. Decimal("0.05")
    max_orders: int | None = None  # order-rate cap: at most max_orders per rate_window seconds
    rate_window: float = 1.0
    rate_cooldown: float = 0.0  # refuse everything this long after the cap is hit
    breaker_failures: int | None = None  # trip after this many failures ...
    breaker_window: float = 10.0  # ... within this many seconds
    breaker_pause: float = 5.0  # stay open this long, then half-open
    daily_loss_limit: Decimal | None = None  # quote currency
    check_balance: bool = True
    fee_rate: Decimal = Decimal("0.006")  # allowance on buys for the balance rule

    def __post_init__(self) -> None:
        for name in ("price_band", "daily_loss_limit", "fee_rate"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, bounded_decimal(value, name, positive=name != "fee_rate"))

    def limits_for(self, product_id: str) -> ProductLimits:
        return self.products.get(product_id, self.default_limits)


class RiskGate:
    """Checks orders against a `RiskConfig` and a `RiskView`. The clock is injectable (seconds, monotonic)."""

    def __init__(
        self,
        config: RiskConfig,
        audit: AuditLog | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.audit = audit if audit is not None else AuditLog(None)
        self.clock = clock
        self.kill_switch = KillSwitch()
        self.order_rate = (
            OrderRateLimit(config.max_orders, config.rate_window, config.rate_cooldown)
            if config.max_orders is not None
            else None
        )
        self.breaker = (
            CircuitBreaker(config.breaker_failures, config.breaker_window, config.breaker_pause)
            if config.breaker_failures is not None
            else None
        )

    def check(self, order: OrderTerms, view: RiskView) -> None:
        """Pass the order or raise `OrderRefused`. Either way the decision is audited."""
        now = self.clock()
        try:
            self._check(order, view, now)
        except OrderRefused as refused:
            refused.product_id = order.product_id
            refused.client_order_id = order.client_order_id
            self.audit.record(
                "order_refused",
                rule=refused.rule.value,
                detail=refused.detail,
                client_order_id=order.client_order_id,
                product_id=order.product_id,
                side=order.side,
                base_size=order.base_size,
                quote_size=order.quote_size,
                limit_price=order.limit_price,
            )
            raise
        if self.order_rate is not None:
            self.order_rate.record(now)
        if self.breaker is not None:
            self.breaker.on_sent(now)
        self.audit.record(
            "order_passed",
            client_order_id=order.client_order_id,
            product_id=order.product_id,
            side=order.side,
            base_size=order.base_size,
            quote_size=order.quote_size,
            limit_price=order.limit_price,
        )

    def _check(self, order: OrderTerms, view: RiskView, now: float) -> None:
        config = self.config
        self.kill_switch.check()
        if self.breaker is not None:
            self.breaker.check(now)
        if self.order_rate is not None:
            self.order_rate.check(now)
        bid, ask = view.best_bid_ask(order.product_id)
        if config.daily_loss_limit is not None:
            check_daily_loss(order, config.daily_loss_limit, view, bid, ask)
        limits = config.limits_for(order.product_id)
        check_order_size(order, limits, bid, ask)
        if config.price_band is not None:
            check_price_band(order, config.price_band, bid, ask)
        check_open_orders(order, limits, config.max_open_orders, view)
        check_exposure(order, limits, view, bid, ask)
        if config.check_balance:
            check_balance(order, view, bid, ask, config.fee_rate)

    # -- outcomes the engine reports back --------------------------------------------------------------

    def record_success(self) -> None:
        if self.breaker is not None:
            self.breaker.record_success(self.clock())

    def record_failure(self, error: BaseException) -> None:
        if self.breaker is not None and self.breaker.record_failure(self.clock()):
            self.audit.record("circuit_breaker_tripped", error=type(error).__name__)

    def breaker_state(self) -> BreakerState | None:
        return None if self.breaker is None else self.breaker.state(self.clock())

    def engage_kill_switch(self, reason: str) -> None:
        self.kill_switch.engage(reason)
        self.audit.record("kill_switch_engaged", reason=reason)

    def reset_kill_switch(self) -> None:
        self.kill_switch.reset()
        self.audit.record("kill_switch_reset")
