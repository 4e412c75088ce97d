"""The streams socket: a book snapshot then numbered changes a client can apply and check for gaps, and the
ticker, quote, trades, candle and funding channels."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.sim.faults import Faults
from tests.derivatives.sim.conftest import Gateway, Socket, serve_gateway

BTC = "BTC_USDC-PERPETUAL"


def _apply(levels: dict[Decimal, Decimal], entries: list[list[Any]]) -> None:
    for action, price, amount in entries:
        if action == "delete":
            del levels[Decimal(str(price))]
        else:
            levels[Decimal(str(price))] = Decimal(str(amount))


async def _changes(socket: Socket, count: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while len(seen) < count:
        data = await socket.notification(
            f"book.{BTC}.100ms", lambda d: d.get("type") == "change" and d not in seen
        )
        seen.append(data)
    return seen


async def test_book_snapshot_then_changes_rebuild_the_book(gateway: Gateway) -> None:
    socket = await gateway.streams()
    assert await socket.call("public/subscribe", {"channels": [f"book.{BTC}.100ms"]}) == [f"book.{BTC}.100ms"]
    snapshot = await socket.notification(f"book.{BTC}.100ms")
    assert snapshot["type"] == "snapshot"
    assert "prev_change_id" not in snapshot
    bids = {Decimal(str(p)): Decimal(str(a)) for _, p, a in snapshot["bids"]}
    asks = {Decimal(str(p)): Decimal(str(a)) for _, p, a in snapshot["asks"]}
    last = snapshot["change_id"]
    mark = gateway.sim.derivatives.instruments[BTC].mark_price
    for step in (1, 2, 3):
        gateway.sim.derivatives.set_mark(BTC, mark + 40 * step)
    for change in await _changes(socket, 3):
        assert change["prev_change_id"] == last
        last = change["change_id"]
        _apply(bids, change["bids"])
        _apply(asks, change["asks"])
    book = gateway.sim.derivatives.instruments[BTC].market.book
    assert bids == dict(book.bids.levels())
    assert asks == dict(book.asks.levels())


async def test_a_lost_message_shows_as_a_change_id_gap() -> None:
    async with serve_gateway(faults=Faults()) as gateway:
        socket = await gateway.streams()
        await socket.call("public/subscribe", {"channels": [f"book.{BTC}.100ms"]})
        snapshot = await socket.notification(f"book.{BTC}.100ms")
        mark = gateway.sim.derivatives.instruments[BTC].mark_price
        gateway.sim.faults.ws_gap_rate = 1.0
        gateway.sim.derivatives.set_mark(BTC, mark + 50)  # this change is lost
        gateway.sim.faults.ws_gap_rate = 0.0
        gateway.sim.derivatives.set_mark(BTC, mark + 100)
        (change,) = await _changes(socket, 1)
        assert change["prev_change_id"] != snapshot["change_id"]
        assert gateway.sim.derivatives.injected["ws_gap"] == 1


async def test_ticker_quote_trades_candles_and_funding(gateway: Gateway) -> None:
    socket = await gateway.streams()
    channels = [
        f"ticker.{BTC}.100ms",
        f"quote.{BTC}",
        f"trades.{BTC}.100ms",
        f"chart.trades.{BTC}.1",
        f"perpetual.{BTC}.100ms",
        f"book.{BTC}.none.10.100ms",
    ]
    assert await socket.call("public/subscribe", {"channels": channels}) == channels
    grouped = await socket.notification(f"book.{BTC}.none.10.100ms")
    assert len(grouped["bids"][0]) == 2
    trader = await gateway.trading()
    await trader.call("private/buy", {"instrument_name": BTC, "amount": 0.1, "type": "market"})
    trades = await socket.notification(f"trades.{BTC}.")
    assert trades[0]["direction"] == "buy"
    assert trades[0]["instrument_name"] == BTC
    candle = await socket.notification(f"chart.trades.{BTC}.1")
    assert candle["volume"] > 0
    assert candle["high"] >= candle["low"]
    gateway.sim.derivatives.set_mark(BTC, gateway.sim.derivatives.instruments[BTC].mark_price + 10)
    ticker = await socket.notification(f"ticker.{BTC}.")
    assert ticker["instrument_name"] == BTC
    assert ticker["best_ask_price"] > ticker["best_bid_price"]
    quote = await socket.notification(f"quote.{BTC}")
    assert set(quote) >= {"best_bid_price", "best_bid_amount", "best_ask_price", "best_ask_amount"}
    perpetual = await socket.notification(f"perpetual.{BTC}.")
    assert set(perpetual) == {"timestamp", "index_price", "interest"}
    now = gateway.sim.derivatives.now_ms()
    chart = await trader.call(
        "public/get_tradingview_chart_data",
        {
            "instrument_name": BTC,
            "start_timestamp": now - 3_600_000,
            "end_timestamp": now,
            "resolution": "1",
        },
    )
    assert chart["status"] == "ok"
    assert chart["volume"][-1] > 0
    assert len(chart["ticks"]) == len(chart["close"])
    last = await trader.call("public/get_last_trades_by_instrument", {"instrument_name": BTC, "count": 5})
    assert last["trades"][0]["direction"] == "buy"
