"""A trading signal: what an external signal platform asks the engine to do, parsed and validated once.

A signal is JSON. Every field is checked at the door and a bad one is named in the error, so the platform's
operator can fix the sender without reading our logs:

    {"id": "tv-2024-0001", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit",
     "size": "0.01", "limit_price": "60000", "time_in_force": "GTC", "post_only": true}

The body decodes in one pass into a typed wire struct (`msgspec`), which refuses unknown fields and wrong
types; the enums (`Side`, `OrderType`, `TimeInForce`, `StopDirection`) are then read case-insensitively.
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
from typing import Annotated, Any

import msgspec
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
_MAX_TAG_LENGTH = 64


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


# Each enum by the spellings a sender may use: side, time in force and stop direction in any case,
# the order type in any case, the stop direction also by its short name (UP, DOWN).
_SIDES = {member.value: member for member in Side}
_ORDER_TYPES = {member.value.upper(): member for member in OrderType}
_TIMES_IN_FORCE = {member.value: member for member in TimeInForce}
_STOP_DIRECTIONS = {spelling: member for member in StopDirection for spelling in (member.value, member.name)}

_Decimal = str | int | float | None  # bounded by engine.decimals once decoded, never by Decimal() alone


class _SignalWire(msgspec.Struct, forbid_unknown_fields=True):
    """The signal as sent: JSON types checked in one pass; the engine's meaning is checked in `_build`."""

    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:\-]{1,128}$")]
    product_id: Annotated[str, msgspec.Meta(pattern=r"^[A-Z0-9]{1,24}(?:-[A-Z0-9]{1,24}){1,3}$")]
    side: str
    order_type: str
    size: _Decimal = None
    quote_size: _Decimal = None
    limit_price: _Decimal = None
    stop_price: _Decimal = None
    stop_direction: str | None = None
    time_in_force: str | None = None
    end_time: str | None = None
    post_only: bool = False
    tag: Annotated[str, msgspec.Meta(max_length=_MAX_TAG_LENGTH)] | None = None


class _DeclaredId(msgspec.Struct):
    id: Any = None


_DECODER = msgspec.json.Decoder(_SignalWire)
_DECLARED = msgspec.json.Decoder(_DeclaredId)
_STR = "must be a string"
_REQUIRED_FIELDS = ("id", "product_id", "side", "order_type")
# A field's refusal when its JSON type is wrong, or its text falls outside its pattern or length.
_REASONS = {
    "id": f"must be 1-{MAX_SIGNAL_ID_LENGTH} characters of [A-Za-z0-9_.:-]",
    "product_id": "must look like BTC-USD (upper case, dash separated)",
    "side": "must be one of " + ", ".join(member.value for member in Side),
    "order_type": "must be one of " + ", ".join(member.value for member in OrderType),
    "time_in_force": "must be one of " + ", ".join(member.value for member in TimeInForce),
    "stop_direction": "must be UP or DOWN",
    "size": "must be a decimal string",
    "quote_size": "must be a decimal string",
    "limit_price": "must be a decimal string",
    "stop_price": "must be a decimal string",
    "end_time": "must be an RFC 3339 time string",
    "post_only": "must be true or false",
    "tag": f"must be a string of at most {_MAX_TAG_LENGTH} characters",
}
_FIELD_AT = re.compile(r" - at `\$\.([A-Za-z_]+)")
_REQUIRED = re.compile(r"Object missing required field `([A-Za-z_]+)`")
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`", re.DOTALL)


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
        """A signal from an already-parsed JSON document, checked as `parse_signal` checks a body."""
        try:
            wire = msgspec.convert(document, _SignalWire)
        except msgspec.ValidationError as exc:
            raise _refusal(exc) from None
        return _build(wire)

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
        wire = _DECODER.decode(body)
    except msgspec.ValidationError as exc:
        raise _refusal(exc) from None
    except msgspec.DecodeError:
        raise InvalidSignal("body", "not valid JSON") from None
    return _build(wire)


def declared_signal_id(body: bytes | str) -> str | None:
    """The `id` a signal body that failed validation declares, if it is a usable one (to settle it under)."""
    try:
        signal_id = _DECLARED.decode(body).id
    except msgspec.MsgspecError:  # not JSON, or not an object
        return None
    return signal_id if isinstance(signal_id, str) and _SIGNAL_ID.fullmatch(signal_id) else None


def _refusal(error: msgspec.ValidationError) -> InvalidSignal:
    """msgspec's complaint about the wire struct as an `InvalidSignal` naming the field, never its value."""
    message = str(error)
    if (required := _REQUIRED.match(message)) is not None:
        return InvalidSignal(required.group(1), "required")
    if (unknown := _UNKNOWN.match(message)) is not None:
        return InvalidSignal(unknown.group(1)[:64], "unknown field")
    at = _FIELD_AT.search(message)
    if at is None:
        return InvalidSignal("body", "must be a JSON object")
    name = at.group(1)
    if message.startswith("Expected `str`, got `null`") and name in (
        "id",
        "product_id",
        "side",
        "order_type",
    ):
        return InvalidSignal(name, "required")
    if message.startswith("Expected `str`, got") and name in ("id", "product_id"):
        return InvalidSignal(name, _STR)
    return InvalidSignal(name, _REASONS.get(name, "invalid"))


def _build(wire: _SignalWire) -> Signal:
    side = _SIDES.get(wire.side.upper())
    if side is None:
        raise InvalidSignal("side", _REASONS["side"])
    order_type = _ORDER_TYPES.get(wire.order_type.upper())
    if order_type is None:
        raise InvalidSignal("order_type", _REASONS["order_type"])
    size = _decimal(wire.size, "size")
    quote_size = _decimal(wire.quote_size, "quote_size")
    limit_price = _decimal(wire.limit_price, "limit_price")
    stop_price = _decimal(wire.stop_price, "stop_price")
    stop_direction = None
    if wire.stop_direction is not None:
        stop_direction = _STOP_DIRECTIONS.get(wire.stop_direction.upper())
        if stop_direction is None:
            raise InvalidSignal("stop_direction", _REASONS["stop_direction"])
    tif = None
    if wire.time_in_force is not None:
        tif = _TIMES_IN_FORCE.get(wire.time_in_force.upper())
        if tif is None:
            raise InvalidSignal("time_in_force", _REASONS["time_in_force"])
    end_time = None if wire.end_time is None else _end_time(wire.end_time)
    post_only, tag = wire.post_only, wire.tag

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
        id=wire.id,
        product_id=wire.product_id,
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


def _decimal(value: str | int | float | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:  # a JSON number is read through its shortest repr, as a decimal string would be
        return bounded_decimal(value if value.__class__ is not float else repr(value), name)
    except InvalidValue as exc:
        raise InvalidSignal(name, exc.reason) from None


def _end_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidSignal("end_time", _REASONS["end_time"]) from None
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
