"""Typed order configurations and order requests for Advanced Trade.

One class per `order_configuration` key of Create Order:
https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/rest-api/orders/create-order

Every size and price is a `Decimal`, a decimal `str` or an `int`, never a `float` (a float cannot hold most
decimal prices exactly; passing one is a TypeError). Each configuration validates and renders its JSON
fragment once, at construction, and an `OrderRequest` renders its whole body once: the bytes built here are
the bytes signed and sent, on every retry.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import orjson

from engine.errors import InvalidValue
from engine.net.wire import Amount, Timestamp, decimal_str, new_client_order_id, timestamp_str

__all__ = [
    "Amount",
    "ClosePositionRequest",
    "LimitFok",
    "LimitGtc",
    "LimitGtd",
    "MarginType",
    "MarketFok",
    "MarketIoc",
    "OrderConfiguration",
    "OrderRequest",
    "PriceDistribution",
    "ScaledLimitGtc",
    "Side",
    "SizeDistribution",
    "SorLimitIoc",
    "StopDirection",
    "StopLimitGtc",
    "StopLimitGtd",
    "Timestamp",
    "TriggerBracketGtc",
    "TriggerBracketGtd",
    "TwapLimitGtd",
    "decimal_str",
]


MAX_CLIENT_ORDER_ID = 128
_DURATION = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?s", re.ASCII)


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class StopDirection(enum.StrEnum):
    """UP: triggers when the last trade rises to the stop price; DOWN: when it falls to it."""

    UP = "STOP_DIRECTION_STOP_UP"
    DOWN = "STOP_DIRECTION_STOP_DOWN"


class MarginType(enum.StrEnum):
    CROSS = "CROSS"
    ISOLATED = "ISOLATED"


class PriceDistribution(enum.StrEnum):
    FLAT = "FLAT"
    LINEAR_INCREASING = "LINEAR_INCREASING"
    LINEAR_DECREASING = "LINEAR_DECREASING"


class SizeDistribution(enum.StrEnum):
    FLAT = "FLAT"
    LINEAR_INCREASING = "LINEAR_INCREASING"
    LINEAR_DECREASING = "LINEAR_DECREASING"
    EXPONENTIAL_INCREASING = "EXPONENTIAL_INCREASING"
    EXPONENTIAL_DECREASING = "EXPONENTIAL_DECREASING"


def _sized(base_size: Amount | None, quote_size: Amount | None, *, kind: str) -> dict[str, Any]:
    if (base_size is None) == (quote_size is None):
        raise ValueError(f"{kind} needs exactly one of base_size or quote_size")
    if base_size is not None:
        return {"base_size": decimal_str(base_size, "base_size")}
    return {"quote_size": decimal_str(quote_size, "quote_size")}


def _rfq(body: dict[str, Any], rfq_disabled: bool) -> dict[str, Any]:
    # Sent only when set, so the common order's body stays as it was.
    if rfq_disabled:
        body["rfq_disabled"] = True
    return body


class OrderConfiguration:
    """Base of every configuration: `key` is its `order_configuration` key, `fragment` its validated body."""

    __slots__ = ()
    key: ClassVar[str]

    def fragment(self) -> dict[str, Any]:
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        """`{key: fragment}`, ready to be the value of `order_configuration`."""
        return {self.key: self.fragment()}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rendered(OrderConfiguration):
    # The validated fragment, built once in __post_init__ so an invalid order fails before any I/O.
    _fragment: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fragment", self._render())

    def _render(self) -> dict[str, Any]:
        raise NotImplementedError

    def fragment(self) -> dict[str, Any]:
        return self._fragment


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketIoc(_Rendered):
    """Market, immediate-or-cancel. Buys are usually sized in quote, sells in base."""

    key: ClassVar[str] = "market_market_ioc"
    base_size: Amount | None = None
    quote_size: Amount | None = None
    rfq_disabled: bool = False  # True keeps the order off Coinbase's RFQ (request-for-quote) liquidity

    def _render(self) -> dict[str, Any]:
        return _rfq(_sized(self.base_size, self.quote_size, kind=self.key), self.rfq_disabled)


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketFok(_Rendered):
    """Market, fill-or-kill."""

    key: ClassVar[str] = "market_market_fok"
    base_size: Amount | None = None
    quote_size: Amount | None = None

    def _render(self) -> dict[str, Any]:
        return _sized(self.base_size, self.quote_size, kind=self.key)


@dataclass(frozen=True, slots=True, kw_only=True)
class SorLimitIoc(_Rendered):
    """Limit, immediate-or-cancel, smart-order-routed."""

    key: ClassVar[str] = "sor_limit_ioc"
    limit_price: Amount
    base_size: Amount | None = None
    quote_size: Amount | None = None

    def _render(self) -> dict[str, Any]:
        body = _sized(self.base_size, self.quote_size, kind=self.key)
        body["limit_price"] = decimal_str(self.limit_price, "limit_price")
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitGtc(_Rendered):
    """Limit, good-till-cancelled; `post_only` makes it maker-only."""

    key: ClassVar[str] = "limit_limit_gtc"
    limit_price: Amount
    base_size: Amount | None = None
    quote_size: Amount | None = None
    post_only: bool = False
    rfq_disabled: bool = False  # True keeps the order off Coinbase's RFQ (request-for-quote) liquidity

    def _render(self) -> dict[str, Any]:
        body = _sized(self.base_size, self.quote_size, kind=self.key)
        body["limit_price"] = decimal_str(self.limit_price, "limit_price")
        body["post_only"] = bool(self.post_only)
        return _rfq(body, self.rfq_disabled)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitGtd(_Rendered):
    """Limit, good-till-date (`end_time`)."""

    key: ClassVar[str] = "limit_limit_gtd"
    limit_price: Amount
    end_time: Timestamp
    base_size: Amount | None = None
    quote_size: Amount | None = None
    post_only: bool = False
    rfq_disabled: bool = False  # True keeps the order off Coinbase's RFQ (request-for-quote) liquidity

    def _render(self) -> dict[str, Any]:
        body = _sized(self.base_size, self.quote_size, kind=self.key)
        body["limit_price"] = decimal_str(self.limit_price, "limit_price")
        body["end_time"] = timestamp_str(self.end_time, "end_time")
        body["post_only"] = bool(self.post_only)
        return _rfq(body, self.rfq_disabled)


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitFok(_Rendered):
    """Limit, fill-or-kill."""

    key: ClassVar[str] = "limit_limit_fok"
    limit_price: Amount
    base_size: Amount | None = None
    quote_size: Amount | None = None
    rfq_disabled: bool = False  # True keeps the order off Coinbase's RFQ (request-for-quote) liquidity

    def _render(self) -> dict[str, Any]:
        body = _sized(self.base_size, self.quote_size, kind=self.key)
        body["limit_price"] = decimal_str(self.limit_price, "limit_price")
        return _rfq(body, self.rfq_disabled)


@dataclass(frozen=True, slots=True, kw_only=True)
class StopLimitGtc(_Rendered):
    """Stop-limit, good-till-cancelled: at `stop_price` (crossed in `stop_direction`) a limit order rests."""

    key: ClassVar[str] = "stop_limit_stop_limit_gtc"
    base_size: Amount
    limit_price: Amount
    stop_price: Amount
    stop_direction: StopDirection

    def _render(self) -> dict[str, Any]:
        return {
            "base_size": decimal_str(self.base_size, "base_size"),
            "limit_price": decimal_str(self.limit_price, "limit_price"),
            "stop_price": decimal_str(self.stop_price, "stop_price"),
            "stop_direction": StopDirection(self.stop_direction).value,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class StopLimitGtd(_Rendered):
    """Stop-limit, good-till-date."""

    key: ClassVar[str] = "stop_limit_stop_limit_gtd"
    base_size: Amount
    limit_price: Amount
    stop_price: Amount
    stop_direction: StopDirection
    end_time: Timestamp

    def _render(self) -> dict[str, Any]:
        return {
            "base_size": decimal_str(self.base_size, "base_size"),
            "limit_price": decimal_str(self.limit_price, "limit_price"),
            "stop_price": decimal_str(self.stop_price, "stop_price"),
            "end_time": timestamp_str(self.end_time, "end_time"),
            "stop_direction": StopDirection(self.stop_direction).value,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerBracketGtc(_Rendered):
    """Bracket, good-till-cancelled: a take-profit limit and a stop trigger around a position."""

    key: ClassVar[str] = "trigger_bracket_gtc"
    base_size: Amount | None = None  # omitted when attached: the attached order takes the parent's size
    limit_price: Amount
    stop_trigger_price: Amount

    def _render(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.base_size is not None:
            body["base_size"] = decimal_str(self.base_size, "base_size")
        body.update(
            {
                "limit_price": decimal_str(self.limit_price, "limit_price"),
                "stop_trigger_price": decimal_str(self.stop_trigger_price, "stop_trigger_price"),
            }
        )
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerBracketGtd(_Rendered):
    """Bracket, good-till-date."""

    key: ClassVar[str] = "trigger_bracket_gtd"
    base_size: Amount | None = None  # omitted when attached: the attached order takes the parent's size
    limit_price: Amount
    stop_trigger_price: Amount
    end_time: Timestamp

    def _render(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.base_size is not None:
            body["base_size"] = decimal_str(self.base_size, "base_size")
        body.update(
            {
                "limit_price": decimal_str(self.limit_price, "limit_price"),
                "stop_trigger_price": decimal_str(self.stop_trigger_price, "stop_trigger_price"),
                "end_time": timestamp_str(self.end_time, "end_time"),
            }
        )
        return body


def _duration_str(value: object) -> str:
    """A protobuf duration (`"300s"`): whole seconds with at most nine decimal places."""
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise InvalidValue("bucket_duration", "must be positive")
        seconds = Decimal(value // timedelta(microseconds=1)).scaleb(-6).normalize()
        return f"{seconds:f}s"
    if isinstance(value, str) and _DURATION.fullmatch(value) and value.rstrip("s.0"):
        return value
    if isinstance(value, str):
        raise InvalidValue("bucket_duration", "must be a protobuf duration such as '300s' or '0.5s'")
    raise TypeError("bucket_duration must be a timedelta or a protobuf duration string such as '300s'")


@dataclass(frozen=True, slots=True, kw_only=True)
class TwapLimitGtd(_Rendered):
    """TWAP with a limit, good-till-date: worked in `number_buckets` slices between start and end."""

    key: ClassVar[str] = "twap_limit_gtd"
    limit_price: Amount
    start_time: Timestamp
    end_time: Timestamp
    number_buckets: int
    bucket_size: Amount
    bucket_duration: timedelta | str
    base_size: Amount | None = None
    quote_size: Amount | None = None

    def _render(self) -> dict[str, Any]:
        if isinstance(self.number_buckets, bool) or not isinstance(self.number_buckets, int):
            raise TypeError("number_buckets must be an int")
        if self.number_buckets < 1:
            raise ValueError("number_buckets must be at least 1")
        body = _sized(self.base_size, self.quote_size, kind=self.key)
        body["start_time"] = timestamp_str(self.start_time, "start_time")
        body["end_time"] = timestamp_str(self.end_time, "end_time")
        body["limit_price"] = decimal_str(self.limit_price, "limit_price")
        body["number_buckets"] = str(self.number_buckets)
        body["bucket_size"] = decimal_str(self.bucket_size, "bucket_size")
        body["bucket_duration"] = _duration_str(self.bucket_duration)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaledLimitGtc(_Rendered):
    """A ladder of `num_orders` GTC limit orders between `min_price` and `max_price`.

    Either describe the ladder (distributions, optional `size_diff`/`size_ratio`) or pass the child `orders`
    explicitly; Coinbase accepts both forms.
    """

    key: ClassVar[str] = "scaled_limit_gtc"
    min_price: Amount
    max_price: Amount
    num_orders: int
    base_size: Amount | None = None
    quote_size: Amount | None = None
    price_distribution: PriceDistribution = PriceDistribution.FLAT
    size_distribution: SizeDistribution = SizeDistribution.FLAT
    size_diff: Amount | None = None
    size_ratio: Amount | None = None
    orders: Sequence[LimitGtc] = ()

    def _render(self) -> dict[str, Any]:
        if isinstance(self.num_orders, bool) or not isinstance(self.num_orders, int) or self.num_orders < 2:
            raise ValueError("num_orders must be an int of at least 2")
        low = decimal_str(self.min_price, "min_price")
        high = decimal_str(self.max_price, "max_price")
        if Decimal(low) >= Decimal(high):
            raise ValueError(f"min_price {low} must be below max_price {high}")
        body = _sized(self.base_size, self.quote_size, kind=self.key)
        body.update(
            num_orders=self.num_orders,
            min_price=low,
            max_price=high,
            price_distribution=PriceDistribution(self.price_distribution).value,
            size_distribution=SizeDistribution(self.size_distribution).value,
        )
        if self.size_diff is not None:
            body["size_diff"] = decimal_str(self.size_diff, "size_diff", positive=False)
        if self.size_ratio is not None:
            body["size_ratio"] = decimal_str(self.size_ratio, "size_ratio")
        if self.orders:
            if not all(isinstance(o, LimitGtc) for o in self.orders):
                raise TypeError("scaled_limit_gtc child orders must be LimitGtc")
            body["orders"] = [o.fragment() for o in self.orders]
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRequest:
    """A complete create-order request. Its `body` is rendered once; retries resend these exact bytes."""

    product_id: str
    side: Side
    configuration: OrderConfiguration
    client_order_id: str = field(default_factory=new_client_order_id)
    leverage: Amount | None = None
    margin_type: MarginType | None = None
    preview_id: str | None = None
    attached_configuration: OrderConfiguration | None = None
    retail_portfolio_id: str | None = None
    self_trade_prevention_id: str | None = None
    prediction_metadata: Mapping[str, Any] | None = None
    equity_order_metadata: Mapping[str, Any] | None = None
    body: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > MAX_CLIENT_ORDER_ID:
            raise ValueError(f"client_order_id must be 1..{MAX_CLIENT_ORDER_ID} characters")
        object.__setattr__(self, "body", orjson.dumps(self.to_dict()))

    def to_dict(self, *, with_client_order_id: bool = True) -> dict[str, Any]:
        if not self.product_id:
            raise ValueError("product_id is required")
        if not isinstance(self.configuration, OrderConfiguration):
            raise TypeError("configuration must be an order configuration such as LimitGtc(...)")
        body: dict[str, Any] = {}
        if with_client_order_id:
            body["client_order_id"] = self.client_order_id
        body["product_id"] = self.product_id
        side = self.side
        body["side"] = side if side.__class__ is Side else Side(side)  # a StrEnum member is its JSON string
        configuration = self.configuration
        if (
            isinstance(configuration, TriggerBracketGtc | TriggerBracketGtd)
            and configuration.base_size is None
        ):
            raise InvalidValue("base_size", f"a standalone {configuration.key} order needs a base_size")
        body["order_configuration"] = configuration.payload()
        if self.leverage is not None:
            body["leverage"] = decimal_str(self.leverage, "leverage")
        if self.margin_type is not None:
            body["margin_type"] = MarginType(self.margin_type).value
        if self.preview_id is not None:
            body["preview_id"] = self.preview_id
        attached = self.attached_configuration
        if attached is not None:
            if isinstance(attached, TriggerBracketGtc | TriggerBracketGtd) and attached.base_size is not None:
                # https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/rest-api: the attached order
                # takes its size from the order it is attached to.
                raise InvalidValue(
                    "attached_order_configuration", "omit base_size: it takes the parent's size"
                )
            body["attached_order_configuration"] = attached.payload()
        if self.retail_portfolio_id is not None:
            body["retail_portfolio_id"] = self.retail_portfolio_id
        if self.self_trade_prevention_id is not None:
            body["self_trade_prevention_id"] = self.self_trade_prevention_id
        if self.prediction_metadata is not None:
            body["prediction_metadata"] = dict(self.prediction_metadata)
        if self.equity_order_metadata is not None:
            body["equity_order_metadata"] = dict(self.equity_order_metadata)
        return body

    def preview_body(self) -> bytes:
        """The body for `POST /orders/preview`: the same order without the client_order_id."""
        return orjson.dumps(self.to_dict(with_client_order_id=False))


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosePositionRequest:
    """A `POST /orders/close_position` request; its `body` is rendered once (sizes as decimal strings), so
    what is journalled is what is sent, on every attempt."""

    product_id: str
    size: Amount | None = None
    client_order_id: str = field(default_factory=new_client_order_id)
    body: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.client_order_id or len(self.client_order_id) > MAX_CLIENT_ORDER_ID:
            raise ValueError(f"client_order_id must be 1..{MAX_CLIENT_ORDER_ID} characters")
        if not self.product_id:
            raise ValueError("product_id is required")
        body: dict[str, str] = {"client_order_id": self.client_order_id, "product_id": self.product_id}
        if self.size is not None:
            body["size"] = decimal_str(self.size, "size")
        object.__setattr__(self, "body", orjson.dumps(body))
