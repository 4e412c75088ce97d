"""Decimal amounts (sizes, prices, caps) as the engine takes them in: bounded by value and by exponent.

A decimal's text says little about its size: `1E+999999` is nine characters and a million digits once
written in fixed point, as Coinbase's order bodies and our logs write amounts. So every decimal that enters
the engine (a signal's field, a config value, an order builder's argument, a risk cap) goes through
`bounded_decimal`, which refuses NaN and infinities, magnitudes of 10**15 and above, steps finer than
10**-18 and more significant digits than the default decimal context holds (28). What it accepts renders in
fixed point in at most 35 characters, and arithmetic on it cannot overflow the context.

Coinbase's product increments (`base_increment`, `quote_increment`, `price_increment` on
https://docs.cdp.coinbase.com/advanced-trade/reference/retailbrokerageapi_getproduct) sit well inside them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from engine.errors import InvalidValue

__all__ = [
    "MAX_INTEGER_DIGITS",
    "MAX_SCALE",
    "MAX_SIGNIFICANT_DIGITS",
    "bounded_decimal",
]

MAX_INTEGER_DIGITS = 15  # values below 10**15
MAX_SCALE = 18  # steps down to 10**-18
MAX_SIGNIFICANT_DIGITS = 28  # the default decimal context's precision
_MAX_TEXT = 64  # a cheap guard before parsing; the bounds above are what counts
# ASCII only: Decimal() itself also takes other scripts' digits, underscores and "nan"/"inf" spellings.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def bounded_decimal(value: object, field: str, *, positive: bool = True) -> Decimal:
    """`value` (a `Decimal`, a decimal string or an `int`) as a `Decimal` within the engine's bounds.

    Raises `InvalidValue` naming `field` (never echoing the value) for text that is not a decimal, a
    non-finite or out-of-bounds number, or, with `positive`, one not above zero; `TypeError` for any other
    type, floats included (a float cannot hold most decimal prices exactly). Trailing zeros beyond
    `MAX_SCALE` places are dropped; the value is unchanged otherwise.
    """
    kind = value.__class__
    if kind is Decimal:
        number: Decimal = value  # type: ignore[assignment]
    elif kind is str:
        number = _parse(value, field)  # type: ignore[arg-type]
    elif isinstance(value, float):
        raise TypeError(
            f"{field} must be a Decimal or a decimal string, not float ({value!r}): floats cannot represent "
            f"most prices exactly; pass Decimal({str(value)!r}) or {str(value)!r}"
        )
    elif isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise TypeError(f"{field} must be a Decimal, a decimal string or an int, not {type(value).__name__}")
    else:
        number = _parse(value, field) if isinstance(value, str) else Decimal(value)
    if not number.is_finite():
        raise InvalidValue(field, "must be a finite number")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):  # zero, whatever its exponent: written as plain 0 if that exponent is out of bounds
        if positive:
            raise InvalidValue(field, "must be greater than zero")
        return number if -MAX_SCALE <= exponent <= 0 else Decimal(0)
    if positive and sign:
        raise InvalidValue(field, "must be greater than zero")
    if exponent + len(digits) > MAX_INTEGER_DIGITS:
        raise InvalidValue(field, _TOO_LARGE)
    if exponent < -MAX_SCALE or len(digits) > MAX_SIGNIFICANT_DIGITS:
        trailing = len(digits) - len(bytes(digits).rstrip(b"\0"))
        if exponent + trailing < -MAX_SCALE:
            raise InvalidValue(field, f"too precise: at most {MAX_SCALE} decimal places")
        if len(digits) - trailing > MAX_SIGNIFICANT_DIGITS:
            raise InvalidValue(field, f"too many significant digits (at most {MAX_SIGNIFICANT_DIGITS})")
        if exponent < -MAX_SCALE:  # only zeros out there: drop them, so the fixed-point text stays short
            number = Decimal((sign, digits[: len(digits) - trailing], exponent + trailing))
    return number


def _parse(value: str, field: str) -> Decimal:
    text = value.strip()
    if len(text) > _MAX_TEXT:
        raise InvalidValue(field, f"too long for a decimal (at most {_MAX_TEXT} characters)")
    if not _DECIMAL_TEXT.fullmatch(text):
        raise InvalidValue(field, "not a decimal number")
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what the decimal module can hold at all
        raise InvalidValue(field, _TOO_LARGE) from None


_TOO_LARGE = f"too large: must be below 1E+{MAX_INTEGER_DIGITS}"
