"""The risk gate: every rule, checked before every order, each decision audited.

Rules run cheapest and most absolute first (kill switch, breaker, daily loss, rate), then the ones that need
the market and the account. The order-rate count and the breaker's probe are only taken once every rule
has passed, so a refused order never uses up rate budget.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

from engine.clock import SYSTEM_CLOCK, Clock
from engine.decimals import bounded_decimal
from engine.errors import InvalidValue
from engine.risk.audit import AuditLog
from engine.risk.balance import check_balance
from engine.risk.circuit_breaker import BreakerState, CircuitBreaker
from engine.risk.daily_loss import check_daily_loss
from engine.risk.exposure import exposure
from engine.risk.kill_switch import KillSwitch
from engine.risk.leverage import check_leverage
from engine.risk.limits import ProductLimits, check_exposure, check_open_orders, check_order_size
from engine.risk.liquidation import check_liquidation_distance
from engine.risk.margin_usage import check_margin_usage
from engine.risk.order_rate import OrderRateLimit
from engine.risk.price_band import check_price_band
from engine.risk.reduce_only import check_reduce_only
from engine.risk.refusal import OrderRefused
from engine.risk.terms import OrderTerms
from engine.risk.view import RiskView

# Bounds shared by the Python API and the worker's TOML: a timer or a count past these is no setting at all.
_Seconds = Annotated[float, msgspec.Meta(gt=0, le=1e9)]
_Cooldown = Annotated[float, msgspec.Meta(ge=0, le=1e9)]
_Count = Annotated[int, msgspec.Meta(ge=1, le=2**31)]
_ProductId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[A-Z0-9][A-Z0-9_]{0,23}(?:-[A-Z0-9]{1,24}){1,3}$",
        description="must be a product id such as BTC-USD or BTC_USDC-PERPETUAL",
    ),
]


class RiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Every rule is off (None) unless configured; `products` overrides `default_limits` per product.

    One configuration for the embedded `Engine` and the worker, whose `[risk]` table decodes straight into
    it: the names after `name=` are the TOML keys, and the default caps sit inline in `[risk]` (the worker's
    config moves them into `default_limits`). The worker's one different default: its circuit breaker is on.
    """

    default_limits: ProductLimits = msgspec.field(default_factory=ProductLimits)
    products: dict[_ProductId, ProductLimits] = msgspec.field(default_factory=dict, name="product")
    max_open_orders: _Count | None = msgspec.field(default=None, name="max_open_orders_total")  # all products
    price_band: Decimal | None = None  # fraction of the touch, e.g. Decimal("0.05")
    # order-rate cap: at most max_orders per rate_window seconds
    max_orders: _Count | None = msgspec.field(default=None, name="max_orders_per_window")
    rate_window: _Seconds = msgspec.field(default=1.0, name="order_window_s")
    # refuse everything this long after the cap is hit
    rate_cooldown: _Cooldown = msgspec.field(default=0.0, name="order_cooldown_s")
    # the circuit breaker trips after breaker_failures failures within breaker_window seconds, then stays
    # open breaker_pause seconds before it lets one order probe (half-open)
    breaker_failures: _Count | None = None
    breaker_window: _Seconds = msgspec.field(default=30.0, name="breaker_window_s")
    breaker_pause: _Seconds = msgspec.field(default=30.0, name="breaker_pause_s")
    daily_loss_limit: Decimal | None = None  # quote currency
    check_balance: bool = True
    fee_rate: Decimal = Decimal("0.006")  # allowance on buys for the balance rule
    # the products a worker may trade; empty: only those in `products`, or any when that is empty too
    allowed_products: tuple[_ProductId, ...] = msgspec.field(default=(), name="products")
    # margined products (perpetuals); each is off unless set, and spot orders never meet them.
    # initial margin (the account's plus the order's) over equity, e.g. Decimal("0.5")
    max_margin_usage: Decimal | None = None
    # the estimated liquidation price at least this fraction of the mark away, e.g. Decimal("0.2")
    min_liquidation_distance: Decimal | None = None
    # an order against the position must be reduce-only; a reduce-only one must not open or flip
    enforce_reduce_only: bool = False

    def __post_init__(self) -> None:
        for name in ("max_margin_usage", "min_liquidation_distance"):
            value = getattr(self, name)
            if value is not None:
                bounded = bounded_decimal(value, name)
                if bounded > 1:
                    raise InvalidValue(name, "a fraction, e.g. 0.5 for 50%")
                msgspec.structs.force_setattr(self, name, bounded)
        for name in ("price_band", "daily_loss_limit", "fee_rate"):
            value = getattr(self, name)
            if value is not None:
                bounded = bounded_decimal(value, name, positive=name != "fee_rate")
                msgspec.structs.force_setattr(self, name, bounded)
        if self.price_band is not None and self.price_band >= 1:
            raise InvalidValue("price_band", "a fraction of the price, e.g. 0.05 for 5%")

    def limits_for(self, product_id: str) -> ProductLimits:
        return self.products.get(product_id, self.default_limits)

    def allows_product(self, product_id: str) -> bool:
        allowed = self.allowed_products or tuple(self.products)
        return not allowed or product_id in allowed


class RiskGate:
    """Checks orders against a `RiskConfig` and a `RiskView`. The order rate, its cooldown and the circuit
    breaker run on `clock`'s monotonic time (the daily loss limit's day is the view's: the portfolio's)."""

    def __init__(
        self,
        config: RiskConfig,
        audit: AuditLog | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.audit = audit if audit is not None else AuditLog(None, clock=clock)
        self.clock = clock
        self._monotonic = clock.monotonic  # read for every order: one attribute lookup
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
        now = self._monotonic()
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
            mark = view.mark_price(order.product_id)
            if mark is not None:  # a margined product: the band is around the venue's mark
                check_price_band(order, config.price_band, mark, mark)
            else:
                check_price_band(order, config.price_band, bid, ask)
        check_open_orders(order, limits, config.max_open_orders, view)
        check_exposure(order, limits, view, bid, ask)
        if view.currencies(order.product_id) is None:  # margined: futures, perpetuals
            self._check_margined(order, view, bid, ask, limits)
        if config.check_balance:
            check_balance(order, view, bid, ask, config.fee_rate)

    def _check_margined(
        self,
        order: OrderTerms,
        view: RiskView,
        bid: Decimal | None,
        ask: Decimal | None,
        limits: ProductLimits,
    ) -> None:
        """The rules of a margined product (futures, perpetuals)."""
        config = self.config
        if (
            limits.max_leverage is None
            and config.max_margin_usage is None
            and config.min_liquidation_distance is None
            and not config.enforce_reduce_only
        ):
            return
        margin = view.margin(order.product_id)
        after = exposure(order, view, bid, ask)
        if config.enforce_reduce_only:
            check_reduce_only(order, after)
        if limits.max_leverage is not None:
            check_leverage(order, limits.max_leverage, margin, after)
        if config.max_margin_usage is not None:
            check_margin_usage(order, config.max_margin_usage, margin, after)
        if config.min_liquidation_distance is not None:
            check_liquidation_distance(order, config.min_liquidation_distance, margin, after)

    # -- outcomes the engine reports back --------------------------------------------------------------

    def record_success(self) -> None:
        if self.breaker is not None:
            self.breaker.record_success(self._monotonic())

    def record_failure(self, error: BaseException) -> None:
        if self.breaker is not None and self.breaker.record_failure(self._monotonic()):
            self.audit.record("circuit_breaker_tripped", error=type(error).__name__)

    def breaker_state(self) -> BreakerState | None:
        return None if self.breaker is None else self.breaker.state(self._monotonic())

    def engage_kill_switch(self, reason: str) -> None:
        self.kill_switch.engage(reason)
        self.audit.record("kill_switch_engaged", reason=reason)

    def reset_kill_switch(self) -> None:
        self.kill_switch.reset()
        self.audit.record("kill_switch_reset")
