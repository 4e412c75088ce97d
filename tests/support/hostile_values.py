"""Hostile values shared by the tables that test each door a decimal or a time comes in by."""

from __future__ import annotations

# Decimal text every door must refuse, with the words its reason must contain. Short strings with huge values
# among them: a length cap lets those through.
HOSTILE_DECIMALS: list[tuple[str, str]] = [
    ("1E+999999", "too large"),
    ("1e999999", "too large"),
    ("9E+99999999999999999999", "too large"),
    ("1E+15", "too large"),
    ("1000000000000000", "too large"),
    ("1E-999999", "too precise"),
    ("1E-19", "too precise"),
    ("0.0000000000000000001", "too precise"),
    ("0E-999999", "greater than zero"),
    ("123456789012345.123456789012345", "too many significant digits"),
    ("NaN", "not a decimal"),
    ("nan", "not a decimal"),
    ("-NaN", "not a decimal"),
    ("sNaN", "not a decimal"),
    ("Infinity", "not a decimal"),
    ("-inf", "not a decimal"),
    ("1_000", "not a decimal"),
    ("\u0661\u0662", "not a decimal"),  # Arabic-Indic digits: Decimal() itself would take them
    ("0x10", "not a decimal"),
    ("1e", "not a decimal"),
    ("", "not a decimal"),
    ("1" * 65, "too long"),
    ("0", "greater than zero"),
    ("-1", "greater than zero"),
]

# Decimal text at the edge of the bounds that every door must accept, and the value it stands for.
EDGE_DECIMALS: list[tuple[str, str]] = [
    ("999999999999999", "999999999999999"),
    ("9.99999999999999E+14", "999999999999999"),
    ("1E-18", "0.000000000000000001"),
    ("0.000000000000000001", "0.000000000000000001"),
    ("1.000000000000000000000000000000", "1"),  # zeros past the 18th place are only zeros
    ("123456789012345.1234567890123", "123456789012345.1234567890123"),
    (" 2.5 ", "2.5"),
    ("+7", "7"),
    ("1e3", "1000"),
    (".5", "0.5"),
]

# GTD end times whose UTC time falls outside the calendar: datetime parses them, UTC conversion overflows.
OFF_CALENDAR_TIMES: list[str] = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00+00:01",
    "0001-01-01T13:59:59+14:00",
    "0001-01-01T00:00:00.000001+23:59",
    "0001-01-01T09:30:00+09:31",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59-00:01",
    "9999-12-31T12:00:00-12:00",
    "9999-12-31T23:59:59.999999-23:59",
    "9999-12-31T18:00:00-06:00",
]

# GTD end times at the edge of the calendar that convert to UTC and so build an order.
EDGE_TIMES: list[str] = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00-14:00",
    "0001-01-01T14:00:00+14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T09:59:59-14:00",
]
