"""The gateway's private methods: order entry and management, orders and trades, positions, the account,
leverage and margin. Every key trades the one simulated account (as on the Advanced Trade side)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.sim.book import ZERO
from engine.sim.derivatives.dispatcher import Caller, MethodTable
from engine.sim.derivatives.instruments import SETTLEMENT
from engine.sim.derivatives.orders import TRIGGER_TYPES, PerpOrder
from engine.sim.derivatives.rpc import Params, RpcError, invalid_param

if TYPE_CHECKING:
    from engine.sim.derivatives.gateway import DerivativesGateway

_CURRENCIES = frozenset({"USDC", "BTC", "ETH", "SOL", "any"})
_CANCEL_TYPES = frozenset({"all", "limit", "trigger_all", "stop", "take", "trailing_stop"})
_OPEN_TYPES = frozenset(
    {
        "all",
        "limit",
        "trigger_all",
        "stop_all",
        "stop_limit",
        "stop_market",
        "take_all",
        "take_limit",
        "take_market",
        "trailing_all",
        "trailing_stop",
    }
)


def _type_filter(kind: str) -> Any:
    def keep(order: PerpOrder) -> bool:
        t = order.order_type
        if kind == "all":
            return True
        if kind == "limit":
            return t not in TRIGGER_TYPES
        if kind == "trigger_all":
            return t in TRIGGER_TYPES
        if kind in ("stop", "stop_all"):
            return t.startswith("stop")
        if kind in ("take", "take_all"):
            return t.startswith("take")
        if kind in ("trailing_stop", "trailing_all"):
            return t == "trailing_stop"
        return t == kind

    return keep


def register(table: MethodTable, gw: DerivativesGateway) -> None:
    desk, margin = gw.desk, gw.margin

    def key_name(caller: Caller) -> str:
        return caller.key.name if caller.key is not None else ""

    def connection_id(caller: Caller) -> int | None:
        return caller.connection.id if caller.connection is not None else None

    def placed(order: PerpOrder, trades: list[dict[str, Any]]) -> dict[str, Any]:
        return {"order": desk.wire(order), "trades": trades}

    def buy(params: Params, caller: Caller) -> Any:
        return placed(
            *gw.accepted(desk.place("buy", params, key_name(caller), connection_id(caller)), caller)
        )

    def sell(params: Params, caller: Caller) -> Any:
        return placed(
            *gw.accepted(desk.place("sell", params, key_name(caller), connection_id(caller)), caller)
        )

    def edit(params: Params, caller: Caller) -> Any:
        return placed(*gw.accepted(desk.edit(desk.get(params.string("order_id")), params), caller))

    def edit_by_label(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        label = params.string("label")
        live = [
            o
            for o in desk.orders.values()
            if o.instrument_name == instrument.name and o.label == label and o.is_live
        ]
        if len(live) != 1:
            raise invalid_param("label", "must match exactly one open order" if live else "no open order")
        return placed(*gw.accepted(desk.edit(live[0], params), caller))

    def cancel(params: Params, caller: Caller) -> Any:
        return desk.wire(desk.cancel(params.string("order_id")))

    def cancelled(orders: list[PerpOrder], params: Params) -> Any:
        if params.boolean("detailed"):
            return [
                {"instrument_name": o.instrument_name, "result": "ok", "orders": [desk.wire(o)]}
                for o in orders
            ]
        return len(orders)

    def cancel_all(params: Params, caller: Caller) -> Any:
        return cancelled(desk.cancel_where(lambda o: True), params)

    def cancel_all_by_instrument(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        keep = _type_filter(params.string("type", "all", choices=_CANCEL_TYPES))
        return cancelled(
            desk.cancel_where(lambda o: o.instrument_name == instrument.name and keep(o)), params
        )

    def cancel_all_by_currency(params: Params, caller: Caller) -> Any:
        params.string("currency", choices=_CURRENCIES)
        keep = _type_filter(params.string("type", "all", choices=_CANCEL_TYPES))
        return cancelled(desk.cancel_where(keep), params)

    def cancel_by_label(params: Params, caller: Caller) -> Any:
        label = params.string("label")
        return cancelled(desk.cancel_where(lambda o: o.label == label), params)

    def close_position(params: Params, caller: Caller) -> Any:
        return placed(
            *gw.accepted(desk.close_position(params, key_name(caller), connection_id(caller)), caller)
        )

    def open_orders(keep: Any) -> list[dict[str, Any]]:
        return [desk.wire(o) for o in desk.orders.values() if o.is_live and keep(o)]

    def get_open_orders(params: Params, caller: Caller) -> Any:
        return open_orders(_type_filter(params.string("type", "all", choices=_OPEN_TYPES)))

    def get_open_orders_by_instrument(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        keep = _type_filter(params.string("type", "all", choices=_OPEN_TYPES))
        return open_orders(lambda o: o.instrument_name == instrument.name and keep(o))

    def get_open_orders_by_currency(params: Params, caller: Caller) -> Any:
        params.string("currency", choices=_CURRENCIES)
        return open_orders(_type_filter(params.string("type", "all", choices=_OPEN_TYPES)))

    def get_open_orders_by_label(params: Params, caller: Caller) -> Any:
        params.string("currency", choices=_CURRENCIES)
        label = params.string("label")
        return open_orders(lambda o: o.label == label)

    def get_order_state(params: Params, caller: Caller) -> Any:
        return desk.wire(desk.get(params.string("order_id")))

    def get_order_state_by_label(params: Params, caller: Caller) -> Any:
        params.string("currency", choices=_CURRENCIES)
        label = params.string("label")
        return [desk.wire(o) for o in desk.orders.values() if o.label == label]

    def history(params: Params, keep: Any) -> list[dict[str, Any]]:
        count = params.integer("count", 20, low=1, high=10_000)
        offset = params.integer("offset", 0)
        include_unfilled = params.boolean("include_unfilled")
        done = [
            o
            for o in reversed(list(desk.orders.values()))
            if not o.is_live and keep(o) and (include_unfilled or o.filled_amount > ZERO)
        ]
        return [desk.wire(o) for o in done[offset : offset + count]]

    def get_order_history_by_instrument(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        return history(params, lambda o: o.instrument_name == instrument.name)

    def get_order_history_by_currency(params: Params, caller: Caller) -> Any:
        params.string("currency", choices=_CURRENCIES)
        return history(params, lambda o: True)

    def user_trades(params: Params, keep: Any) -> dict[str, Any]:
        count = params.integer("count", 10, low=1, high=1000)
        sorting = params.string("sorting", "desc", choices=frozenset({"asc", "desc", "default"}))
        start = params.integer("start_timestamp", 0)
        end = params.integer("end_timestamp", 2**62)
        start_seq = params.integer("start_seq", 0)
        end_seq = params.integer("end_seq", 2**62)
        chosen = [
            t
            for t in desk.user_trades
            if keep(t) and start <= t["timestamp"] <= end and start_seq <= t["trade_seq"] <= end_seq
        ]
        page = chosen[:count] if sorting == "asc" else list(reversed(chosen))[:count]
        return {"trades": page, "has_more": len(chosen) > count}

    def get_user_trades_by_instrument(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        return user_trades(params, lambda t: t["instrument_name"] == instrument.name)

    def get_user_trades_by_currency(params: Params, caller: Caller) -> Any:
        params.string("currency", choices=_CURRENCIES)
        return user_trades(params, lambda t: True)

    def get_user_trades_by_order(params: Params, caller: Caller) -> Any:
        order_id = params.string("order_id")
        return [t for t in desk.user_trades if t["order_id"] == order_id]

    def get_positions(params: Params, caller: Caller) -> Any:
        if "currency" in params:
            params.string("currency", choices=_CURRENCIES)
        params.string("kind", "future", choices=frozenset({"future", "any", "option", "spot"}))
        return [margin.position_wire(name) for name in gw.instruments if margin.position(name) is not None]

    def get_position(params: Params, caller: Caller) -> Any:
        return margin.position_wire(desk.instrument(params).name)

    def get_account_summary(params: Params, caller: Caller) -> Any:
        currency = params.string("currency", choices=_CURRENCIES)
        if currency not in (SETTLEMENT, "any"):
            raise invalid_param("currency", "this account's collateral is USDC")
        return gw.account_summary(params.boolean("extended"))

    def get_account_summaries(params: Params, caller: Caller) -> Any:
        return {
            "summaries": [gw.account_summary(params.boolean("extended"))],
            "isolated_account_summaries": [],
        }

    def get_leverage(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        return {"instrument_name": instrument.name, "leverage": margin.leverage[instrument.name]}

    def set_leverage(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        leverage = params.required_decimal("leverage")
        if leverage != leverage.to_integral_value() or not 1 <= leverage <= instrument.spec.max_leverage:
            raise invalid_param("leverage", f"a whole number from 1 to {instrument.spec.max_leverage}")
        figures = margin.figures()
        margin.set_leverage(instrument.name, leverage)
        if margin.figures().available_funds < ZERO <= figures.available_funds:
            margin.set_leverage(instrument.name, Decimal(int(1 / instrument.market.spec.initial_margin_rate)))
            raise RpcError(10009, {"reason": "the position would need more margin than is available"})
        gw.publish_portfolio()
        return {"instrument_name": instrument.name, "leverage": leverage}

    def get_margins(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        amount = params.required_decimal("amount")
        price = params.required_decimal("price")
        rate = instrument.market.spec.initial_margin_rate
        need = (amount * price * rate).quantize(Decimal("0.00000001"))
        band = instrument.mark_price * Decimal("0.05")
        return {
            "buy": need,
            "sell": need,
            "max_price": instrument.mark_price + band,
            "min_price": instrument.mark_price - band,
        }

    def get_max_order_size(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        price = params.decimal("price") or instrument.mark_price
        leverage = params.decimal("leverage") or margin.leverage[instrument.name]
        available = max(ZERO, margin.figures().available_funds)
        step = instrument.spec.contract_size
        opening = (available * leverage / price / step).to_integral_value(rounding="ROUND_DOWN") * step
        position = margin.position(instrument.name)
        long = position.contracts if position is not None and position.contracts > ZERO else ZERO
        short = -position.contracts if position is not None and position.contracts < ZERO else ZERO
        return {
            "instrument_name": instrument.name,
            "max_tradable_amount": {
                "buy": opening + short,
                "sell": opening + long,
                "reduce_only": {"buy": short, "sell": long},
            },
        }

    for name, handler in (
        ("private/buy", buy),
        ("private/sell", sell),
        ("private/edit", edit),
        ("private/edit_by_label", edit_by_label),
        ("private/cancel", cancel),
        ("private/cancel_all", cancel_all),
        ("private/cancel_all_by_instrument", cancel_all_by_instrument),
        ("private/cancel_all_by_currency", cancel_all_by_currency),
        ("private/cancel_by_label", cancel_by_label),
        ("private/close_position", close_position),
    ):
        table.trade(name, handler)
    table.trade("private/set_leverage", set_leverage, matching=False)
    for name, handler in (
        ("private/get_open_orders", get_open_orders),
        ("private/get_open_orders_by_instrument", get_open_orders_by_instrument),
        ("private/get_open_orders_by_currency", get_open_orders_by_currency),
        ("private/get_open_orders_by_label", get_open_orders_by_label),
        ("private/get_order_state", get_order_state),
        ("private/get_order_state_by_label", get_order_state_by_label),
        ("private/get_order_history_by_instrument", get_order_history_by_instrument),
        ("private/get_order_history_by_currency", get_order_history_by_currency),
        ("private/get_user_trades_by_instrument", get_user_trades_by_instrument),
        ("private/get_user_trades_by_currency", get_user_trades_by_currency),
        ("private/get_user_trades_by_order", get_user_trades_by_order),
        ("private/get_positions", get_positions),
        ("private/get_position", get_position),
        ("private/get_account_summary", get_account_summary),
        ("private/get_account_summaries", get_account_summaries),
        ("private/get_leverage", get_leverage),
        ("private/get_margins", get_margins),
        ("private/get_max_order_size", get_max_order_size),
    ):
        table.read(name, handler)
