"""Order configurations render exactly Coinbase's shapes; floats and malformed values never get through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from engine.errors import InvalidValue
from engine.venues.advanced.orders import (
    LimitFok,
    LimitGtc,
    LimitGtd,
    MarginType,
    MarketFok,
    MarketIoc,
    OrderRequest,
    PriceDistribution,
    ScaledLimitGtc,
    Side,
    SorLimitIoc,
    StopDirection,
    StopLimitGtc,
    StopLimitGtd,
    TriggerBracketGtc,
    TriggerBracketGtd,
    TwapLimitGtd,
    decimal_str,
)
from tests.support.hostile_values import EDGE_DECIMALS, EDGE_TIMES, HOSTILE_DECIMALS, OFF_CALENDAR_TIMES

END = datetime(2030, 5, 31, 9, 59, 59, tzinfo=UTC)
END_S = "2030-05-31T09:59:59.000Z"


@pytest.mark.parametrize(
    ("configuration", "expected"),
    [
        (MarketIoc(quote_size="10.00"), {"market_market_ioc": {"quote_size": "10.00"}}),
        (MarketFok(base_size=Decimal("0.001")), {"market_market_fok": {"base_size": "0.001"}}),
        (
            SorLimitIoc(base_size="0.5", limit_price=Decimal("100.25")),
            {"sor_limit_ioc": {"base_size": "0.5", "limit_price": "100.25"}},
        ),
        (
            LimitGtc(base_size="0.001", limit_price="10000.00", post_only=True),
            {"limit_limit_gtc": {"base_size": "0.001", "limit_price": "10000.00", "post_only": True}},
        ),
        (
            LimitGtd(quote_size=25, limit_price="10000", end_time=END),
            {
                "limit_limit_gtd": {
                    "quote_size": "25",
                    "limit_price": "10000",
                    "end_time": END_S,
                    "post_only": False,
                }
            },
        ),
        (
            LimitFok(base_size="1", limit_price="2"),
            {"limit_limit_fok": {"base_size": "1", "limit_price": "2"}},
        ),
        (
            StopLimitGtc(base_size="1", limit_price="90", stop_price="95", stop_direction=StopDirection.DOWN),
            {
                "stop_limit_stop_limit_gtc": {
                    "base_size": "1",
                    "limit_price": "90",
                    "stop_price": "95",
                    "stop_direction": "STOP_DIRECTION_STOP_DOWN",
                }
            },
        ),
        (
            StopLimitGtd(
                base_size="1",
                limit_price="110",
                stop_price="105",
                stop_direction=StopDirection.UP,
                end_time=END_S,
            ),
            {
                "stop_limit_stop_limit_gtd": {
                    "base_size": "1",
                    "limit_price": "110",
                    "stop_price": "105",
                    "end_time": END_S,
                    "stop_direction": "STOP_DIRECTION_STOP_UP",
                }
            },
        ),
        (
            TriggerBracketGtc(base_size="1", limit_price="120", stop_trigger_price="80"),
            {"trigger_bracket_gtc": {"base_size": "1", "limit_price": "120", "stop_trigger_price": "80"}},
        ),
        (
            TriggerBracketGtd(base_size="1", limit_price="120", stop_trigger_price="80", end_time=END),
            {
                "trigger_bracket_gtd": {
                    "base_size": "1",
                    "limit_price": "120",
                    "stop_trigger_price": "80",
                    "end_time": END_S,
                }
            },
        ),
        (
            TwapLimitGtd(
                base_size="10",
                limit_price="100",
                start_time=END - timedelta(hours=1),
                end_time=END,
                number_buckets=5,
                bucket_size="2",
                bucket_duration=timedelta(minutes=5),
            ),
            {
                "twap_limit_gtd": {
                    "base_size": "10",
                    "start_time": "2030-05-31T08:59:59.000Z",
                    "end_time": END_S,
                    "limit_price": "100",
                    "number_buckets": "5",
                    "bucket_size": "2",
                    "bucket_duration": "300s",
                }
            },
        ),
        (
            ScaledLimitGtc(
                base_size="3",
                min_price="90",
                max_price="110",
                num_orders=3,
                price_distribution=PriceDistribution.LINEAR_INCREASING,
            ),
            {
                "scaled_limit_gtc": {
                    "base_size": "3",
                    "num_orders": 3,
                    "min_price": "90",
                    "max_price": "110",
                    "price_distribution": "LINEAR_INCREASING",
                    "size_distribution": "FLAT",
                }
            },
        ),
    ],
)
def test_every_configuration_renders_coinbase_shape(
    configuration: object, expected: dict[str, object]
) -> None:
    assert configuration.payload() == expected  # type: ignore[attr-defined]


def test_float_is_refused_with_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match=r"not float .*Decimal\('0.1'\)"):
        LimitGtc(base_size=0.1, limit_price="1")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["abc", "-1", "0", "NaN", "Infinity"])
def test_non_positive_or_non_numeric_strings_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="limit_price"):
        LimitGtc(base_size="1", limit_price=bad)


def test_exponent_decimals_render_as_plain_digits() -> None:
    assert decimal_str(Decimal("1E-8"), "base_size") == "0.00000001"
    assert decimal_str(Decimal("1.5E+3"), "limit_price") == "1500"


def test_exactly_one_of_base_or_quote_size() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        MarketIoc()
    with pytest.raises(ValueError, match="exactly one"):
        MarketIoc(base_size="1", quote_size="1")


def test_naive_datetimes_are_refused_and_offsets_are_converted_to_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        LimitGtd(base_size="1", limit_price="1", end_time=datetime(2030, 1, 1))
    plus2 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert LimitGtd(base_size="1", limit_price="1", end_time=plus2).fragment()["end_time"] == (
        "2030-01-01T10:00:00.000Z"
    )


def test_scaled_order_checks_its_range_and_children() -> None:
    with pytest.raises(ValueError, match="below max_price"):
        ScaledLimitGtc(base_size="1", min_price="110", max_price="90", num_orders=3)
    ladder = ScaledLimitGtc(
        base_size="2", min_price="90", max_price="110", num_orders=2,
        orders=[LimitGtc(base_size="1", limit_price="90"), LimitGtc(base_size="1", limit_price="110")],
    )  # fmt: skip
    assert [o["limit_price"] for o in ladder.fragment()["orders"]] == ["90", "110"]


def test_order_request_renders_its_body_once_and_previews_without_the_id() -> None:
    order = OrderRequest(
        product_id="BIP-20DEC30-CDE",
        side=Side.BUY,
        configuration=LimitGtc(base_size="1", limit_price="60000"),
        leverage="2",
        margin_type=MarginType.CROSS,
    )
    body = orjson.loads(order.body)
    assert body == {
        "client_order_id": order.client_order_id,
        "product_id": "BIP-20DEC30-CDE",
        "side": "BUY",
        "order_configuration": {
            "limit_limit_gtc": {"base_size": "1", "limit_price": "60000", "post_only": False}
        },
        "leverage": "2",
        "margin_type": "CROSS",
    }
    assert order.body is order.body, "rendered once, at construction"
    assert "client_order_id" not in orjson.loads(order.preview_body())


def test_client_order_ids_are_fresh_per_order_and_bounded() -> None:
    config = MarketIoc(quote_size="5")
    a = OrderRequest(product_id="BTC-USD", side=Side.BUY, configuration=config)
    b = OrderRequest(product_id="BTC-USD", side=Side.BUY, configuration=config)
    assert a.client_order_id != b.client_order_id
    with pytest.raises(ValueError, match="client_order_id"):
        OrderRequest(product_id="BTC-USD", side=Side.BUY, configuration=config, client_order_id="x" * 129)


# -- hostile values: the builders bound decimals by value and exponent, and times by the calendar --------

_BUILDERS = [
    ("base_size", lambda v: MarketIoc(base_size=v)),
    ("quote_size", lambda v: MarketFok(quote_size=v)),
    ("limit_price", lambda v: LimitGtc(base_size="1", limit_price=v)),
    (
        "stop_price",
        lambda v: StopLimitGtc(base_size="1", limit_price="1", stop_price=v, stop_direction=StopDirection.UP),
    ),
    ("stop_trigger_price", lambda v: TriggerBracketGtc(base_size="1", limit_price="1", stop_trigger_price=v)),
    (
        "bucket_size",
        lambda v: TwapLimitGtd(
            limit_price="1",
            start_time=END,
            end_time=END,
            number_buckets=2,
            bucket_size=v,
            bucket_duration="60s",
            base_size="1",
        ),
    ),
    ("max_price", lambda v: ScaledLimitGtc(min_price="1", max_price=v, num_orders=2, base_size="1")),
]


@pytest.mark.parametrize(
    ("text", "reason"), HOSTILE_DECIMALS, ids=[t[:24] or "empty" for t, _ in HOSTILE_DECIMALS]
)
def test_hostile_decimals_are_refused_by_value_not_by_length(text: str, reason: str) -> None:
    for field, build in _BUILDERS:
        with pytest.raises(InvalidValue, match=reason) as caught:
            build(text)
        assert caught.value.field == field
        assert len(str(caught.value)) < 100  # the value is never echoed, however long it is
    with pytest.raises(InvalidValue, match=reason):
        OrderRequest(
            product_id="BTC-USD", side=Side.BUY, configuration=MarketIoc(base_size="1"), leverage=text
        )


@pytest.mark.parametrize(("text", "value"), EDGE_DECIMALS)
def test_edge_decimals_are_taken_and_render_short(text: str, value: str) -> None:
    rendered = decimal_str(text, "size")
    assert Decimal(rendered) == Decimal(value)
    assert len(rendered) <= 35
    assert "E" not in rendered.upper()


@pytest.mark.parametrize(
    "value", [Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("1E+999999"), 10**40]
)
def test_hostile_decimal_objects_and_ints_are_refused(value: object) -> None:
    with pytest.raises(InvalidValue, match="limit_price"):
        LimitGtc(base_size="1", limit_price=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("moment", OFF_CALENDAR_TIMES)
def test_end_times_off_the_calendar_in_utc_are_refused(moment: str) -> None:
    for value in (moment, datetime.fromisoformat(moment)):
        with pytest.raises(InvalidValue, match="outside the calendar") as caught:
            LimitGtd(base_size="1", limit_price="1", end_time=value)
        assert caught.value.field == "end_time"
        with pytest.raises(InvalidValue, match="end_time"):
            StopLimitGtd(
                base_size="1",
                limit_price="1",
                stop_price="1",
                stop_direction=StopDirection.UP,
                end_time=value,
            )
        with pytest.raises(InvalidValue, match="end_time"):
            TriggerBracketGtd(base_size="1", limit_price="1", stop_trigger_price="1", end_time=value)


@pytest.mark.parametrize("moment", EDGE_TIMES)
def test_end_times_at_the_edge_of_the_calendar_render(moment: str) -> None:
    rendered = LimitGtd(base_size="1", limit_price="1", end_time=moment).fragment()["end_time"]
    assert rendered.endswith("Z")
    parsed = datetime.fromisoformat(rendered)
    assert abs(parsed - datetime.fromisoformat(moment)) < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "text",
    ["", "tomorrow", "2030-13-01T00:00:00Z", "2030-01-01T25:00:00Z", "2030-01-01", "2030-01-01T00:00:00",
     "2030-01-01T00:00:00+99:00", "nan", "2030-01-01T00:00:00Z" + " " * 60,
     "\u0662\u0660\u0663\u0660-01-01T00:00:00Z"],
)  # fmt: skip
def test_malformed_or_naive_time_strings_are_refused(text: str) -> None:
    with pytest.raises(InvalidValue, match="end_time"):
        LimitGtd(base_size="1", limit_price="1", end_time=text)


@pytest.mark.parametrize(
    "duration",
    [
        "0s",
        "0.000s",
        "-1s",
        "1E+999999s",
        "s",
        "1.5",
        "nans",
        "1_000s",
        " 60s",
        "60 s",
        "1.0000000001s",
        "1" * 13 + "s",
    ],
)
def test_malformed_bucket_durations_are_refused(duration: str) -> None:
    with pytest.raises(InvalidValue, match="bucket_duration"):
        TwapLimitGtd(limit_price="1", start_time=END, end_time=END, number_buckets=2, bucket_size="1",
                     bucket_duration=duration, base_size="1")  # fmt: skip


def test_timedelta_durations_render_as_plain_seconds() -> None:
    def render(delta: timedelta) -> str:
        twap = TwapLimitGtd(limit_price="1", start_time=END, end_time=END, number_buckets=2, bucket_size="1",
                            bucket_duration=delta, base_size="1")  # fmt: skip
        return str(twap.fragment()["bucket_duration"])

    assert render(timedelta(minutes=5)) == "300s"
    assert render(timedelta(milliseconds=1500)) == "1.5s"
    assert render(timedelta(days=999_999)) == "86399913600s"  # not "8.64e+10s"
    with pytest.raises(InvalidValue, match="positive"):
        render(timedelta(0))
