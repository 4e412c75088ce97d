"""The simulator's value parser (engine/sim/values.py): what it takes, what it refuses, and that a refusal
names the field but never repeats the value."""

from __future__ import annotations

import math
from decimal import Decimal as D
from typing import Any

import pytest

from engine.sim.config import SimConfig
from engine.sim.faults import Faults
from engine.sim.values import (
    InvalidValue,
    parse_decimal,
    parse_int,
    parse_number,
    parse_seconds,
    parse_time,
)

TAKEN: list[tuple[Any, D]] = [
    ("1", D("1")),
    ("0.00000001", D("0.00000001")),
    ("60000.25", D("60000.25")),
    ("1e-8", D("1e-8")),
    ("1E3", D("1000")),
    ("+5", D("5")),
    (".5", D("0.5")),
    ("5.", D("5")),
    ("123.450000000000000000000000", D("123.45")),  # trailing zeros are no precision
    ("999999999999999.9", D("999999999999999.9")),
    ("0.000000000000000001", D("1e-18")),
    (42, D(42)),
]
REFUSED: list[Any] = [
    "1E+999999",
    "1e15",
    "1000000000000000",
    "1e-19",
    "0.0000000000000000001",
    "NaN",
    "-nan",
    "sNaN",
    "Infinity",
    "inf",
    "1_000",
    " 1",
    "1 ",
    "\u0661",
    "\uff11",  # FULLWIDTH DIGIT ONE
    "0x10",
    "1e",
    "e5",
    ".",
    "",
    "1,5",
    "1" * 65,
    "0",
    "-0",
    "-1",
    1.5,
    True,
    None,
    [],
    {},
    10**15,
    -(10**400),
]


@pytest.mark.parametrize(("raw", "value"), TAKEN)
def test_a_decimal_in_range_is_taken_exactly(raw: Any, value: D) -> None:
    assert parse_decimal(raw, "price") == value


@pytest.mark.parametrize("raw", REFUSED, ids=lambda raw: repr(raw)[:30])
def test_a_decimal_out_of_grammar_or_range_is_refused_naming_the_field_only(raw: Any) -> None:
    with pytest.raises(InvalidValue) as refused:
        parse_decimal(raw, "limit_price")
    assert str(refused.value).startswith("limit_price ")
    assert refused.value.status == 400
    text = str(raw)
    if len(text) > 3:
        assert text not in str(refused.value)


def test_zero_and_negative_are_taken_only_when_asked_and_minus_zero_is_zero() -> None:
    assert parse_decimal("-5.5", "offset", positive=False) == D("-5.5")
    zero = parse_decimal("-0", "offset", positive=False)
    assert zero == 0
    assert not zero.is_signed()


@pytest.mark.parametrize(
    ("raw", "taken"),
    [
        ("5", True),
        ("-5", True),
        ("0", True),
        (7, True),
        ("1" * 18, True),
        ("1" * 19, False),
        ("1.5", False),
        ("1e3", False),
        (" 5", False),
        ("\u0665", False),
        ("0x5", False),
        (True, False),
        (5.0, False),
        ("", False),
    ],
)
def test_integers(raw: Any, taken: bool) -> None:
    if taken:
        assert parse_int(raw, "limit", minimum=-(10**18), maximum=10**18) == int(raw)
    else:
        with pytest.raises(InvalidValue):
            parse_int(raw, "limit", minimum=-(10**18), maximum=10**18)
    with pytest.raises(InvalidValue):
        parse_int(11, "limit", minimum=0, maximum=10)


@pytest.mark.parametrize(
    "raw",
    [
        "nan",
        "NaN",
        "inf",
        "-inf",
        "Infinity",
        "1e10",
        "-1",
        "+1",
        " 1",
        "1 ",
        "1_0",
        "\u0661",
        "",
        "1.",
        ".5",
        "1.2.3",
        "1" * 13,
        "1.0123456789",
    ],
)
def test_seconds_are_digits_with_an_optional_fraction(raw: str) -> None:
    with pytest.raises(InvalidValue):
        parse_seconds(raw, "CB-ACCESS-TIMESTAMP")


def test_seconds_taken() -> None:
    assert parse_seconds("1700000000", "t") == 1700000000.0
    assert parse_seconds("1700000000.123", "t") == 1700000000.123


@pytest.mark.parametrize(
    "raw",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2031-13-01T00:00:00Z",
        "2031-02-30T00:00:00Z",
        "2031-01-01T00:00:60Z",
        "2031-01-01",
        "2031-01-01T00:00:00",
        "+02031-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "nan",
        "",
        5,
        None,
        "2031-01-01T00:00:00.1234567890Z",
        "\u0662031-01-01T00:00:00Z",
    ],
)
def test_a_time_that_no_calendar_holds_is_refused(raw: Any) -> None:
    with pytest.raises(InvalidValue):
        parse_time(raw, "end_time")


def test_times_taken() -> None:
    assert parse_time("2031-01-01T00:00:00Z", "t") == 1924992000.0
    assert parse_time("2031-01-01T01:00:00.5+01:00", "t") == 1924992000.5
    assert parse_time("2031-01-01 00:00:00z", "t") == 1924992000.0


@pytest.mark.parametrize("raw", [math.nan, math.inf, -math.inf, 1e300, 10**400, "1", None, True, 11])
def test_numbers_must_be_finite_and_in_range(raw: Any) -> None:
    with pytest.raises(InvalidValue):
        parse_number(raw, "fault", minimum=0, maximum=10)
    assert parse_number(2, "fault", minimum=0, maximum=10) == 2.0


@pytest.mark.parametrize(
    "changes",
    [
        {"clock_offset_s": math.nan},
        {"clock_offset_s": math.inf},
        {"clock_offset_s": 1e12},
        {"latency_ms": -1.0},
        {"slow_response_s": math.inf},
        {"storm_429_until": math.nan},
        {"ws_gap_rate": 1.5},
        {"unknown": 1.0},
    ],
)
def test_faults_refuse_what_would_stop_the_clock_or_every_request(changes: dict[str, float]) -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="fault"):
        faults.update(changes)
    assert faults == Faults()
    if "unknown" not in changes:
        with pytest.raises(ValueError, match="fault"):
            Faults(**changes)  # the command line builds them directly


@pytest.mark.parametrize(
    "setting",
    [
        {"hmac_window_s": math.nan},
        {"jwt_max_lifetime_s": math.inf},
        {"jwt_nbf_leeway_s": -1.0},
        {"request_timeout_s": math.nan},
        {"tick_interval_s": -0.5},
        {"clock_offset": math.nan},
        {"clock_offset": 1e12},
    ],
)
def test_a_simulator_config_takes_only_finite_times_in_range(setting: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(setting))):
        SimConfig(**setting)  # type: ignore[arg-type]
