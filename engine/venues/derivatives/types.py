"""The gateway's values, decoded from JSON-RPC results in one pass (msgspec) into frozen structs.

Numbers arrive as JSON numbers; every amount and price is decoded straight from its text into a `Decimal`,
so nothing passes through a float. Closed sets (sides, order states and types, time in force) are enums;
sets the gateway may extend (cancel reasons, trigger kinds) stay strings, so a new value never makes an
accepted order undecodable. Field names are the gateway's (https://docs.cdp.coinbase.com/api-reference/).
"""

from __future__ import annotations

import enum
from decimal import Decimal

import msgspec

__all__ = [
    "AccountSummaries",
    "AccountSummary",
    "AuthResult",
    "BookMessage",
    "CancelType",
    "ChartData",
    "ChartTrades",
    "Direction",
    "FundingRate",
    "IndexPrice",
    "Instrument",
    "InstrumentKind",
    "LastTrades",
    "Leverage",
    "LinkedOrderType",
    "Margins",
    "MaxOrderSize",
    "MaxTradableAmount",
    "Order",
    "OrderBookSnapshot",
    "OrderResult",
    "OrderState",
    "OrderType",
    "PerpetualState",
    "Position",
    "PositionDirection",
    "PublicTrade",
    "Quote",
    "Sorting",
    "TickerInfo",
    "TickerStats",
    "TimeInForce",
    "Trigger",
    "TriggerFillCondition",
    "UserChanges",
    "UserTrade",
    "UserTrades",
]


class Direction(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class PositionDirection(enum.Enum):
    BUY = "buy"
    SELL = "sell"
    ZERO = "zero"


class OrderType(enum.Enum):
    LIMIT = "limit"
    MARKET = "market"
    STOP_LIMIT = "stop_limit"
    STOP_MARKET = "stop_market"
    TAKE_LIMIT = "take_limit"
    TAKE_MARKET = "take_market"
    MARKET_LIMIT = "market_limit"  # fills like a market order, the rest rests as a limit
    TRAILING_STOP = "trailing_stop"


class TimeInForce(enum.Enum):
    GOOD_TIL_CANCELLED = "good_til_cancelled"
    GOOD_TIL_DAY = "good_til_day"
    FILL_OR_KILL = "fill_or_kill"
    IMMEDIATE_OR_CANCEL = "immediate_or_cancel"


class OrderState(enum.Enum):
    OPEN = "open"
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    UNTRIGGERED = "untriggered"
    TRIGGERED = "triggered"
    ARCHIVE = "archive"  # only in user trades of old orders


class Trigger(enum.Enum):
    """What a stop, take or trailing order watches."""

    INDEX_PRICE = "index_price"
    MARK_PRICE = "mark_price"
    LAST_PRICE = "last_price"


class LinkedOrderType(enum.Enum):
    ONE_TRIGGERS_OTHER = "one_triggers_other"
    ONE_CANCELS_OTHER = "one_cancels_other"
    ONE_TRIGGERS_ONE_CANCELS_OTHER = "one_triggers_one_cancels_other"


class TriggerFillCondition(enum.Enum):
    FIRST_HIT = "first_hit"
    COMPLETE_FILL = "complete_fill"
    INCREMENTAL = "incremental"


class CancelType(enum.Enum):
    """Which orders `cancel_all_by_instrument` takes."""

    ALL = "all"
    LIMIT = "limit"
    TRIGGER_ALL = "trigger_all"
    STOP = "stop"
    TAKE = "take"
    TRAILING_STOP = "trailing_stop"


class InstrumentKind(enum.Enum):
    FUTURE = "future"
    OPTION = "option"
    SPOT = "spot"
    FUTURE_COMBO = "future_combo"
    OPTION_COMBO = "option_combo"


class Sorting(enum.Enum):
    ASC = "asc"
    DESC = "desc"
    DEFAULT = "default"


class _Value(msgspec.Struct, frozen=True, kw_only=True):
    """Base: immutable, keyword-only, unknown fields ignored (the gateway adds fields over time)."""


class AuthResult(_Value, frozen=True, kw_only=True):
    access_token: str = msgspec.field(default="")
    expires_in: float = 0.0
    scope: str = ""
    token_type: str = ""

    def __repr__(self) -> str:  # the token never reaches a log through a repr
        return (
            f"AuthResult(expires_in={self.expires_in}, scope={self.scope!r}, token_type={self.token_type!r})"
        )


class Order(_Value, frozen=True, kw_only=True):
    """One order as the gateway reports it. `price` is None for a trigger-market order still waiting."""

    order_id: str
    instrument_name: str
    direction: Direction
    order_state: OrderState
    order_type: OrderType
    amount: Decimal | None = None
    contracts: Decimal | None = None
    filled_amount: Decimal = Decimal(0)
    average_price: Decimal | None = None
    price_raw: msgspec.Raw = msgspec.field(default=msgspec.Raw(b"null"), name="price")
    label: str = ""
    time_in_force: TimeInForce | None = None
    post_only: bool = False
    reject_post_only: bool = False
    reduce_only: bool = False
    creation_timestamp: int = 0
    last_update_timestamp: int = 0
    original_order_type: str | None = None  # Starbase reports market orders as limit, with this "market"
    cancel_reason: str | None = None
    trigger: str | None = None
    trigger_price: Decimal | None = None
    trigger_offset: Decimal | None = None
    trigger_reference_price: Decimal | None = None
    triggered: bool | None = None
    trigger_order_id: str | None = None
    trigger_fill_condition: str | None = None
    oco_ref: str | None = None
    oto_order_ids: tuple[str, ...] = ()
    primary_order_id: str | None = None
    is_primary_otoco: bool | None = None
    is_secondary_oto: bool | None = None
    display_amount: Decimal | None = None
    refresh_amount: Decimal | None = None
    replaced: bool = False
    is_liquidation: bool = False
    risk_reducing: bool = False
    mmp: bool = False
    api: bool = True
    isolated: bool | None = None
    starbase_order_id: int | str | None = None
    starbase_client_order_id: str | None = None
    starbase_last_update_timestamp: int | None = None

    @property
    def price(self) -> Decimal | None:
        """The limit price; None when the gateway says `"market_price"` (an untriggered market order)."""
        raw = bytes(self.price_raw)
        if raw == b"null" or raw[:1] == b'"':
            return None
        return Decimal(raw.decode())

    @property
    def is_open(self) -> bool:
        return self.order_state in (OrderState.OPEN, OrderState.UNTRIGGERED)

    @property
    def remaining(self) -> Decimal | None:
        return None if self.amount is None else self.amount - self.filled_amount


class UserTrade(_Value, frozen=True, kw_only=True):
    """One of our fills."""

    trade_id: str
    order_id: str
    instrument_name: str
    direction: Direction
    price: Decimal
    amount: Decimal
    timestamp: int = 0
    trade_seq: int = 0
    fee: Decimal = Decimal(0)
    fee_currency: str = ""
    liquidity: str = ""  # "M" maker, "T" taker
    order_type: str = ""
    state: str = ""  # the order's state after this fill
    label: str = ""
    mark_price: Decimal | None = None
    index_price: Decimal | None = None
    profit_loss: Decimal | None = None
    reduce_only: bool = False
    post_only: bool = False
    matching_id: str | None = None


class OrderResult(_Value, frozen=True, kw_only=True):
    """What buy, sell, edit and close_position return: the order and the fills it made at once."""

    order: Order
    trades: tuple[UserTrade, ...] = ()


class UserTrades(_Value, frozen=True, kw_only=True):
    trades: tuple[UserTrade, ...] = ()
    has_more: bool = False


class Position(_Value, frozen=True, kw_only=True):
    instrument_name: str
    direction: PositionDirection = PositionDirection.ZERO
    size: Decimal = Decimal(0)
    kind: str = "future"
    size_currency: Decimal | None = None
    average_price: Decimal | None = None
    mark_price: Decimal | None = None
    index_price: Decimal | None = None
    floating_profit_loss: Decimal | None = None
    realized_profit_loss: Decimal | None = None
    total_profit_loss: Decimal | None = None
    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    open_orders_margin: Decimal | None = None
    estimated_liquidation_price: Decimal | None = None
    leverage: Decimal | None = None
    settlement_price: Decimal | None = None
    delta: Decimal | None = None
    realized_funding: Decimal | None = None
    interest_value: Decimal | None = None


class AccountSummary(_Value, frozen=True, kw_only=True):
    """Balances and margin of one currency; also what `user.portfolio.{currency}` pushes."""

    currency: str
    balance: Decimal | None = None
    equity: Decimal | None = None
    available_funds: Decimal | None = None
    available_withdrawal_funds: Decimal | None = None
    margin_balance: Decimal | None = None
    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    projected_initial_margin: Decimal | None = None
    projected_maintenance_margin: Decimal | None = None
    session_upl: Decimal | None = None
    session_rpl: Decimal | None = None
    total_pl: Decimal | None = None
    futures_pl: Decimal | None = None
    margin_model: str | None = None
    fee_balance: Decimal | None = None


class AccountSummaries(_Value, frozen=True, kw_only=True):
    summaries: tuple[AccountSummary, ...] = ()
    isolated_account_summaries: tuple[AccountSummary, ...] = ()


class Instrument(_Value, frozen=True, kw_only=True):
    instrument_name: str
    kind: str = "future"
    base_currency: str = ""
    quote_currency: str = ""
    settlement_currency: str | None = None
    counter_currency: str | None = None
    contract_size: Decimal = Decimal(1)
    tick_size: Decimal = Decimal(0)
    min_trade_amount: Decimal = Decimal(0)
    is_active: bool = True
    settlement_period: str | None = None
    max_leverage: int | None = None
    instrument_id: int | None = None
    price_index: str | None = None
    taker_commission: Decimal | None = None
    maker_commission: Decimal | None = None
    creation_timestamp: int | None = None
    expiration_timestamp: int | None = None


class OrderBookSnapshot(_Value, frozen=True, kw_only=True):
    """`public/get_order_book`: levels as (price, amount), best first."""

    instrument_name: str
    bids: tuple[tuple[Decimal, Decimal], ...] = ()
    asks: tuple[tuple[Decimal, Decimal], ...] = ()
    timestamp: int = 0
    change_id: int | None = None
    state: str | None = None
    best_bid_price: Decimal | None = None
    best_bid_amount: Decimal | None = None
    best_ask_price: Decimal | None = None
    best_ask_amount: Decimal | None = None
    mark_price: Decimal | None = None
    index_price: Decimal | None = None
    last_price: Decimal | None = None
    open_interest: Decimal | None = None
    current_funding: Decimal | None = None
    funding_8h: Decimal | None = None


class TickerStats(_Value, frozen=True, kw_only=True):
    volume: Decimal | None = None
    volume_usd: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    price_change: Decimal | None = None


class TickerInfo(_Value, frozen=True, kw_only=True):
    """`public/ticker` and the `ticker.{instrument}.{interval}` channel."""

    instrument_name: str
    timestamp: int = 0
    state: str | None = None
    last_price: Decimal | None = None
    mark_price: Decimal | None = None
    index_price: Decimal | None = None
    best_bid_price: Decimal | None = None
    best_bid_amount: Decimal | None = None
    best_ask_price: Decimal | None = None
    best_ask_amount: Decimal | None = None
    open_interest: Decimal | None = None
    current_funding: Decimal | None = None
    funding_8h: Decimal | None = None
    interest_value: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    settlement_price: Decimal | None = None
    stats: TickerStats = msgspec.field(default_factory=TickerStats)


class IndexPrice(_Value, frozen=True, kw_only=True):
    index_price: Decimal
    estimated_delivery_price: Decimal | None = None


class FundingRate(_Value, frozen=True, kw_only=True):
    """One hour of `public/get_funding_rate_history`."""

    timestamp: int
    index_price: Decimal | None = None
    prev_index_price: Decimal | None = None
    interest_8h: Decimal | None = None
    interest_1h: Decimal | None = None


class PublicTrade(_Value, frozen=True, kw_only=True):
    trade_id: str
    instrument_name: str
    price: Decimal
    amount: Decimal
    direction: Direction
    timestamp: int = 0
    trade_seq: int = 0
    index_price: Decimal | None = None
    mark_price: Decimal | None = None
    tick_direction: int | None = None
    liquidation: str | None = None


class LastTrades(_Value, frozen=True, kw_only=True):
    trades: tuple[PublicTrade, ...] = ()
    has_more: bool = False


class ChartData(_Value, frozen=True, kw_only=True):
    """`public/get_tradingview_chart_data`: candles as parallel arrays (see `candles`)."""

    status: str = "ok"
    ticks: tuple[int, ...] = ()
    open: tuple[Decimal, ...] = ()
    high: tuple[Decimal, ...] = ()
    low: tuple[Decimal, ...] = ()
    close: tuple[Decimal, ...] = ()
    volume: tuple[Decimal, ...] = ()
    cost: tuple[Decimal, ...] = ()


class Leverage(_Value, frozen=True, kw_only=True):
    instrument_name: str = ""
    leverage: Decimal = Decimal(0)


class Margins(_Value, frozen=True, kw_only=True):
    """`private/get_margins`: margin needed to buy or sell `amount` at `price`, and the price band."""

    buy: Decimal | None = None
    sell: Decimal | None = None
    max_price: Decimal | None = None
    min_price: Decimal | None = None


class MaxTradableAmount(_Value, frozen=True, kw_only=True):
    buy: Decimal | None = None
    sell: Decimal | None = None
    reduce_only: MaxTradableAmount | None = None


class MaxOrderSize(_Value, frozen=True, kw_only=True):
    instrument_name: str = ""
    max_tradable_amount: MaxTradableAmount = msgspec.field(default_factory=MaxTradableAmount)


class UserChanges(_Value, frozen=True, kw_only=True):
    """`user.changes.*`: what one matching event changed, orders, fills and positions together."""

    instrument_name: str = ""
    orders: tuple[Order, ...] = ()
    trades: tuple[UserTrade, ...] = ()
    positions: tuple[Position, ...] = ()


# -- notifications of the streams host ------------------------------------------------------------------


class BookMessage(_Value, frozen=True, kw_only=True):
    """`book.{instrument}.{interval}`: a snapshot first, then changes chained by `prev_change_id`."""

    instrument_name: str
    change_id: int
    prev_change_id: int | None = None
    type: str | None = None  # "snapshot" or "change"
    timestamp: int = 0
    bids: tuple[tuple[str, Decimal, Decimal], ...] = ()  # (action new|change|delete, price, amount)
    asks: tuple[tuple[str, Decimal, Decimal], ...] = ()


class Quote(_Value, frozen=True, kw_only=True):
    """`quote.{instrument}`: the top of the book."""

    instrument_name: str
    timestamp: int = 0
    best_bid_price: Decimal | None = None
    best_bid_amount: Decimal | None = None
    best_ask_price: Decimal | None = None
    best_ask_amount: Decimal | None = None


class PerpetualState(_Value, frozen=True, kw_only=True):
    """`perpetual.{instrument}.{interval}`: the index price and the current funding interest."""

    index_price: Decimal
    interest: Decimal
    timestamp: int = 0


class ChartTrades(_Value, frozen=True, kw_only=True):
    """`chart.trades.{instrument}.{resolution}`: the current candle."""

    tick: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
