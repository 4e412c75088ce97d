"""The typed methods a perpetuals trader uses, the same over the trading socket and over HTTP.

Each method builds its JSON-RPC params (prices and amounts as exact numbers, enums as their wire values,
None left out so the gateway's default applies) and decodes the result into the method's type. Method and
parameter names are the gateway's (https://docs.cdp.coinbase.com/api-reference/coinbase-deribit-app-api/).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from engine.errors import ExchangeError, InvalidParams, RequestLost
from engine.marketdata.candle import Candle
from engine.venues.derivatives.codec import JSONRPC_INVALID_PARAMS, decode_result, number
from engine.venues.derivatives.types import (
    AccountSummaries,
    AccountSummary,
    CancelType,
    ChartData,
    Direction,
    FundingRate,
    IndexPrice,
    Instrument,
    InstrumentKind,
    LastTrades,
    Leverage,
    LinkedOrderType,
    Margins,
    MaxOrderSize,
    Order,
    OrderBookSnapshot,
    OrderResult,
    OrderType,
    Position,
    Sorting,
    TickerInfo,
    TimeInForce,
    Trigger,
    TriggerFillCondition,
    UserTrade,
    UserTrades,
)

__all__ = ["GatewayMethods", "LinkedOrder", "Number"]

T = TypeVar("T")
Number = Decimal | int | str  # never float: a float is already rounded

_any_decoder = msgspec.json.Decoder(float_hook=Decimal)

# Resolutions `public/get_tradingview_chart_data` takes, in seconds.
RESOLUTIONS = {
    "1": 60, "3": 180, "5": 300, "10": 600, "15": 900, "30": 1800, "60": 3600,
    "120": 7200, "180": 10800, "360": 21600, "720": 43200, "1D": 86400,
}  # fmt: skip


def _opt(value: Number | None, name: str) -> Any:
    return None if value is None else number(value, name)


@dataclass(frozen=True, slots=True)
class LinkedOrder:
    """One leg of a linked order (`otoco_config`): e.g. the take-profit and the stop-loss of an entry."""

    direction: Direction
    amount: Number
    type: OrderType = OrderType.LIMIT
    price: Number | None = None
    trigger: Trigger | None = None
    trigger_price: Number | None = None
    trigger_offset: Number | None = None
    label: str | None = None
    post_only: bool | None = None
    reduce_only: bool | None = None
    time_in_force: TimeInForce | None = None

    def to_wire(self) -> dict[str, Any]:
        leg = {
            "direction": self.direction.value,
            "amount": number(self.amount, "otoco_config.amount"),
            "type": self.type.value,
            "price": _opt(self.price, "otoco_config.price"),
            "trigger": None if self.trigger is None else self.trigger.value,
            "trigger_price": _opt(self.trigger_price, "otoco_config.trigger_price"),
            "trigger_offset": _opt(self.trigger_offset, "otoco_config.trigger_offset"),
            "label": self.label,
            "post_only": self.post_only,
            "reduce_only": self.reduce_only,
            "time_in_force": None if self.time_in_force is None else self.time_in_force.value,
        }
        return {name: value for name, value in leg.items() if value is not None}


class GatewayMethods:
    """Mixed into the trading session and the HTTP client, which provide `request`."""

    async def request(
        self,
        method: str,
        params: Mapping[str, Any],
        *,
        label: str | None = None,
        timeout_s: float | None = None,
    ) -> msgspec.Raw:
        raise NotImplementedError

    async def _call(
        self, method: str, params: Mapping[str, Any], result_type: Any, *, label: str | None = None
    ) -> Any:
        raw = await self.request(method, params, label=label)
        try:
            return decode_result(raw, result_type)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            if label is not None or method in _ORDER_ENTRY:
                # The gateway accepted something we cannot read: the order exists, so never report it lost.
                raise RequestLost(
                    f"{method} was answered but its result could not be read ({exc}); look the order up",
                    method=method,
                    label=label,
                ) from None
            raise ExchangeError(f"{method}: the gateway's result could not be read: {exc}") from None

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Any method by name; the result as plain Python values (numbers as `Decimal`)."""
        raw = await self.request(method, params or {})
        return _any_decoder.decode(raw if len(raw) else b"null")

    # -- orders -------------------------------------------------------------------------------------------

    async def buy(
        self,
        instrument_name: str,
        amount: Number | None = None,
        *,
        contracts: Number | None = None,
        type: OrderType = OrderType.LIMIT,
        price: Number | None = None,
        label: str | None = None,
        time_in_force: TimeInForce | None = None,
        post_only: bool | None = None,
        reject_post_only: bool | None = None,
        reduce_only: bool | None = None,
        trigger: Trigger | None = None,
        trigger_price: Number | None = None,
        trigger_offset: Number | None = None,
        valid_until: int | None = None,
        display_amount: Number | None = None,
        linked_order_type: LinkedOrderType | None = None,
        trigger_fill_condition: TriggerFillCondition | None = None,
        otoco_config: Sequence[LinkedOrder] | None = None,
        mmp: bool | None = None,
        isolated: bool | None = None,
        allocated_margin: Number | None = None,
    ) -> OrderResult:
        """Buy `amount` (base coin for the USDC perps) or `contracts`. `label` is ours, not unique."""
        return await self._order(
            "private/buy", instrument_name, amount, contracts, type, price, label, time_in_force,
            post_only, reject_post_only, reduce_only, trigger, trigger_price, trigger_offset, valid_until,
            display_amount, linked_order_type, trigger_fill_condition, otoco_config, mmp, isolated,
            allocated_margin,
        )  # fmt: skip

    async def sell(
        self,
        instrument_name: str,
        amount: Number | None = None,
        *,
        contracts: Number | None = None,
        type: OrderType = OrderType.LIMIT,
        price: Number | None = None,
        label: str | None = None,
        time_in_force: TimeInForce | None = None,
        post_only: bool | None = None,
        reject_post_only: bool | None = None,
        reduce_only: bool | None = None,
        trigger: Trigger | None = None,
        trigger_price: Number | None = None,
        trigger_offset: Number | None = None,
        valid_until: int | None = None,
        display_amount: Number | None = None,
        linked_order_type: LinkedOrderType | None = None,
        trigger_fill_condition: TriggerFillCondition | None = None,
        otoco_config: Sequence[LinkedOrder] | None = None,
        mmp: bool | None = None,
        isolated: bool | None = None,
        allocated_margin: Number | None = None,
    ) -> OrderResult:
        """Sell; the same parameters as `buy`."""
        return await self._order(
            "private/sell", instrument_name, amount, contracts, type, price, label, time_in_force,
            post_only, reject_post_only, reduce_only, trigger, trigger_price, trigger_offset, valid_until,
            display_amount, linked_order_type, trigger_fill_condition, otoco_config, mmp, isolated,
            allocated_margin,
        )  # fmt: skip

    async def _order(
        self,
        method: str,
        instrument_name: str,
        amount: Number | None,
        contracts: Number | None,
        type: OrderType,
        price: Number | None,
        label: str | None,
        time_in_force: TimeInForce | None,
        post_only: bool | None,
        reject_post_only: bool | None,
        reduce_only: bool | None,
        trigger: Trigger | None,
        trigger_price: Number | None,
        trigger_offset: Number | None,
        valid_until: int | None,
        display_amount: Number | None,
        linked_order_type: LinkedOrderType | None,
        trigger_fill_condition: TriggerFillCondition | None,
        otoco_config: Sequence[LinkedOrder] | None,
        mmp: bool | None,
        isolated: bool | None,
        allocated_margin: Number | None,
    ) -> OrderResult:
        if amount is None and contracts is None:
            raise InvalidParams(
                f"{method}: give amount or contracts", rpc_code=JSONRPC_INVALID_PARAMS, method=method
            )
        if label is not None and len(label) > 64:
            raise InvalidParams(
                f"{method}: label is {len(label)} characters, the gateway takes at most 64",
                rpc_code=JSONRPC_INVALID_PARAMS,
                method=method,
            )
        if (otoco_config is None) != (linked_order_type is None):
            raise InvalidParams(
                f"{method}: linked_order_type and otoco_config go together",
                rpc_code=JSONRPC_INVALID_PARAMS,
                method=method,
            )
        params: dict[str, Any] = {"instrument_name": instrument_name, "type": type.value}
        if amount is not None:
            params["amount"] = number(amount, "amount")
        if contracts is not None:
            params["contracts"] = number(contracts, "contracts")
        if price is not None:
            params["price"] = number(price, "price")
        if label is not None:
            params["label"] = label
        if time_in_force is not None:
            params["time_in_force"] = time_in_force.value
        if post_only is not None:
            params["post_only"] = post_only
        if reject_post_only is not None:
            params["reject_post_only"] = reject_post_only
        if reduce_only is not None:
            params["reduce_only"] = reduce_only
        if trigger is not None:
            params["trigger"] = trigger.value
        if trigger_price is not None:
            params["trigger_price"] = number(trigger_price, "trigger_price")
        if trigger_offset is not None:
            params["trigger_offset"] = number(trigger_offset, "trigger_offset")
        if valid_until is not None:
            params["valid_until"] = valid_until
        if display_amount is not None:
            params["display_amount"] = number(display_amount, "display_amount")
        if linked_order_type is not None:
            params["linked_order_type"] = linked_order_type.value
        if trigger_fill_condition is not None:
            params["trigger_fill_condition"] = trigger_fill_condition.value
        if otoco_config is not None:
            params["otoco_config"] = [leg.to_wire() for leg in otoco_config]
        if mmp is not None:
            params["mmp"] = mmp
        if isolated is not None:
            params["isolated"] = isolated
        if allocated_margin is not None:
            params["allocated_margin"] = number(allocated_margin, "allocated_margin")
        result: OrderResult = await self._call(method, params, OrderResult, label=label or "")
        return result

    async def edit(
        self,
        order_id: str,
        *,
        amount: Number | None = None,
        contracts: Number | None = None,
        price: Number | None = None,
        post_only: bool | None = None,
        reject_post_only: bool | None = None,
        reduce_only: bool | None = None,
        trigger_price: Number | None = None,
        trigger_offset: Number | None = None,
        valid_until: int | None = None,
        display_amount: Number | None = None,
    ) -> OrderResult:
        params = self._edit_params(
            amount, contracts, price, post_only, reject_post_only, reduce_only, trigger_price, trigger_offset,
            valid_until, display_amount,
        )  # fmt: skip
        params["order_id"] = order_id
        result: OrderResult = await self._call("private/edit", params, OrderResult)
        return result

    async def edit_by_label(
        self,
        instrument_name: str,
        label: str,
        *,
        amount: Number | None = None,
        contracts: Number | None = None,
        price: Number | None = None,
        post_only: bool | None = None,
        reject_post_only: bool | None = None,
        reduce_only: bool | None = None,
        trigger_price: Number | None = None,
        trigger_offset: Number | None = None,
        valid_until: int | None = None,
        display_amount: Number | None = None,
    ) -> OrderResult:
        """Edit the one open order with this label (the gateway refuses when the label is not unique)."""
        params = self._edit_params(
            amount, contracts, price, post_only, reject_post_only, reduce_only, trigger_price, trigger_offset,
            valid_until, display_amount,
        )  # fmt: skip
        params["instrument_name"] = instrument_name
        params["label"] = label
        result: OrderResult = await self._call("private/edit_by_label", params, OrderResult, label=label)
        return result

    @staticmethod
    def _edit_params(
        amount: Number | None,
        contracts: Number | None,
        price: Number | None,
        post_only: bool | None,
        reject_post_only: bool | None,
        reduce_only: bool | None,
        trigger_price: Number | None,
        trigger_offset: Number | None,
        valid_until: int | None,
        display_amount: Number | None,
    ) -> dict[str, Any]:
        return {
            "amount": _opt(amount, "amount"),
            "contracts": _opt(contracts, "contracts"),
            "price": _opt(price, "price"),
            "post_only": post_only,
            "reject_post_only": reject_post_only,
            "reduce_only": reduce_only,
            "trigger_price": _opt(trigger_price, "trigger_price"),
            "trigger_offset": _opt(trigger_offset, "trigger_offset"),
            "valid_until": valid_until,
            "display_amount": _opt(display_amount, "display_amount"),
        }

    async def cancel(self, order_id: str) -> Order:
        result: Order = await self._call("private/cancel", {"order_id": order_id}, Order)
        return result

    async def cancel_all(self) -> int:
        """Cancel every open order of the account; returns how many."""
        return int(await self._call("private/cancel_all", {}, Decimal))

    async def cancel_all_by_instrument(self, instrument_name: str, *, type: CancelType | None = None) -> int:
        params = {"instrument_name": instrument_name, "type": None if type is None else type.value}
        return int(await self._call("private/cancel_all_by_instrument", params, Decimal))

    async def cancel_by_label(self, label: str, *, currency: str | None = None) -> int:
        """Cancel every open order carrying `label` (labels are not unique); returns how many."""
        params = {"label": label, "currency": currency}
        return int(await self._call("private/cancel_by_label", params, Decimal))

    async def close_position(
        self, instrument_name: str, type: OrderType = OrderType.MARKET, *, price: Number | None = None
    ) -> OrderResult:
        """Close the whole position with a reduce-only `market` (or `limit` at `price`) order."""
        if type not in (OrderType.MARKET, OrderType.LIMIT):
            raise InvalidParams(
                "close_position takes type market or limit",
                rpc_code=JSONRPC_INVALID_PARAMS,
                method="private/close_position",
            )
        params = {"instrument_name": instrument_name, "type": type.value, "price": _opt(price, "price")}
        result: OrderResult = await self._call("private/close_position", params, OrderResult)
        return result

    # -- order and fill state -----------------------------------------------------------------------------

    async def get_open_orders(
        self, *, kind: InstrumentKind | None = None, type: str | None = None
    ) -> tuple[Order, ...]:
        params = {"kind": None if kind is None else kind.value, "type": type}
        result: tuple[Order, ...] = await self._call("private/get_open_orders", params, tuple[Order, ...])
        return result

    async def get_open_orders_by_instrument(
        self, instrument_name: str, *, type: str | None = None
    ) -> tuple[Order, ...]:
        params = {"instrument_name": instrument_name, "type": type}
        result: tuple[Order, ...] = await self._call(
            "private/get_open_orders_by_instrument", params, tuple[Order, ...]
        )
        return result

    async def get_order_state(self, order_id: str) -> Order:
        result: Order = await self._call("private/get_order_state", {"order_id": order_id}, Order)
        return result

    async def get_order_state_by_label(self, label: str, currency: str = "USDC") -> tuple[Order, ...]:
        """Every order with this label: how to settle an order whose reply was lost."""
        params = {"currency": currency, "label": label}
        result: tuple[Order, ...] = await self._call(
            "private/get_order_state_by_label", params, tuple[Order, ...]
        )
        return result

    async def get_order_history_by_instrument(
        self,
        instrument_name: str,
        *,
        count: int | None = None,
        offset: int | None = None,
        include_old: bool | None = None,
        include_unfilled: bool | None = None,
    ) -> tuple[Order, ...]:
        params = {
            "instrument_name": instrument_name,
            "count": count,
            "offset": offset,
            "include_old": include_old,
            "include_unfilled": include_unfilled,
        }
        result: tuple[Order, ...] = await self._call(
            "private/get_order_history_by_instrument", params, tuple[Order, ...]
        )
        return result

    async def get_user_trades_by_instrument(
        self,
        instrument_name: str,
        *,
        count: int | None = None,
        start_seq: int | None = None,
        end_seq: int | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        sorting: Sorting | None = None,
    ) -> UserTrades:
        params = {
            "instrument_name": instrument_name,
            "count": count,
            "start_seq": start_seq,
            "end_seq": end_seq,
            "start_timestamp": start_timestamp,
            "end_timestamp": end_timestamp,
            "sorting": None if sorting is None else sorting.value,
        }
        result: UserTrades = await self._call("private/get_user_trades_by_instrument", params, UserTrades)
        return result

    async def get_user_trades_by_order(self, order_id: str) -> tuple[UserTrade, ...]:
        result: tuple[UserTrade, ...] = await self._call(
            "private/get_user_trades_by_order", {"order_id": order_id}, tuple[UserTrade, ...]
        )
        return result

    # -- positions, balances, margin ----------------------------------------------------------------------

    async def get_positions(
        self, currency: str = "USDC", *, kind: InstrumentKind | None = None
    ) -> tuple[Position, ...]:
        params = {"currency": currency, "kind": None if kind is None else kind.value}
        result: tuple[Position, ...] = await self._call("private/get_positions", params, tuple[Position, ...])
        return result

    async def get_position(self, instrument_name: str) -> Position:
        result: Position = await self._call(
            "private/get_position", {"instrument_name": instrument_name}, Position
        )
        return result

    async def get_account_summary(
        self, currency: str = "USDC", *, extended: bool | None = None
    ) -> AccountSummary:
        params = {"currency": currency, "extended": extended}
        result: AccountSummary = await self._call("private/get_account_summary", params, AccountSummary)
        return result

    async def get_account_summaries(self, *, extended: bool | None = None) -> AccountSummaries:
        result: AccountSummaries = await self._call(
            "private/get_account_summaries", {"extended": extended}, AccountSummaries
        )
        return result

    async def get_leverage(self, instrument_name: str) -> Leverage:
        result: Leverage = await self._call(
            "private/get_leverage", {"instrument_name": instrument_name}, Leverage
        )
        return result

    async def set_leverage(self, instrument_name: str, leverage: int) -> Leverage:
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise InvalidParams(
                f"leverage must be a whole number >= 1, got {leverage!r}",
                rpc_code=JSONRPC_INVALID_PARAMS,
                method="private/set_leverage",
            )
        params = {"instrument_name": instrument_name, "leverage": leverage}
        result: Leverage = await self._call("private/set_leverage", params, Leverage)
        return result

    async def get_margins(self, instrument_name: str, amount: Number, price: Number) -> Margins:
        params = {
            "instrument_name": instrument_name,
            "amount": number(amount, "amount"),
            "price": number(price, "price"),
        }
        result: Margins = await self._call("private/get_margins", params, Margins)
        return result

    async def get_max_order_size(
        self, instrument_name: str, *, price: Number | None = None, leverage: int | None = None
    ) -> MaxOrderSize:
        params = {"instrument_name": instrument_name, "price": _opt(price, "price"), "leverage": leverage}
        result: MaxOrderSize = await self._call("private/get_max_order_size", params, MaxOrderSize)
        return result

    # -- market data on request ---------------------------------------------------------------------------

    async def get_instruments(
        self,
        currency: str = "USDC",
        *,
        kind: InstrumentKind | None = InstrumentKind.FUTURE,
        expired: bool | None = None,
    ) -> tuple[Instrument, ...]:
        params = {"currency": currency, "kind": None if kind is None else kind.value, "expired": expired}
        result: tuple[Instrument, ...] = await self._call(
            "public/get_instruments", params, tuple[Instrument, ...]
        )
        return result

    async def get_instrument(self, instrument_name: str) -> Instrument:
        result: Instrument = await self._call(
            "public/get_instrument", {"instrument_name": instrument_name}, Instrument
        )
        return result

    async def get_order_book(self, instrument_name: str, *, depth: int | None = None) -> OrderBookSnapshot:
        params = {"instrument_name": instrument_name, "depth": depth}
        result: OrderBookSnapshot = await self._call("public/get_order_book", params, OrderBookSnapshot)
        return result

    async def ticker(self, instrument_name: str) -> TickerInfo:
        result: TickerInfo = await self._call(
            "public/ticker", {"instrument_name": instrument_name}, TickerInfo
        )
        return result

    async def get_index_price(self, index_name: str) -> IndexPrice:
        result: IndexPrice = await self._call(
            "public/get_index_price", {"index_name": index_name}, IndexPrice
        )
        return result

    async def get_funding_rate_history(
        self, instrument_name: str, start_timestamp: int, end_timestamp: int
    ) -> tuple[FundingRate, ...]:
        params = {
            "instrument_name": instrument_name,
            "start_timestamp": start_timestamp,
            "end_timestamp": end_timestamp,
        }
        result: tuple[FundingRate, ...] = await self._call(
            "public/get_funding_rate_history", params, tuple[FundingRate, ...]
        )
        return result

    async def get_funding_rate_value(
        self, instrument_name: str, start_timestamp: int, end_timestamp: int
    ) -> Decimal:
        params = {
            "instrument_name": instrument_name,
            "start_timestamp": start_timestamp,
            "end_timestamp": end_timestamp,
        }
        result: Decimal = await self._call("public/get_funding_rate_value", params, Decimal)
        return result

    async def get_last_trades_by_instrument(
        self,
        instrument_name: str,
        *,
        count: int | None = None,
        start_seq: int | None = None,
        end_seq: int | None = None,
        sorting: Sorting | None = None,
    ) -> LastTrades:
        params = {
            "instrument_name": instrument_name,
            "count": count,
            "start_seq": start_seq,
            "end_seq": end_seq,
            "sorting": None if sorting is None else sorting.value,
        }
        result: LastTrades = await self._call("public/get_last_trades_by_instrument", params, LastTrades)
        return result

    async def get_tradingview_chart_data(
        self, instrument_name: str, start_timestamp: int, end_timestamp: int, resolution: str
    ) -> ChartData:
        if resolution not in RESOLUTIONS:
            raise InvalidParams(
                f"resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}",
                rpc_code=JSONRPC_INVALID_PARAMS,
                method="public/get_tradingview_chart_data",
            )
        params = {
            "instrument_name": instrument_name,
            "start_timestamp": start_timestamp,
            "end_timestamp": end_timestamp,
            "resolution": resolution,
        }
        result: ChartData = await self._call("public/get_tradingview_chart_data", params, ChartData)
        return result

    async def candles(
        self, instrument_name: str, start_timestamp: int, end_timestamp: int, resolution: str = "1"
    ) -> list[Candle]:
        """Chart data as venue-neutral candles (timestamps in ms here, as the gateway takes them)."""
        chart = await self.get_tradingview_chart_data(
            instrument_name, start_timestamp, end_timestamp, resolution
        )
        return chart_candles(instrument_name, chart, RESOLUTIONS[resolution])


def chart_candles(instrument_name: str, chart: ChartData, granularity_s: int) -> list[Candle]:
    volumes = chart.volume or (Decimal(0),) * len(chart.ticks)
    return [
        Candle(instrument_name, tick // 1000, granularity_s, open_, high, low, close, volume)
        for tick, open_, high, low, close, volume in zip(
            chart.ticks, chart.open, chart.high, chart.low, chart.close, volumes, strict=False
        )
    ]


_ORDER_ENTRY = frozenset(
    ("private/buy", "private/sell", "private/edit", "private/edit_by_label", "private/close_position")
)
