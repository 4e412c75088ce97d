"""A trading signal: what an external signal platform asks the engine to do, parsed and validated once.

A signal is JSON. Every field is checked at the door and a bad one is named in the error, so the platform's
operator can fix the sender without reading our logs:

    {"id": "tv-2024-0001", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit",
     "size": "0.01", "limit_price": "60000", "time_in_force": "GTC", "post_only": true}

Sizes and prices are decimal strings (numbers are accepted and read through their shortest decimal form),
bounded by value and exponent as `engine.decimals` says. Market orders take exactly one of `size` (base) or
`quote_size`; limit and stop-limit orders take `size`. Validation ends by building the signal's order
configuration with the same builders that place it, so a signal that is accepted can always be placed (a
GTD `end_time` whose UTC time falls off the calendar, say, is refused here, not in the worker).

A signal never becomes two orders: its `client_order_id` is derived from the signal id alone
(`signal_client_order_id`), so however many times or workers execute it, Coinbase's `client_order_id`
idempotency returns the one order.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from engine.decimals import bounded_decimal
from engine.errors import InvalidValue
from engine.venues.advanced.orders import (
    LimitFok,
    LimitGtc,
    LimitGtd,
    MarketFok,
    MarketIoc,
    OrderConfiguration,
    SorLimitIoc,
    StopLimitGtc,
    StopLimitGtd,
)
from engine.venues.advanced.orders import StopDirection as OrderStopDirection

__all__ = [
    "MAX_SIGNAL_ID_LENGTH",
    "InvalidSignal",
    "OrderType",
    "Side",
    "Signal",
    "StopDirection",
    "TimeInForce",
    "declared_signal_id",
    "parse_signal",
    "signal_client_order_id",
]

MAX_SIGNAL_ID_LENGTH = 128
_SIGNAL_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_PRODUCT_ID = re.compile(r"[A-Z0-9]{1,24}(?:-[A-Z0-9]{1,24}){1,3}")
_PREFIX = re.compile(r"[A-Za-z0-9_.]{1,64}")
_KNOWN_FIELDS = frozenset(
    {
        "id",
        "product_id",
        "side",
        "order_type",
        "size",
        "quote_size",
        "limit_price",
        "stop_price",
        "stop_direction",
        "time_in_force",
        "end_time",
        "post_only",
        "tag",
    }
)
_MAX_TAG_LENGTH = 64
_E = TypeVar("_E", bound=enum.Enum)


class InvalidSignal(InvalidValue):
    """A signal failed validation. `field` names the offending field (or `"body"` for the whole document)."""


class Side(enum.Enum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_LIMIT = "stop_limit"


class TimeInForce(enum.Enum):
    GTC = "GTC"  # good till cancelled
    GTD = "GTD"  # good till `end_time`
    IOC = "IOC"  # immediate or cancel
    FOK = "FOK"  # fill or kill


class StopDirection(enum.Enum):
    UP = "STOP_DIRECTION_STOP_UP"
    DOWN = "STOP_DIRECTION_STOP_DOWN"


# What each order type accepts; the first is the default.
_ALLOWED_TIF: dict[OrderType, tuple[TimeInForce, ...]] = {
    OrderType.MARKET: (TimeInForce.IOC, TimeInForce.FOK),
    OrderType.LIMIT: (TimeInForce.GTC, TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK),
    OrderType.STOP_LIMIT: (TimeInForce.GTC, TimeInForce.GTD),
}


@dataclass(frozen=True, slots=True)
class Signal:
    """One validated signal. Built by `parse_signal` (or `Signal.from_mapping`), which checks every field."""

    id: str
    product_id: str
    side: Side
    order_type: OrderType
    size: Decimal | None = None  # base size
    quote_size: Decimal | None = None  # market orders only
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_direction: StopDirection | None = None
    time_in_force: TimeInForce | None = None  # None: the order type's default
    end_time: datetime | None = None  # GTD only
    post_only: bool = False
    tag: str | None = None  # free text the platform may use to trace its signals
    # The Advanced Trade order configuration, built from the fields above when the signal is made: a signal
    # the order builders cannot build is refused here, at the door, never in the worker.
    configuration: OrderConfiguration = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            configuration = _configuration(self)
        except InvalidValue as exc:
            raise InvalidSignal(_SIGNAL_FIELD.get(exc.field, exc.field), exc.reason) from None
        object.__setattr__(self, "configuration", configuration)

    @classmethod
    def from_mapping(cls, document: Any) -> Signal:
        return _build(document)

    @property
    def effective_time_in_force(self) -> TimeInForce:
        return self.time_in_force or _ALLOWED_TIF[self.order_type][0]

    def client_order_id(self, prefix: str = "eng") -> str:
        return signal_client_order_id(self.id, prefix)

    def to_json(self) -> bytes:
        """The signal as canonical JSON; `parse_signal(s.to_json()) == s`. Used to carry it on a stream."""
        document: dict[str, Any] = {
            "id": self.id,
            "product_id": self.product_id,
            "side": self.side.value,
            "order_type": self.order_type.value,
        }
        for name in ("size", "quote_size", "limit_price", "stop_price"):
            value = getattr(self, name)
            if value is not None:
                document[name] = str(value)
        if self.stop_direction is not None:
            document["stop_direction"] = self.stop_direction.value
        if self.time_in_force is not None:
            document["time_in_force"] = self.time_in_force.value
        if self.end_time is not None:
            document["end_time"] = _iso(self.end_time)
        if self.post_only:
            document["post_only"] = True
        if self.tag is not None:
            document["tag"] = self.tag
        return orjson.dumps(document)


def signal_client_order_id(signal_id: str, prefix: str = "eng") -> str:
    """The one `client_order_id` a signal may ever become: `<prefix>-s-<first 32 hex of sha256(signal id)>`.

    Deterministic across workers and restarts, at most 99 characters, and in the `<prefix>-<x>-<y>` shape that
    `engine.trading.ids.worker_of` reads (the middle part `s` marks a signal-derived id).
    """
    if not _PREFIX.fullmatch(prefix):
        raise ValueError("client order id prefix must be 1-64 characters of [A-Za-z0-9_.] (no '-')")
    return f"{prefix}-s-{hashlib.sha256(signal_id.encode()).hexdigest()[:32]}"


def parse_signal(body: bytes | str) -> Signal:
    """Parse and validate one JSON signal; raises `InvalidSignal` naming the bad field."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidSignal("body", "not valid JSON") from None
    return _build(document)


def declared_signal_id(body: bytes | str) -> str | None:
    """The `id` a signal body that failed validation declares, if it is a usable one (to settle it under)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    signal_id = document.get("id") if isinstance(document, dict) else None
    return signal_id if isinstance(signal_id, str) and _SIGNAL_ID.fullmatch(signal_id) else None


def _build(document: Any) -> Signal:
    if not isinstance(document, dict):
        raise InvalidSignal("body", "must be a JSON object")
    unknown = sorted(set(document) - _KNOWN_FIELDS)
    if unknown:
        raise InvalidSignal(str(unknown[0])[:64], "unknown field")

    signal_id = _required_str(document, "id")
    if not _SIGNAL_ID.fullmatch(signal_id):
        raise InvalidSignal("id", f"must be 1-{MAX_SIGNAL_ID_LENGTH} characters of [A-Za-z0-9_.:-]")
    product_id = _required_str(document, "product_id")
    if not _PRODUCT_ID.fullmatch(product_id):
        raise InvalidSignal("product_id", "must look like BTC-USD (upper case, dash separated)")
    side = _enum(document, "side", Side, upper=True, required=True)
    order_type = _enum(document, "order_type", OrderType, upper=False, required=True)
    assert side is not None
    assert order_type is not None

    size = _decimal(document, "size")
    quote_size = _decimal(document, "quote_size")
    limit_price = _decimal(document, "limit_price")
    stop_price = _decimal(document, "stop_price")
    stop_direction = _stop_direction(document)
    tif = _enum(document, "time_in_force", TimeInForce, upper=True, required=False)
    end_time = _end_time(document)
    post_only = document.get("post_only", False)
    if not isinstance(post_only, bool):
        raise InvalidSignal("post_only", "must be true or false")
    tag = document.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > _MAX_TAG_LENGTH):
        raise InvalidSignal("tag", f"must be a string of at most {_MAX_TAG_LENGTH} characters")

    if order_type is OrderType.MARKET:
        if (size is None) == (quote_size is None):
            raise InvalidSignal("size", "a market order takes exactly one of size or quote_size")
        for name, value in (("limit_price", limit_price), ("stop_price", stop_price)):
            if value is not None:
                raise InvalidSignal(name, "not allowed on a market order")
        if post_only:
            raise InvalidSignal("post_only", "not allowed on a market order")
    else:
        if size is None:
            raise InvalidSignal("size", f"required for a {order_type.value} order")
        if quote_size is not None:
            raise InvalidSignal("quote_size", f"not allowed on a {order_type.value} order; use size")
        if limit_price is None:
            raise InvalidSignal("limit_price", f"required for a {order_type.value} order")
        if order_type is OrderType.STOP_LIMIT:
            if stop_price is None:
                raise InvalidSignal("stop_price", "required for a stop_limit order")
        elif stop_price is not None:
            raise InvalidSignal("stop_price", "only allowed on a stop_limit order")
    if stop_direction is not None and order_type is not OrderType.STOP_LIMIT:
        raise InvalidSignal("stop_direction", "only allowed on a stop_limit order")

    allowed = _ALLOWED_TIF[order_type]
    if tif is not None and tif not in allowed:
        names = ", ".join(t.value for t in allowed)
        raise InvalidSignal("time_in_force", f"a {order_type.value} order takes one of {names}")
    effective = tif or allowed[0]
    if effective is TimeInForce.GTD and end_time is None:
        raise InvalidSignal("end_time", "required when time_in_force is GTD")
    if effective is not TimeInForce.GTD and end_time is not None:
        raise InvalidSignal("end_time", "only allowed when time_in_force is GTD")
    if post_only and effective in (TimeInForce.IOC, TimeInForce.FOK):
        raise InvalidSignal("post_only", "cannot be combined with IOC or FOK")

    return Signal(
        id=signal_id,
        product_id=product_id,
        side=side,
        order_type=order_type,
        size=size,
        quote_size=quote_size,
        limit_price=limit_price,
        stop_price=stop_price,
        stop_direction=stop_direction,
        time_in_force=tif,
        end_time=end_time,
        post_only=post_only,
        tag=tag,
    )


def _required_str(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if value is None:
        raise InvalidSignal(name, "required")
    if not isinstance(value, str):
        raise InvalidSignal(name, "must be a string")
    return value


def _enum(document: dict[str, Any], name: str, kind: type[_E], *, upper: bool, required: bool) -> _E | None:
    value = document.get(name)
    if value is None:
        if required:
            raise InvalidSignal(name, "required")
        return None
    if isinstance(value, str):
        wanted = value.upper() if upper else value.lower()
        for member in kind:
            if member.value == wanted:
                return member
    names = ", ".join(str(m.value) for m in kind)
    raise InvalidSignal(name, f"must be one of {names}")


def _stop_direction(document: dict[str, Any]) -> StopDirection | None:
    value = document.get("stop_direction")
    if value is None:
        return None
    if isinstance(value, str):
        wanted = value.upper()
        for member in StopDirection:
            if wanted in (member.value, member.name):
                return member
    raise InvalidSignal("stop_direction", "must be UP or DOWN")


def _decimal(document: dict[str, Any], name: str) -> Decimal | None:
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidSignal(name, "must be a decimal string")
    try:
        return bounded_decimal(value if isinstance(value, str | int) else repr(value), name)
    except InvalidValue as exc:
        raise InvalidSignal(name, exc.reason) from None


def _end_time(document: dict[str, Any]) -> datetime | None:
    value = document.get("end_time")
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSignal("end_time", "must be an RFC 3339 time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSignal("end_time", "must be an RFC 3339 time string") from None
    if moment.tzinfo is None:
        raise InvalidSignal("end_time", "must carry a time zone (e.g. Z)")
    return moment


def _iso(moment: datetime | None) -> str:
    assert moment is not None
    return moment.isoformat().replace("+00:00", "Z")


# The order builders' parameter names, as the signal calls them.
_SIGNAL_FIELD = {"base_size": "size"}


def _configuration(signal: Signal) -> OrderConfiguration:
    """The typed Advanced Trade configuration a signal asks for (`InvalidValue` if it cannot be built)."""
    tif = signal.effective_time_in_force
    if signal.order_type is OrderType.MARKET:
        market = MarketIoc if tif is TimeInForce.IOC else MarketFok
        return market(base_size=signal.size, quote_size=signal.quote_size)
    if signal.size is None or signal.limit_price is None:
        raise InvalidValue("size" if signal.size is None else "limit_price", "required for a limit order")
    if signal.order_type is OrderType.STOP_LIMIT:
        if signal.stop_price is None:
            raise InvalidValue("stop_price", "required for a stop_limit order")
        direction = OrderStopDirection((signal.stop_direction or StopDirection.UP).value)
        if tif is TimeInForce.GTD:
            return StopLimitGtd(
                base_size=signal.size,
                limit_price=signal.limit_price,
                stop_price=signal.stop_price,
                stop_direction=direction,
                end_time=_required_time(signal.end_time),
            )
        return StopLimitGtc(
            base_size=signal.size,
            limit_price=signal.limit_price,
            stop_price=signal.stop_price,
            stop_direction=direction,
        )
    if tif is TimeInForce.IOC:
        return SorLimitIoc(base_size=signal.size, limit_price=signal.limit_price)
    if tif is TimeInForce.FOK:
        return LimitFok(base_size=signal.size, limit_price=signal.limit_price)
    if tif is TimeInForce.GTD:
        return LimitGtd(
            base_size=signal.size,
            limit_price=signal.limit_price,
            end_time=_required_time(signal.end_time),
            post_only=signal.post_only,
        )
    return LimitGtc(base_size=signal.size, limit_price=signal.limit_price, post_only=signal.post_only)


def _required_time(moment: datetime | None) -> datetime:
    if moment is None:
        raise InvalidValue("end_time", "required when time_in_force is GTD")
    return moment
