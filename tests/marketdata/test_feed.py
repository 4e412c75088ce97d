"""The feed's handling of Coinbase envelopes, in the exact shapes the Advanced Trade WebSocket sends."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from engine.marketdata.book import OrderBook
from engine.marketdata.feed import MarketFeed, Ticker, Trade
from engine.marketdata.stream import Stream

D = Decimal


def envelope(channel: str, seq: int, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "channel": channel,
        "client_id": "",
        "timestamp": "2026-01-01T00:00:00.000000Z",
        "sequence_num": seq,
        "events": events,
    }


def l2(kind: str, *levels: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "type": kind,
        "product_id": "BTC-USD",
        "updates": [
            {"side": s, "event_time": "2026-01-01T00:00:00Z", "price_level": p, "new_quantity": q}
            for s, p, q in levels
        ],
    }


TICKER = {
    "type": "ticker",
    "product_id": "BTC-USD",
    "price": "60000.01",
    "volume_24_h": "123.4",
    "low_24_h": "59000",
    "high_24_h": "61000",
    "low_52_w": "15460",
    "high_52_w": "73000",
    "price_percent_chg_24_h": "1.5",
    "best_bid": "60000.00",
    "best_bid_quantity": "0.5",
    "best_ask": "60000.02",
    "best_ask_quantity": "0.7",
}


async def test_tickers_trades_and_books_reach_callbacks_and_iterators() -> None:
    feed = MarketFeed()
    seen_tickers: list[Ticker] = []
    seen_books: list[tuple[Decimal | None, Decimal | None]] = []
    async_seen: list[Trade] = []

    async def on_trade(trade: Trade) -> None:
        async_seen.append(trade)

    feed.on_ticker(seen_tickers.append, "BTC-USD")
    feed.on_ticker(
        lambda t: (_ for _ in ()).throw(RuntimeError("a broken strategy"))
    )  # must not stop the feed
    feed.on_book(lambda book: seen_books.append((book.best_bid(), book.best_ask())))
    feed.on_trade(on_trade)
    tickers = feed.ticker_stream("BTC-USD")
    other = feed.ticker_stream("ETH-USD")
    books = feed.book_stream("BTC-USD")

    feed.on_envelope(envelope("ticker", 1, [{"type": "snapshot", "tickers": [TICKER]}]), 111)
    feed.on_envelope(envelope("l2_data", 2, [l2("update", ("bid", "1", "1"))]), 112)  # before the snapshot
    feed.on_envelope(
        envelope("l2_data", 3, [l2("snapshot", ("bid", "100", "1"), ("offer", "101", "2"))]), 113
    )
    feed.on_envelope(envelope("l2_data", 4, [l2("update", ("offer", "100.5", "3"))]), 114)
    trade = {
        "trade_id": "7",
        "product_id": "BTC-USD",
        "price": "100.5",
        "size": "0.1",
        "side": "BUY",
        "time": "t",
    }
    feed.on_envelope(envelope("market_trades", 5, [{"type": "update", "trades": [trade]}]), 115)
    feed.on_envelope(envelope("heartbeats", 6, [{"current_time": "now", "heartbeat_counter": "1"}]), 116)
    await asyncio.sleep(0)  # let the coroutine callback run

    assert seen_tickers[0].price == D("60000.01")
    assert seen_tickers[0].received_ns == 111
    assert (seen_tickers[0].best_bid, seen_tickers[0].best_ask) == (D("60000.00"), D("60000.02"))
    assert seen_books == [(D("100"), D("101")), (D("100"), D("100.5"))]
    assert async_seen == [Trade("7", "BTC-USD", D("100.5"), D("0.1"), "BUY", "t", 115)]
    assert feed.last_heartbeat == "now"
    assert (await tickers.__anext__()).price == D("60000.01")
    book = await books.__anext__()
    assert isinstance(book, OrderBook)
    assert book.best_ask() == D("100.5")
    assert feed.best_bid_ask("BTC-USD") == (D("100"), D("100.5"))
    assert feed.best_bid_ask("ETH-USD") == (None, None)
    feed.close()
    assert [t async for t in other] == []


async def test_a_gap_invalidates_books_until_the_next_snapshot() -> None:
    feed = MarketFeed()
    feed.on_envelope(envelope("l2_data", 1, [l2("snapshot", ("bid", "100", "1"), ("offer", "101", "2"))]), 0)
    feed.on_gap()
    assert not feed.book("BTC-USD").ready
    feed.on_envelope(envelope("l2_data", 5, [l2("update", ("bid", "100", "0"))]), 0)
    assert feed.book("BTC-USD").best_bid() == D("100")  # ignored
    feed.tickers["BTC-USD"] = Ticker("BTC-USD", D("1"), D("99"), None, D("102"), None, None, "", 0)
    assert feed.best_bid_ask("BTC-USD") == (D("99"), D("102"))  # falls back to the ticker
    feed.on_envelope(envelope("l2_data", 6, [l2("snapshot", ("bid", "99", "1"))]), 0)
    assert feed.book("BTC-USD").snapshot() == {"bids": [(D("99"), D("1"))], "asks": []}


async def test_a_stream_drops_the_oldest_when_its_reader_falls_behind() -> None:
    stream: Stream[int] = Stream(maxlen=3)
    for i in range(5):
        stream.push(i)
    assert stream.dropped == 2
    reader = asyncio.ensure_future(stream.__anext__())
    assert await reader == 2
    stream.close()
    assert [i async for i in stream] == [3, 4]


async def test_a_waiting_reader_wakes_on_push() -> None:
    stream: Stream[str] = Stream()
    reader = asyncio.ensure_future(stream.__anext__())
    await asyncio.sleep(0)
    stream.push("tick")
    assert await asyncio.wait_for(reader, 1) == "tick"
