"""Orders: the normalized request (`OrderSpec`, parsed from any `order_configuration`), the live `Order`, its
`Fill`s, and their Advanced Trade JSON shapes.

Every configuration Coinbase documents is accepted. Market, limit (IOC/FOK/GTC/GTD, post-only), stop-limit,
bracket, scaled (a ladder of child limit orders, see `scaled.py`) and TWAP orders (slices over buckets, see
`twap.py`) behave as on Coinbase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.sim.book import ZERO
from engine.sim.clock import fmt, iso
from engine.sim.values import InvalidValue, parse_decimal, parse_time

if TYPE_CHECKING:
    from engine.sim.attached import AttachedBracket

MARKET = "MARKET"
LIMIT = "LIMIT"
STOP_LIMIT = "STOP_LIMIT"
BRACKET = "BRACKET"
TWAP = "TWAP"
SCALED = "LIMIT"  # a scaled order's children are limit orders

IOC = "IMMEDIATE_OR_CANCEL"
FOK = "FILL_OR_KILL"
GTC = "GOOD_UNTIL_CANCELLED"
GTD = "GOOD_UNTIL_DATE_TIME"

OPEN = "OPEN"
FILLED = "FILLED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
PENDING = "PENDING"

STOP_UP = "STOP_DIRECTION_STOP_UP"
STOP_DOWN = "STOP_DIRECTION_STOP_DOWN"

# order_configuration key -> (order_type, time_in_force)
CONFIGURATIONS: dict[str, tuple[str, str]] = {
    "market_market_ioc": (MARKET, IOC),
    "market_market_fok": (MARKET, FOK),
    "sor_limit_ioc": (LIMIT, IOC),
    "limit_limit_gtc": (LIMIT, GTC),
    "limit_limit_gtd": (LIMIT, GTD),
    "limit_limit_fok": (LIMIT, FOK),
    "stop_limit_stop_limit_gtc": (STOP_LIMIT, GTC),
    "stop_limit_stop_limit_gtd": (STOP_LIMIT, GTD),
    "trigger_bracket_gtc": (BRACKET, GTC),
    "trigger_bracket_gtd": (BRACKET, GTD),
    "twap_limit_gtd": (TWAP, GTD),
    "scaled_limit_gtc": (SCALED, GTC),
}


class OrderRefused(Exception):
    """The order is refused (Coinbase answers 200 with success=false and this error_response)."""

    def __init__(self, error: str, preview_failure_reason: str, message: str = "") -> None:
        super().__init__(message or error)
        self.error = error
        self.preview_failure_reason = preview_failure_reason
        self.message = message

    def error_response(self) -> dict[str, str]:
        return {
            "error": self.error,
            "message": self.message,
            "error_details": self.message,
            "preview_failure_reason": self.preview_failure_reason,
            "new_order_failure_reason": self.error if self.error != "UNKNOWN_FAILURE_REASON" else "",
        }


def _decimal(config: dict[str, Any], name: str, required: bool = False) -> Decimal | None:
    """A positive decimal field of a configuration; a bad one refuses the order, as Coinbase does."""
    raw = config.get(name)
    if raw is None or raw == "":
        if required:
            raise OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_ARGUMENT", f"{name} is required")
        return None
    try:  # a float is refused too: Coinbase wants decimal strings, and a float would lose precision
        return parse_decimal(raw, name)
    except InvalidValue as invalid:
        raise OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_ARGUMENT", str(invalid)) from None


@dataclass(slots=True)
class OrderSpec:
    config_key: str
    config: dict[str, Any]
    order_type: str
    time_in_force: str
    base_size: Decimal | None = None
    quote_size: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_direction: str | None = None
    end_time: float | None = None
    post_only: bool = False

    @classmethod
    def parse(cls, order_configuration: Any) -> OrderSpec:
        if not isinstance(order_configuration, dict) or len(order_configuration) != 1:
            raise OrderRefused(
                "UNSUPPORTED_ORDER_CONFIGURATION",
                "PREVIEW_INVALID_ORDER_CONFIG",
                "order_configuration must hold exactly one configuration",
            )
        ((key, config),) = order_configuration.items()
        if key not in CONFIGURATIONS or not isinstance(config, dict):
            raise OrderRefused(
                "UNSUPPORTED_ORDER_CONFIGURATION", "PREVIEW_INVALID_ORDER_CONFIG", f"unsupported {key!r}"
            )
        order_type, tif = CONFIGURATIONS[key]
        spec = cls(key, config, order_type, tif)
        spec.base_size = _decimal(config, "base_size")
        spec.quote_size = _decimal(config, "quote_size")
        spec.post_only = bool(config.get("post_only", False))
        if order_type == MARKET:
            if (spec.base_size is None) == (spec.quote_size is None):
                raise OrderRefused(
                    "INVALID_ARGUMENT",
                    "PREVIEW_INVALID_ARGUMENT",
                    "give exactly one of base_size or quote_size",
                )
            return spec
        if key == "scaled_limit_gtc":
            low, high = _decimal(config, "min_price"), _decimal(config, "max_price")
            orders = config.get("orders")
            if isinstance(orders, list) and orders:
                if not all(isinstance(o, dict) for o in orders):
                    raise OrderRefused(
                        "INVALID_ARGUMENT", "PREVIEW_INVALID_ARGUMENT", "orders must be a list of objects"
                    )
                children = [
                    (_decimal(o, "base_size", True), _decimal(o, "limit_price", True)) for o in orders
                ]
                spec.base_size = sum((size for size, _ in children if size is not None), ZERO)
                prices = [price for _, price in children if price is not None]
                low, high = min(prices), max(prices)
            if low is None or high is None:
                raise OrderRefused(
                    "INVALID_ARGUMENT", "PREVIEW_INVALID_ARGUMENT", "min_price/max_price required"
                )
            spec.limit_price = (low + high) / 2
        else:
            spec.limit_price = _decimal(config, "limit_price", required=True)
        if spec.base_size is None:
            if spec.quote_size is None or spec.limit_price is None:
                raise OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_ARGUMENT", "base_size is required")
            spec.base_size = spec.quote_size / spec.limit_price  # sized at the limit price
        if order_type == STOP_LIMIT:
            spec.stop_price = _decimal(config, "stop_price", required=True)
            direction = config.get("stop_direction")
            if direction not in (STOP_UP, STOP_DOWN):
                raise OrderRefused(
                    "INVALID_ARGUMENT", "PREVIEW_INVALID_STOP_DIRECTION", "stop_direction is required"
                )
            spec.stop_direction = str(direction)
        elif order_type == BRACKET:
            spec.stop_price = _decimal(config, "stop_trigger_price", required=True)
        if tif == GTD:
            try:
                spec.end_time = parse_time(config.get("end_time"), "end_time")
            except InvalidValue as invalid:
                raise OrderRefused("INVALID_ARGUMENT", "PREVIEW_INVALID_END_TIME", str(invalid)) from None
        return spec


@dataclass(slots=True)
class Fill:
    entry_id: str
    trade_id: str
    order_id: str
    product_id: str
    trade_time: float
    price: Decimal
    size: Decimal
    commission: Decimal
    side: str
    liquidity_indicator: str  # "MAKER" or "TAKER"
    size_in_quote: bool
    user_id: str
    retail_portfolio_id: str = ""

    def to_advanced(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "trade_time": iso(self.trade_time),
            "trade_type": "FILL",
            "price": fmt(self.price),
            "size": fmt(self.size),
            "commission": fmt(self.commission),
            "product_id": self.product_id,
            "sequence_timestamp": iso(self.trade_time),
            "liquidity_indicator": self.liquidity_indicator,
            "size_in_quote": self.size_in_quote,
            "user_id": self.user_id,
            "side": self.side,
            "retail_portfolio_id": self.retail_portfolio_id,
        }


@dataclass(slots=True)
class Order:
    order_id: str
    client_order_id: str
    product_id: str
    side: str  # "BUY" / "SELL"
    spec: OrderSpec
    created_time: float
    product_type: str = "SPOT"
    status: str = PENDING
    key_name: str = ""
    source: str = "advanced"  # "advanced" or "exchange": which API accepted it
    user_id: str = ""
    portfolio_uuid: str = ""
    leverage: str = ""
    margin_type: str = ""
    filled_size: Decimal = ZERO
    filled_value: Decimal = ZERO
    total_fees: Decimal = ZERO
    number_of_fills: int = 0
    last_fill_time: float | None = None
    hold_currency: str = ""
    hold_amount: Decimal = ZERO
    triggered: bool = False
    # the price it rests at once triggered: a bracket's stop leg works as a limit below (sell) or above (buy)
    working_price: Decimal | None = None
    originating_order_id: str = ""  # a scaled order's child names its parent
    children: list[str] = field(default_factory=list)  # a scaled order's child order ids
    # the take-profit / stop-loss bracket that comes to life when this order fills, and the order it became
    attached: AttachedBracket | None = None
    attached_order_id: str = ""
    cancel_message: str = ""
    done_time: float | None = None
    edit_history: list[dict[str, str]] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def resting_price(self) -> Decimal | None:
        return self.working_price if self.working_price is not None else self.spec.limit_price

    @property
    def leaves(self) -> Decimal:
        """Base size still to fill (market orders sized in quote have none: they never rest)."""
        if self.spec.base_size is None:
            return ZERO
        return max(ZERO, self.spec.base_size - self.filled_size)

    @property
    def average_filled_price(self) -> Decimal:
        return self.filled_value / self.filled_size if self.filled_size > ZERO else ZERO

    @property
    def trigger_status(self) -> str:
        if self.spec.order_type not in (STOP_LIMIT, BRACKET):
            return "INVALID_ORDER_TYPE"
        return "STOP_TRIGGERED" if self.triggered else "STOP_PENDING"

    def completion_percentage(self) -> str:
        if self.spec.base_size:
            pct = self.filled_size / self.spec.base_size * 100
        else:
            pct = Decimal(100) if self.status == FILLED else ZERO
        return fmt(pct.quantize(Decimal("0.01")))

    def to_advanced(self) -> dict[str, Any]:
        in_quote = self.spec.base_size is None
        return {
            "order_id": self.order_id,
            "product_id": self.product_id,
            "user_id": self.user_id,
            "order_configuration": {self.spec.config_key: self.spec.config},
            "side": self.side,
            "client_order_id": self.client_order_id,
            "status": self.status,
            "time_in_force": self.spec.time_in_force,
            "created_time": iso(self.created_time),
            "completion_percentage": self.completion_percentage(),
            "filled_size": fmt(self.filled_size),
            "average_filled_price": fmt(self.average_filled_price),
            "fee": "",
            "number_of_fills": str(self.number_of_fills),
            "filled_value": fmt(self.filled_value),
            "pending_cancel": False,
            "size_in_quote": in_quote,
            "total_fees": fmt(self.total_fees),
            "size_inclusive_of_fees": in_quote,
            "total_value_after_fees": fmt(
                self.filled_value + self.total_fees
                if self.side == "BUY"
                else self.filled_value - self.total_fees
            ),
            "trigger_status": self.trigger_status,
            "order_type": self.spec.order_type,
            "reject_reason": "",
            "settled": self.status != OPEN,
            "product_type": self.product_type,
            "reject_message": "",
            "cancel_message": self.cancel_message,
            "order_placement_source": "RETAIL_ADVANCED",
            "outstanding_hold_amount": fmt(self.hold_amount),
            "is_liquidation": False,
            "last_fill_time": iso(self.last_fill_time) if self.last_fill_time is not None else None,
            "edit_history": list(self.edit_history),
            "leverage": self.leverage,
            "margin_type": self.margin_type or "UNKNOWN_MARGIN_TYPE",
            "retail_portfolio_id": self.portfolio_uuid,
            "originating_order_id": self.originating_order_id,
            "attached_order_id": self.attached_order_id,
            **({"attached_order_configuration": self.attached.to_json()} if self.attached else {}),
        }

    def ledger_entry(self) -> dict[str, Any]:
        return {
            "client_order_id": self.client_order_id,
            "order_id": self.order_id,
            "product_id": self.product_id,
            "side": self.side,
            "order_configuration": {self.spec.config_key: self.spec.config},
            "status": self.status,
            "created_time": iso(self.created_time),
            "filled_size": fmt(self.filled_size),
            "key_name": self.key_name,
            "source": self.source,
        }
