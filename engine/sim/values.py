"""The simulator's one way of reading a value a client sent: decimals, integers and times, each bounded.

A value is text (or, where JSON allows it, a number) from a query string, a JSON body or a header. Python's
own parsers take far more than Coinbase does: `Decimal` reads `NaN`, `Infinity`, `1E+999999`, `1_000`, spaces
and non-ASCII digits; `float` reads `nan`; `int` refuses 5000 digits with a ValueError of its own. So each
value goes through a strict ASCII grammar first, then a bound on its magnitude and scale, and the failure is
one exception, `InvalidValue`, a `BadRequest` (the gateway answers it 400) whose message names the field but
never repeats the value (it may be a megabyte of digits).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Context, Decimal

_MAX_TEXT = 64  # no price, size or time Coinbase takes is longer; checked before any parsing
MAX_MAGNITUDE = 15  # |value| < 10**15: above any price or size a product trades
ANY_INT = 10**18 - 1  # the widest integer a query parameter may spell (18 digits)
MAX_SCALE = 18  # at most 18 significant digits after the point (Coinbase's finest increment is 1e-8)

_DECIMAL = re.compile(
    r"[+-]?(?:[0-9]+\.?(?P<fraction>[0-9]*)|\.(?P<point_fraction>[0-9]+))(?:[eE](?P<exponent>[+-]?[0-9]{1,4}))?",
    re.ASCII,
).fullmatch
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII).fullmatch
_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", re.ASCII).fullmatch
# RFC 3339 as Coinbase writes and reads times: date, "T", time, optional fraction, Z or an offset
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
).fullmatch
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 1, 1, tzinfo=UTC).timestamp()  # a year short of the calendar's end: room for offsets


_EXACT = Context(prec=2 * _MAX_TEXT)  # wide enough that normalizing a value of _MAX_TEXT characters is exact


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # the grammar admits finite values only
    return exponent


class BadRequest(Exception):
    """A request Coinbase answers with `status` (400 unless said); the gateway writes the API's error body."""

    def __init__(self, message: str, status: int = 400, error: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class InvalidValue(BadRequest, ValueError):
    """A value that is not what its field takes: the message names the field, never the value."""


# texts already parsed, by `positive`: clients send the same few sizes and prices, and a Decimal is immutable
_PARSED: tuple[dict[str, Decimal], dict[str, Decimal]] = ({}, {})
_PARSED_MAX = 4096


def parse_decimal(raw: object, name: str, *, positive: bool = True) -> Decimal:
    """A decimal string (or JSON integer) as a finite `Decimal` with |value| < 10**15 and at most 18
    significant decimal places; strictly positive unless `positive` is False."""
    parsed = _PARSED[positive]
    if type(raw) is str:
        known = parsed.get(raw)
        if known is not None:
            return known
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidValue(f"{name} must be a decimal string")
    if isinstance(raw, int) and not -(10**MAX_MAGNITUDE) < raw < 10**MAX_MAGNITUDE:
        raise InvalidValue(f"{name} is out of range")  # before str(): a huge int has too many digits for it
    text = raw if isinstance(raw, str) else str(raw)
    match = _DECIMAL(text) if len(text) <= _MAX_TEXT else None
    if match is None:
        raise InvalidValue(f"{name} must be a decimal string")
    value = Decimal(text)
    fraction, point_fraction, exponent = match.group("fraction", "point_fraction", "exponent")
    most_places = len(fraction or point_fraction or "") - int(exponent or 0)  # before trailing zeros go
    if value.adjusted() >= MAX_MAGNITUDE or (
        most_places > MAX_SCALE and _exponent(_EXACT.normalize(value)) < -MAX_SCALE
    ):
        raise InvalidValue(f"{name} is out of range")
    if positive and value <= 0:
        raise InvalidValue(f"{name} must be positive")
    if value.is_zero():
        value = value + 0  # "-0" is 0
    if type(raw) is str and len(parsed) < _PARSED_MAX:
        parsed[raw] = value
    return value


def parse_int(raw: object, name: str, *, minimum: int, maximum: int) -> int:
    """A decimal integer (text or JSON integer) within [minimum, maximum]."""
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise InvalidValue(f"{name} must be an integer")
    if isinstance(raw, str):
        if not _INTEGER(raw):
            raise InvalidValue(f"{name} must be an integer")
        raw = int(raw)
    if not minimum <= raw <= maximum:
        raise InvalidValue(f"{name} must be between {minimum} and {maximum}")
    return raw


def parse_number(raw: object, name: str, *, minimum: float, maximum: float) -> float:
    """A JSON number (an admin setting) that is finite and within [minimum, maximum]."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise InvalidValue(f"{name} must be a number")
    if isinstance(raw, int) and not minimum <= raw <= maximum:  # before float(): a big int overflows it
        raise InvalidValue(f"{name} must be between {minimum:g} and {maximum:g}")
    value = float(raw)
    if not (math.isfinite(value) and minimum <= value <= maximum):
        raise InvalidValue(f"{name} must be between {minimum:g} and {maximum:g}")
    return value


def parse_seconds(raw: str, name: str) -> float:
    """Seconds since the epoch as Coinbase Exchange takes them in CB-ACCESS-TIMESTAMP: ASCII digits with an
    optional fraction, so never `nan`, `inf`, an exponent, a sign, spaces or underscores."""
    if len(raw) > _MAX_TEXT or not _SECONDS(raw):
        raise InvalidValue(f"{name} must be seconds since the epoch")
    return float(raw)


def parse_time(raw: object, name: str) -> float:
    """An RFC 3339 time between 1970 and 9999 as seconds since the epoch."""
    if not isinstance(raw, str) or len(raw) > _MAX_TEXT or not _RFC3339(raw):
        raise InvalidValue(f"{name} must be an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        seconds = parsed.timestamp()
    except (ValueError, OverflowError):  # a month 13, a day 32, a leap second: not a time
        raise InvalidValue(f"{name} must be an RFC 3339 time") from None
    if not _EARLIEST <= seconds <= _LATEST:
        raise InvalidValue(f"{name} is out of range")
    return seconds


def query_int(query: Mapping[str, str], name: str, default: int, *, minimum: int, maximum: int) -> int:
    """An integer query parameter; absent or empty gives `default`."""
    raw = query.get(name)
    return default if raw is None or raw == "" else parse_int(raw, name, minimum=minimum, maximum=maximum)


def query_time(query: Mapping[str, str], name: str) -> float | None:
    """An RFC 3339 query parameter (`start_date`, `end_date`); absent or empty gives None."""
    raw = query.get(name)
    return None if raw is None or raw == "" else parse_time(raw, name)
