"""The gateway's public methods: instruments, book, ticker, index, funding, trades, candles, time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.sim.derivatives.dispatcher import HTTP, STREAMS, TRADING, Caller, MethodTable
from engine.sim.derivatives.instruments import KIND, SETTLEMENT
from engine.sim.derivatives.market_data import RESOLUTIONS
from engine.sim.derivatives.rpc import Params, RpcError, invalid_param

if TYPE_CHECKING:
    from engine.sim.derivatives.gateway import DerivativesGateway

VERSION = "1.2.26"
CURRENCIES = frozenset({"BTC", "ETH", "USDC", "USDT", "EURR", "SOL", "any"})


def register(table: MethodTable, gw: DerivativesGateway) -> None:
    desk, data, funding = gw.desk, gw.market_data, gw.funding

    def get_time(params: Params, caller: Caller) -> Any:
        return gw.now_ms()

    def test(params: Params, caller: Caller) -> Any:
        if params.optional_string("expected_result") == "exception":
            raise RpcError(11094, message="internal_server_error")
        return {"version": VERSION}

    def status(params: Params, caller: Caller) -> Any:
        return {"locked": "false", "locked_indices": []}

    def get_instruments(params: Params, caller: Caller) -> Any:
        currency = params.string("currency", choices=CURRENCIES)
        kind = params.string(
            "kind", KIND, choices=frozenset({"future", "option", "spot", "future_combo", "option_combo"})
        )
        if params.boolean("expired") or kind != KIND:
            return []
        return [
            i.to_wire()
            for i in gw.instruments.values()
            if currency in ("any", SETTLEMENT, i.spec.base_currency)
        ]

    def get_instrument(params: Params, caller: Caller) -> Any:
        return desk.instrument(params).to_wire()

    def get_contract_size(params: Params, caller: Caller) -> Any:
        return {"contract_size": desk.instrument(params).spec.contract_size}

    def get_order_book(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        depth = params.integer("depth", 20, low=1, high=10_000)
        return data.order_book(instrument, depth, gw.now_ms())

    def ticker(params: Params, caller: Caller) -> Any:
        return data.ticker(desk.instrument(params), gw.now_ms())

    def get_index_price(params: Params, caller: Caller) -> Any:
        name = params.string("index_name")
        for instrument in gw.instruments.values():
            if name in (instrument.spec.index_name, f"drbfix-{instrument.spec.index_name}"):
                return {
                    "index_price": instrument.index_price,
                    "estimated_delivery_price": instrument.index_price,
                }
        raise invalid_param("index_name", "unknown index")

    def get_index_price_names(params: Params, caller: Caller) -> Any:
        return [i.spec.index_name for i in gw.instruments.values()]

    def _window(params: Params) -> tuple[int, int]:
        start = params.integer("start_timestamp")
        end = params.integer("end_timestamp")
        if end < start:
            raise invalid_param("end_timestamp", "before start_timestamp")
        return start, end

    def get_funding_rate_history(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        start, end = _window(params)
        return [p.to_wire() for p in funding.between(instrument.name, start, end)]

    def get_funding_rate_value(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        start, end = _window(params)
        return funding.value(instrument.name, start, end)

    def get_last_trades_by_instrument(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        count = params.integer("count", 10, low=1, high=1000)
        sorting = params.string("sorting", "desc", choices=frozenset({"asc", "desc", "default"}))
        trades = list(data.trades[instrument.name])
        start = params.integer("start_timestamp", 0)
        end = params.integer("end_timestamp", 2**62)
        trades = [t for t in trades if start <= t.timestamp_ms <= end]
        chosen = trades[-count:]
        if sorting != "asc":
            chosen.reverse()
        return {"trades": [t.to_wire() for t in chosen], "has_more": len(trades) > count}

    def get_tradingview_chart_data(params: Params, caller: Caller) -> Any:
        instrument = desk.instrument(params)
        start, end = _window(params)
        resolution = params.raw().get("resolution")
        key = (
            str(resolution) if isinstance(resolution, int | str) and not isinstance(resolution, bool) else ""
        )
        if key not in RESOLUTIONS:
            raise invalid_param("resolution", f"one of {sorted(RESOLUTIONS)}")
        return data.chart_data(instrument, start, end, RESOLUTIONS[key])

    everywhere = frozenset({HTTP, TRADING, STREAMS})  # the SDK answers a test_request with public/test
    table.public("public/get_time", get_time, everywhere)
    table.public("public/test", test, everywhere)
    for name, handler in (
        ("public/status", status),
        ("public/get_instruments", get_instruments),
        ("public/get_instrument", get_instrument),
        ("public/get_contract_size", get_contract_size),
        ("public/get_order_book", get_order_book),
        ("public/ticker", ticker),
        ("public/get_index_price", get_index_price),
        ("public/get_index_price_names", get_index_price_names),
        ("public/get_funding_rate_history", get_funding_rate_history),
        ("public/get_funding_rate_value", get_funding_rate_value),
        ("public/get_last_trades_by_instrument", get_last_trades_by_instrument),
        ("public/get_tradingview_chart_data", get_tradingview_chart_data),
    ):
        table.public(name, handler)
