"""Values as they go onto Coinbase's wire and come off it, shared by every venue's client.

Coinbase sends amounts as decimal strings and takes them back the same way; a size or price is bounded by
`engine.decimals` before it is rendered, and a time is rendered as RFC 3339 in UTC. Responses are decoded
defensively: an absent or empty amount is None, never zero.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.decimals import bounded_decimal
from engine.errors import InvalidValue

__all__ = [
    "Amount",
    "Json",
    "KeyPermissions",
    "ServerTime",
    "Timestamp",
    "as_str",
    "dec",
    "decimal_str",
    "new_client_order_id",
    "timestamp_str",
]

Json = Mapping[str, Any]
Amount = Decimal | str | int
Timestamp = datetime | str

_MAX_TIMESTAMP_TEXT = 64


def dec(value: Any) -> Decimal | None:
    """Coinbase sends amounts as strings, sometimes empty: empty or absent is None, never zero."""
    if value is None or value == "":
        return None
    try:
        return Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
    except (InvalidOperation, TypeError, ValueError):
        return None


def as_str(value: Any) -> str:
    return "" if value is None else str(value)


def decimal_str(value: object, name: str, *, positive: bool = True) -> str:
    """A size or price as Coinbase's decimal string, within `engine.decimals`' bounds (`InvalidValue` if
    not); refuses floats (`TypeError`)."""
    return format(bounded_decimal(value, name, positive=positive), "f")


def timestamp_str(value: object, name: str) -> str:
    """RFC 3339 in UTC, to the millisecond. A naive time is refused (its zone would be a guess), and so is
    one whose UTC time falls outside the calendar (year 1 to 9999)."""
    if isinstance(value, str):
        if not value or len(value) > _MAX_TIMESTAMP_TEXT:
            raise InvalidValue(name, "must be an RFC 3339 time such as 2030-01-01T00:00:00Z")
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidValue(name, "must be an RFC 3339 time such as 2030-01-01T00:00:00Z") from None
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be an aware datetime or an RFC 3339 string, not {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise InvalidValue(name, "must be timezone-aware (e.g. datetime.now(UTC), or Z), got a naive time")
    try:
        utc = value - offset
    except OverflowError:
        raise InvalidValue(name, "outside the calendar once converted to UTC") from None
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def new_client_order_id() -> str:
    """A fresh idempotency key. Keep it: retrying with the same id is what makes a retry safe."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class ServerTime:
    epoch_seconds: float
    iso: str

    @classmethod
    def parse(cls, data: Json) -> ServerTime:
        millis = data.get("epochMillis")
        if millis not in (None, ""):
            epoch = int(millis) / 1000.0
        elif "epochSeconds" in data:
            epoch = float(data["epochSeconds"])
        else:  # Coinbase Exchange's /time
            epoch = float(data["epoch"])
        return cls(epoch, as_str(data.get("iso")))


@dataclass(frozen=True, slots=True)
class KeyPermissions:
    can_view: bool
    can_trade: bool
    can_transfer: bool
    portfolio_uuid: str
    portfolio_type: str
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def parse(cls, data: Json) -> KeyPermissions:
        return cls(
            bool(data.get("can_view")),
            bool(data.get("can_trade")),
            bool(data.get("can_transfer")),
            as_str(data.get("portfolio_uuid")),
            as_str(data.get("portfolio_type")),
            data,
        )
