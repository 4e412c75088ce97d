from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from engine.clock import ManualClock
from engine.errors import InvalidValue
from engine.risk import (
    AuditLog,
    BreakerState,
    OrderRefused,
    OrderTerms,
    ProductLimits,
    RiskConfig,
    RiskGate,
    RiskRule,
)
from engine.venues.advanced.orders import (
    LimitGtc,
    MarketIoc,
    OrderRequest,
    ScaledLimitGtc,
    Side,
    StopDirection,
    StopLimitGtc,
)
from tests.risk.view import AccountView
from tests.support.hostile_values import HOSTILE_DECIMALS

D = Decimal
_ids = iter(range(1_000_000))


def limit(side: str = "BUY", size: str = "1", price: str = "100", product_id: str = "BTC-USD") -> OrderTerms:
    request = OrderRequest(
        client_order_id=f"t-0-{next(_ids)}",
        product_id=product_id,
        side=Side(side),
        configuration=LimitGtc(base_size=size, limit_price=price),
    )
    return OrderTerms.of(request)


def market(side: str = "BUY", *, size: str | None = None, quote: str | None = None) -> OrderTerms:
    request = OrderRequest(
        client_order_id=f"t-0-{next(_ids)}",
        product_id="BTC-USD",
        side=Side(side),
        configuration=MarketIoc(base_size=size, quote_size=quote),
    )
    return OrderTerms.of(request)


def refused_rule(gate: RiskGate, order: OrderTerms, view: AccountView) -> RiskRule | None:
    refused: OrderRefused | None = None
    try:
        gate.check(order, view)
    except OrderRefused as exc:
        refused = exc
    if refused is None:
        return None
    assert refused.client_order_id == order.client_order_id
    assert refused.product_id == order.product_id
    return refused.rule


def test_no_rules_configured_passes_everything_but_unfunded_orders() -> None:
    gate, view = RiskGate(RiskConfig()), AccountView()
    assert refused_rule(gate, limit(size="100", price="100"), view) is None
    assert refused_rule(gate, limit(size="100000", price="100"), view) is RiskRule.BALANCE


def test_max_order_size_and_notional_per_product() -> None:
    config = RiskConfig(
        default_limits=ProductLimits(max_order_size=D("2"), max_order_notional=D("150")),
        products={"ETH-USD": ProductLimits(max_order_size=D("10"))},
    )
    gate, view = RiskGate(config), AccountView()
    assert refused_rule(gate, limit(size="1", price="100"), view) is None
    assert refused_rule(gate, limit(size="3", price="1"), view) is RiskRule.ORDER_SIZE
    assert refused_rule(gate, limit(size="1.6", price="100"), view) is RiskRule.ORDER_NOTIONAL
    assert refused_rule(gate, limit(size="1.5", price="100"), view) is None  # exactly at the cap
    # market orders are valued at the touch they take: buys at the ask, sells at the bid
    assert refused_rule(gate, market(size="1.49"), view) is RiskRule.ORDER_NOTIONAL  # 1.49 x 101
    assert refused_rule(gate, market("SELL", size="1.5"), view) is None  # 1.5 x 100
    assert refused_rule(gate, market(quote="151"), view) is RiskRule.ORDER_NOTIONAL
    # the per-product override replaces the default
    assert refused_rule(gate, limit(size="9", price="100", product_id="ETH-USD"), AccountView()) is None
    view.bid = view.ask = None
    assert refused_rule(gate, market(size="1"), view) is RiskRule.NO_MARKET


def test_max_position_and_allocation_allow_reducing_orders() -> None:
    config = RiskConfig(default_limits=ProductLimits(max_position=D("5"), max_allocation=D("400")))
    gate = RiskGate(config)
    view = AccountView(positions={"BTC-USD": D("3")})
    assert refused_rule(gate, limit(size="1", price="100"), view) is None  # 4 x 100 = 400
    assert refused_rule(gate, limit(size="1.01", price="100"), view) is RiskRule.ALLOCATION
    assert refused_rule(gate, limit(size="2.5", price="10"), view) is RiskRule.POSITION
    view.positions["BTC-USD"] = D("7")  # already over both caps
    assert refused_rule(gate, limit("SELL", size="3", price="100"), view) is None  # reduces
    assert refused_rule(gate, limit("SELL", size="15", price="100"), view) is RiskRule.POSITION  # flips to -8
    view.positions["BTC-USD"] = D("-3")
    assert refused_rule(gate, limit("SELL", size="1.01", price="100"), view) is RiskRule.ALLOCATION


def test_sufficient_balance_counts_holds_and_fees() -> None:
    config = RiskConfig(fee_rate=D("0.01"))
    gate = RiskGate(config)
    view = AccountView(balances={"USD": D("101"), "BTC": D("0.5")})  # available: holds already subtracted
    assert refused_rule(gate, limit(size="1", price="100"), view) is None  # 100 + 1% fee
    assert refused_rule(gate, limit(size="1", price="100.01"), view) is RiskRule.BALANCE
    assert refused_rule(gate, limit("SELL", size="0.5", price="100"), view) is None
    assert refused_rule(gate, limit("SELL", size="0.51", price="100"), view) is RiskRule.BALANCE
    assert refused_rule(gate, limit(product_id="DOGE-EUR"), view) is RiskRule.BALANCE  # unknown currency
    # futures are margined: the exchange checks buying power
    assert refused_rule(gate, limit(size="1000", product_id="BIT-28JUN24-CDE"), view) is None
    assert refused_rule(RiskGate(RiskConfig(check_balance=False)), limit(size="1000"), view) is None


def test_max_open_orders_per_product_and_total() -> None:
    config = RiskConfig(default_limits=ProductLimits(max_open_orders=2), max_open_orders=3)
    gate = RiskGate(config)
    view = AccountView(open_orders={"BTC-USD": 1, "ETH-USD": 1})
    assert refused_rule(gate, limit(), view) is None
    view.open_orders["BTC-USD"] = 2
    assert refused_rule(gate, limit(), view) is RiskRule.OPEN_ORDERS
    view.open_orders = {"BTC-USD": 1, "ETH-USD": 2}
    assert refused_rule(gate, limit(), view) is RiskRule.OPEN_ORDERS


def test_price_band_around_the_touch() -> None:
    gate, view = RiskGate(RiskConfig(price_band=D("0.05"))), AccountView(bid=D("100"), ask=D("101"))
    assert refused_rule(gate, limit(price="106.05"), view) is None  # ask x 1.05
    assert refused_rule(gate, limit(price="106.06"), view) is RiskRule.PRICE_BAND
    assert refused_rule(gate, limit("SELL", price="95"), view) is None  # bid x 0.95
    assert refused_rule(gate, limit("SELL", price="94.99"), view) is RiskRule.PRICE_BAND
    assert refused_rule(gate, limit(price="10"), view) is RiskRule.PRICE_BAND  # off by a factor of ten
    assert refused_rule(gate, market(size="1"), view) is None
    view.ask = None
    assert refused_rule(gate, limit(price="100"), view) is RiskRule.NO_MARKET


def test_order_rate_cap_then_cooldown() -> None:
    clock = ManualClock()
    gate, view = (
        RiskGate(RiskConfig(max_orders=3, rate_window=1.0, rate_cooldown=5.0), clock=clock),
        AccountView(),
    )
    for _ in range(3):
        assert refused_rule(gate, limit(), view) is None
        clock.advance(0.1)
    assert refused_rule(gate, limit(), view) is RiskRule.ORDER_RATE
    clock.advance(1.0)  # the window has passed, but the cooldown runs
    assert refused_rule(gate, limit(), view) is RiskRule.COOLDOWN
    clock.advance(4.0)
    assert refused_rule(gate, limit(), view) is None


def test_refused_orders_do_not_use_rate_budget() -> None:
    clock = ManualClock()
    config = RiskConfig(max_orders=2, default_limits=ProductLimits(max_order_size=D("1")))
    gate, view = RiskGate(config, clock=clock), AccountView()
    for _ in range(5):
        assert refused_rule(gate, limit(size="2"), view) is RiskRule.ORDER_SIZE
    assert refused_rule(gate, limit(), view) is None
    assert refused_rule(gate, limit(), view) is None
    assert refused_rule(gate, limit(), view) is RiskRule.ORDER_RATE


def test_circuit_breaker_trips_half_opens_and_closes() -> None:
    clock = ManualClock()
    config = RiskConfig(breaker_failures=3, breaker_window=10.0, breaker_pause=5.0)
    gate, view = RiskGate(config, clock=clock), AccountView()
    error = TimeoutError("simulated")
    gate.record_failure(error)
    clock.advance(11)  # the first failure leaves the window
    gate.record_failure(error)
    gate.record_failure(error)
    assert gate.breaker_state() is BreakerState.CLOSED
    assert refused_rule(gate, limit(), view) is None
    gate.record_failure(error)
    assert gate.breaker_state() is BreakerState.OPEN
    assert refused_rule(gate, limit(), view) is RiskRule.CIRCUIT_BREAKER
    clock.advance(5)
    assert gate.breaker_state() is BreakerState.HALF_OPEN
    assert refused_rule(gate, limit(), view) is None  # the probe
    assert refused_rule(gate, limit(), view) is RiskRule.CIRCUIT_BREAKER  # one probe at a time
    gate.record_failure(error)  # the probe failed: open again
    assert gate.breaker_state() is BreakerState.OPEN
    clock.advance(5)
    assert refused_rule(gate, limit(), view) is None
    gate.record_success()
    assert gate.breaker_state() is BreakerState.CLOSED
    assert refused_rule(gate, limit(), view) is None
    assert refused_rule(gate, limit(), view) is None


def test_daily_loss_limit_lets_only_reducing_orders_through() -> None:
    gate = RiskGate(RiskConfig(daily_loss_limit=D("500")))
    view = AccountView(pnl=D("-499.99"), positions={"BTC-USD": D("2")})
    assert refused_rule(gate, limit(), view) is None
    view.pnl = D("-500")
    assert refused_rule(gate, limit(), view) is RiskRule.DAILY_LOSS
    assert refused_rule(gate, limit("SELL", size="2"), view) is None  # closes the long
    assert refused_rule(gate, limit("SELL", size="2.1"), view) is RiskRule.DAILY_LOSS  # would go short
    view.positions["BTC-USD"] = D("-1")
    assert refused_rule(gate, limit("BUY", size="1"), view) is None


def test_kill_switch_refuses_everything_until_reset() -> None:
    gate, view = RiskGate(RiskConfig()), AccountView()
    gate.engage_kill_switch("operator pressed the button")
    assert refused_rule(gate, limit(), view) is RiskRule.KILL_SWITCH
    assert refused_rule(gate, limit("SELL"), view) is RiskRule.KILL_SWITCH
    gate.reset_kill_switch()
    assert refused_rule(gate, limit(), view) is None


def test_every_decision_is_audited_as_json_lines() -> None:
    stream = io.BytesIO()
    audit = AuditLog(stream)
    gate, view = (
        RiskGate(RiskConfig(default_limits=ProductLimits(max_order_size=D("1"))), audit),
        AccountView(),
    )
    passed, too_big = limit(), limit(size="2")
    gate.check(passed, view)
    with pytest.raises(OrderRefused) as refused:
        gate.check(too_big, view)
    assert refused.value.rule is RiskRule.ORDER_SIZE
    assert "order_size" in str(refused.value)
    gate.engage_kill_switch("test")
    assert stream.getvalue() == b""  # buffered until flushed: the order path never waits on the disk
    audit.flush()
    records = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["order_passed", "order_refused", "kill_switch_engaged"]
    assert records[0]["client_order_id"] == passed.client_order_id
    assert records[0]["limit_price"] == "100"
    assert records[1]["rule"] == "order_size"
    assert records[1]["client_order_id"] == too_big.client_order_id
    assert all(isinstance(r["ts"], float) for r in records)


def test_audit_log_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path)
    audit.record("order_passed", client_order_id="a")
    audit.close()
    audit = AuditLog(path)  # appends
    audit.record("order_passed", client_order_id="b")
    audit.close()
    assert [orjson.loads(line)["client_order_id"] for line in path.read_bytes().splitlines()] == ["a", "b"]


def test_terms_are_read_from_every_configuration_shape() -> None:
    stop = OrderTerms.of(
        OrderRequest(
            product_id="BTC-USD",
            side=Side.SELL,
            configuration=StopLimitGtc(
                base_size="2", limit_price="95", stop_price="96", stop_direction=StopDirection.DOWN
            ),
        )
    )
    assert (stop.base_size, stop.limit_price, stop.prices) == (D("2"), D("95"), (D("95"), D("96")))
    ladder = OrderTerms.of(
        OrderRequest(
            product_id="BTC-USD",
            side=Side.BUY,
            configuration=ScaledLimitGtc(base_size="3", min_price="90", max_price="99", num_orders=3),
        )
    )
    assert (ladder.base_size, ladder.limit_price) == (D("3"), D("99"))  # valued at its dearest rung
    gate, view = RiskGate(RiskConfig(price_band=D("0.05"))), AccountView(bid=D("100"), ask=D("101"))
    assert refused_rule(gate, stop, view) is None
    assert refused_rule(gate, ladder, view) is RiskRule.PRICE_BAND  # 90 < 100 x 0.95


# -- hostile values: caps are bounded like every decimal, and nothing unbounded reaches the audit log


@pytest.mark.parametrize(("text", "reason"), HOSTILE_DECIMALS, ids=[t[:24] for t, _ in HOSTILE_DECIMALS])
def test_hostile_caps_are_refused_naming_the_cap(text: str, reason: str) -> None:
    for name in ("max_order_size", "max_order_notional", "max_position", "max_allocation"):
        with pytest.raises(InvalidValue, match=reason) as caught:
            ProductLimits(**{name: text})  # type: ignore[arg-type]
        assert caught.value.field == name
    for name in ("price_band", "daily_loss_limit"):
        with pytest.raises(InvalidValue, match=reason) as caught:
            RiskConfig(**{name: text})  # type: ignore[arg-type]
        assert caught.value.field == name


@pytest.mark.parametrize("value", [D("NaN"), D("sNaN"), D("Infinity"), D("1E+999999"), D("-1")])
def test_hostile_decimal_objects_as_caps_are_refused(value: Decimal) -> None:
    with pytest.raises(InvalidValue, match="max_order_size"):
        ProductLimits(max_order_size=value)
    if value.is_finite() and value < 0:
        assert RiskConfig(fee_rate=value).fee_rate == value  # a rebate: allowed
        return
    with pytest.raises(InvalidValue, match="fee_rate"):
        RiskConfig(fee_rate=value)


def test_a_zero_fee_rate_is_a_fee_rate() -> None:
    assert RiskConfig(fee_rate=D(0)).fee_rate == 0


@pytest.mark.parametrize(
    ("size", "price"),
    [("999999999999999", "999999999999999"), ("1E-18", "999999999999999"), ("999999999999999", "1E-18"),
     ("123456789012345.1234567890123", "999999999999999.999999999999"), ("1E+14", "1E+14")],
)  # fmt: skip
def test_refusals_of_the_largest_orders_stay_short_in_the_audit_log(size: str, price: str) -> None:
    stream = io.BytesIO()
    audit = AuditLog(stream)
    limits = ProductLimits(
        max_order_size=D("1E-18"), max_order_notional=D("1E-18"), max_allocation=D("1E-18")
    )
    gate = RiskGate(RiskConfig(default_limits=limits, price_band=D("0.05")), audit)
    for order in (limit(size=size, price=price), market(size=size), market(quote=price)):
        with pytest.raises(OrderRefused) as refused:
            gate.check(order, AccountView(bid=D(price), ask=D(price)))
        assert len(str(refused.value)) < 200, str(refused.value)
    audit.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert all(len(line) < 600 for line in lines), max(lines, key=len)[:300]
