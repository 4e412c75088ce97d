"""The rules of margined products (perpetuals), each both ways: max leverage per instrument, max margin usage,
reduce-only for closing orders, a minimum distance to the estimated liquidation price, the balance rule on
initial margin, and the price band around the mark. Spot orders never meet them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import InvalidValue
from engine.risk import OrderRefused, OrderTerms, ProductLimits, RiskConfig, RiskGate, RiskRule
from engine.risk.view import MarginSnapshot
from engine.venues.derivatives import PerpLimit, PerpMarket, PerpOrderRequest
from tests.risk.view import AccountView

D = Decimal
PERP = "BTC_USDC-PERPETUAL"
_ids = iter(range(1_000_000))


def perp(side: str, size: str, price: str | None = "100", *, reduce_only: bool = False) -> OrderTerms:
    configuration = (
        PerpLimit(size, price, reduce_only=reduce_only)
        if price is not None
        else PerpMarket(size, reduce_only=reduce_only)
    )
    return OrderTerms.of(PerpOrderRequest(f"t-0-{next(_ids)}", PERP, side, configuration))


def account(
    position: str = "0",
    *,
    equity: str = "1000",
    initial: str = "0",
    maintenance: str = "0",
    available: str | None = None,
    leverage: str = "10",
    maintenance_rate: str | None = None,
    mark: str = "100",
) -> AccountView:
    margin = MarginSnapshot(
        equity=D(equity),
        initial_margin=D(initial),
        maintenance_margin=D(maintenance),
        available_funds=D(available) if available is not None else D(equity),
        leverage=D(leverage),
        maintenance_rate=D(maintenance_rate) if maintenance_rate is not None else None,
    )
    return AccountView(
        bid=D("99.5"),
        ask=D("100.5"),
        positions={PERP: D(position)},
        marks={PERP: D(mark)},
        margins={PERP: margin},
    )


def rule(config: RiskConfig, order: OrderTerms, view: AccountView) -> RiskRule | None:
    try:
        RiskGate(config).check(order, view)
    except OrderRefused as refused:
        return refused.rule
    return None


def test_terms_read_reduce_only_and_sizes_from_a_perpetual_order() -> None:
    terms = perp("SELL", "0.5", "101", reduce_only=True)
    assert (terms.side, terms.base_size, terms.limit_price, terms.reduce_only) == (
        "SELL",
        D("0.5"),
        D("101"),
        True,
    )
    assert not perp("BUY", "1").reduce_only


def test_max_leverage_per_instrument_both_ways() -> None:
    config = RiskConfig(products={PERP: ProductLimits(max_leverage=D("5"))})
    # 40 at a mark of 100 over 1000 equity: 4x passes, 60 would be 6x
    assert rule(config, perp("BUY", "40"), account()) is None
    assert rule(config, perp("BUY", "60"), account()) is RiskRule.LEVERAGE
    # already over the cap: an order that shrinks the position passes, one that adds is refused
    assert rule(config, perp("SELL", "10"), account("70")) is None
    assert rule(config, perp("BUY", "1"), account("70")) is RiskRule.LEVERAGE
    # short side too
    assert rule(config, perp("SELL", "60"), account()) is RiskRule.LEVERAGE
    # another instrument has no cap
    assert rule(RiskConfig(products={"ETH_USDC-PERPETUAL": ProductLimits(max_leverage=D("1"))}),
                perp("BUY", "60"), account()) is None  # fmt: skip


def test_max_margin_usage_both_ways() -> None:
    config = RiskConfig(max_margin_usage=D("0.5"))
    # 300 used of 1000; 10 at 100 with 10x adds 100 -> 0.4
    assert rule(config, perp("BUY", "10"), account(initial="300")) is None
    # 30 adds 300 -> 0.6
    assert rule(config, perp("BUY", "30"), account(initial="300")) is RiskRule.MARGIN_USAGE
    # reducing never adds margin
    assert rule(config, perp("SELL", "30", reduce_only=True), account("40", initial="600")) is None


def test_margin_rules_fail_closed_without_the_venues_margin() -> None:
    view = account()
    view.margins.clear()
    assert rule(RiskConfig(max_margin_usage=D("0.5")), perp("BUY", "1"), view) is RiskRule.NO_MARGIN
    assert rule(RiskConfig(min_liquidation_distance=D("0.1")), perp("BUY", "1"), view) is RiskRule.NO_MARGIN
    limits = ProductLimits(max_leverage=D("5"))
    assert rule(RiskConfig(default_limits=limits), perp("BUY", "1"), view) is RiskRule.NO_MARGIN


def test_reduce_only_enforced_for_closing_orders_both_ways() -> None:
    config = RiskConfig(enforce_reduce_only=True)
    long = account("2")
    assert rule(config, perp("SELL", "1", reduce_only=True), long) is None
    assert rule(config, perp("SELL", "2", None, reduce_only=True), long) is None
    assert rule(config, perp("SELL", "1"), long) is RiskRule.REDUCE_ONLY  # a close without the flag
    assert rule(config, perp("SELL", "3", reduce_only=True), long) is RiskRule.REDUCE_ONLY  # would flip
    assert rule(config, perp("BUY", "1", reduce_only=True), long) is RiskRule.REDUCE_ONLY  # would add
    assert rule(config, perp("BUY", "1", reduce_only=True), account()) is RiskRule.REDUCE_ONLY  # flat
    assert rule(config, perp("BUY", "1"), long) is None  # adding is not closing
    # off by default: a plain close passes
    assert rule(RiskConfig(), perp("SELL", "1"), long) is None


def test_minimum_distance_to_the_estimated_liquidation_price_both_ways() -> None:
    config = RiskConfig(min_liquidation_distance=D("0.2"))
    # 1000 equity, maintenance 1% of notional: 50 long at 100 -> cushion 1000-50 = 950 over 50 = 19 -> 0.19
    view = account(maintenance_rate="0.01")
    assert rule(config, perp("BUY", "40"), view) is None  # cushion 960 / 40 = 24 -> 0.24
    assert rule(config, perp("BUY", "50"), view) is RiskRule.LIQUIDATION_DISTANCE
    # an existing position's maintenance margin counts
    assert rule(config, perp("BUY", "10"), account("30", maintenance="400", maintenance_rate="0.01")) is (
        RiskRule.LIQUIDATION_DISTANCE
    )  # cushion 1000-410 = 590 over 40 = 14.75 -> 0.1475
    # without a position to read the rate from: half the initial rate (1/(2*leverage) = 5%)
    assert rule(config, perp("BUY", "30"), account()) is None  # cushion 1000-150 = 850 / 30 -> 0.28
    assert rule(config, perp("BUY", "45"), account()) is RiskRule.LIQUIDATION_DISTANCE  # 775/45 -> 0.17
    # a short is estimated the same way
    assert rule(config, perp("SELL", "50"), view) is RiskRule.LIQUIDATION_DISTANCE
    # reducing always passes
    assert rule(config, perp("SELL", "10"), account("60", maintenance="900", maintenance_rate="0.01")) is None


def test_the_balance_rule_checks_initial_margin_against_available_funds() -> None:
    config = RiskConfig()  # check_balance is on by default
    assert rule(config, perp("BUY", "10"), account(available="100")) is None  # 10*100/10 = 100
    assert rule(config, perp("BUY", "11"), account(available="100")) is RiskRule.BALANCE
    assert rule(config, perp("SELL", "11", reduce_only=True), account("20", available="0")) is None


def test_the_price_band_is_around_the_mark_for_a_perpetual() -> None:
    config = RiskConfig(price_band=D("0.02"), check_balance=False)
    view = account(mark="200")  # the touch says 99.5 / 100.5; the mark says 200
    assert rule(config, perp("BUY", "1", "197"), view) is None
    assert rule(config, perp("BUY", "1", "100"), view) is RiskRule.PRICE_BAND
    assert rule(config, perp("SELL", "1", "205"), view) is RiskRule.PRICE_BAND


def test_margin_rules_leave_spot_orders_alone() -> None:
    config = RiskConfig(
        default_limits=ProductLimits(max_leverage=D("1")),
        max_margin_usage=D("0.01"),
        min_liquidation_distance=D("0.9"),
        enforce_reduce_only=True,
    )
    terms = OrderTerms("t-1", "BTC-USD", "SELL", D("1"), None, D("100"), (D("100"),))
    assert rule(config, terms, AccountView(positions={"BTC-USD": D("5")})) is None


@pytest.mark.parametrize("name", ["max_margin_usage", "min_liquidation_distance"])
def test_margin_fractions_are_bounded(name: str) -> None:
    with pytest.raises(InvalidValue, match=name):
        RiskConfig(**{name: D("1.5")})
    with pytest.raises(InvalidValue, match=name):
        RiskConfig(**{name: D("0")})


def test_perpetual_names_are_product_ids_in_the_config() -> None:
    import msgspec

    config = msgspec.convert(
        {"product": {PERP: {"max_leverage": "3"}}, "max_margin_usage": "0.5"}, RiskConfig, strict=False
    )
    assert config.limits_for(PERP).max_leverage == D("3")
    assert config.max_margin_usage == D("0.5")
