"""Market data for strategies: level2 books, tickers and trades, by async iterator or by callback.

`MarketFeed` is the `on_envelope` of a market-data `CoinbaseSocket`. It keeps one `OrderBook` per product and
the latest `Ticker`, and hands each event to the callbacks registered for it (called inline, in arrival order:
the shortest path from a tick to a strategy's decision) and to every open async iterator.

Callbacks may be plain functions or coroutine functions. A coroutine becomes a task, so a strategy waiting for
its order's answer never stalls the socket reader; on Python 3.12+ the task starts eagerly (engine._eager): it
runs inline, on the socket reader's turn, up to its first real wait (an order placed from it is written to the
connection before the reader reads on). On 3.11 it starts on the loop's next turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from engine._eager import start_eager
from engine.marketdata.book import OrderBook
from engine.marketdata.stream import Stream

log = logging.getLogger(__name__)

T = TypeVar("T")
Callback = Callable[[T], "Awaitable[Any] | None"]


def _decimal(value: Any) -> Decimal | None:
    return Decimal(value) if value not in (None, "") else None


@dataclass(frozen=True, slots=True)
class Ticker:
    product_id: str
    price: Decimal
    best_bid: Decimal | None
    best_bid_quantity: Decimal | None
    best_ask: Decimal | None
    best_ask_quantity: Decimal | None
    volume_24_h: Decimal | None
    timestamp: str  # the exchange's envelope timestamp
    received_ns: int  # perf_counter_ns() as the engine got the message (aiohttp has parsed the frame)

    @classmethod
    def from_wire(cls, raw: dict[str, Any], timestamp: str, received_ns: int) -> Ticker:
        return cls(
            raw["product_id"],
            Decimal(raw["price"]),
            _decimal(raw.get("best_bid")),
            _decimal(raw.get("best_bid_quantity")),
            _decimal(raw.get("best_ask")),
            _decimal(raw.get("best_ask_quantity")),
            _decimal(raw.get("volume_24_h")),
            timestamp,
            received_ns,
        )


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: str
    product_id: str
    price: Decimal
    size: Decimal
    side: str  # the taker's side, as Coinbase reports it
    time: str
    received_ns: int

    @classmethod
    def from_wire(cls, raw: dict[str, Any], received_ns: int) -> Trade:
        return cls(
            raw["trade_id"],
            raw["product_id"],
            Decimal(raw["price"]),
            Decimal(raw["size"]),
            raw["side"],
            raw["time"],
            received_ns,
        )


class _Fanout:
    """The callbacks and iterators of one event kind, optionally per product."""

    __slots__ = ("callbacks", "streams", "tasks")

    def __init__(self) -> None:
        self.callbacks: list[tuple[str | None, Callable[[Any], Any]]] = []
        self.streams: list[tuple[str | None, Stream[Any]]] = []
        self.tasks: set[asyncio.Task[Any]] = set()  # strong references to running coroutine callbacks

    def deliver(self, product_id: str, item: Any) -> None:
        for wanted, callback in self.callbacks:
            if wanted is None or wanted == product_id:
                try:
                    result = callback(item)
                except Exception:
                    log.exception("market data callback %r failed", callback)
                    continue
                if result is not None and asyncio.iscoroutine(result):
                    task = start_eager(result)
                    if task.done():
                        self._finished(task)
                    else:
                        self.tasks.add(task)
                        task.add_done_callback(self._finished)
        for wanted, stream in self.streams:
            if wanted is None or wanted == product_id:
                stream.push(item)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("market data callback failed", exc_info=task.exception())


class MarketFeed:
    """Books, tickers and trades from a market-data socket. Register interest before or after starting."""

    def __init__(self) -> None:
        self.books: dict[str, OrderBook] = {}
        self.tickers: dict[str, Ticker] = {}
        self._tickers = _Fanout()
        self._trades = _Fanout()
        self._books = _Fanout()
        self.last_heartbeat: str | None = None
        self.snapshots = 0

    def book(self, product_id: str) -> OrderBook:
        book = self.books.get(product_id)
        if book is None:
            book = self.books[product_id] = OrderBook(product_id)
        return book

    def best_bid_ask(self, product_id: str) -> tuple[Decimal | None, Decimal | None]:
        """From the book when it is live, else from the latest ticker."""
        book = self.books.get(product_id)
        if book is not None and book.ready:
            return book.best_bid(), book.best_ask()
        ticker = self.tickers.get(product_id)
        if ticker is not None:
            return ticker.best_bid, ticker.best_ask
        return None, None

    # -- subscribing -----------------------------------------------------------------------------------

    def on_ticker(self, callback: Callback[Ticker], product_id: str | None = None) -> None:
        self._tickers.callbacks.append((product_id, callback))

    def on_trade(self, callback: Callback[Trade], product_id: str | None = None) -> None:
        self._trades.callbacks.append((product_id, callback))

    def on_book(self, callback: Callback[OrderBook], product_id: str | None = None) -> None:
        """Called with the product's book after each snapshot or update applied to it."""
        self._books.callbacks.append((product_id, callback))

    def ticker_stream(self, product_id: str | None = None, maxlen: int = 1024) -> Stream[Ticker]:
        stream: Stream[Ticker] = Stream(maxlen)
        self._tickers.streams.append((product_id, stream))
        return stream

    def trade_stream(self, product_id: str | None = None, maxlen: int = 4096) -> Stream[Trade]:
        stream: Stream[Trade] = Stream(maxlen)
        self._trades.streams.append((product_id, stream))
        return stream

    def book_stream(self, product_id: str | None = None) -> Stream[OrderBook]:
        """Yields a product's book whenever it changed; conflated, so the newest state is never behind."""
        stream: Stream[OrderBook] = Stream(1)
        self._books.streams.append((product_id, stream))
        return stream

    def close(self) -> list[asyncio.Task[Any]]:
        """End every stream and cancel the coroutine callbacks still running (a strategy's order in flight,
        say); returns those tasks for the caller to await. The calling task itself is left alone."""
        current = asyncio.current_task()
        cancelled: list[asyncio.Task[Any]] = []
        for fanout in (self._tickers, self._trades, self._books):
            for _, stream in fanout.streams:
                stream.close()
            for task in fanout.tasks:
                if task is not current and not task.done():
                    task.cancel()
                    cancelled.append(task)
        return cancelled

    # -- the socket's side -----------------------------------------------------------------------------

    def publish_ticker(self, ticker: Ticker) -> None:
        """Hand on a ticker decoded by a venue's own feed (as `on_envelope` does for Advanced Trade)."""
        self.tickers[ticker.product_id] = ticker
        self._tickers.deliver(ticker.product_id, ticker)

    def publish_trade(self, trade: Trade) -> None:
        self._trades.deliver(trade.product_id, trade)

    def publish_book(self, book: OrderBook) -> None:
        """A book in `books` changed: tell its callbacks and streams."""
        self._books.deliver(book.product_id, book)

    def on_envelope(self, envelope: dict[str, Any], received_ns: int) -> None:
        channel = envelope.get("channel")
        if channel == "ticker" or channel == "ticker_batch":
            timestamp = envelope.get("timestamp", "")
            for event in envelope["events"]:
                for raw in event.get("tickers", ()):
                    ticker = Ticker.from_wire(raw, timestamp, received_ns)
                    self.tickers[ticker.product_id] = ticker
                    self._tickers.deliver(ticker.product_id, ticker)
        elif channel == "l2_data":
            for event in envelope["events"]:
                book = self.book(event["product_id"])
                if event["type"] == "snapshot":
                    book.apply_snapshot(event["updates"])
                    self.snapshots += 1
                elif not book.apply_update(event["updates"]):
                    continue  # waiting for a snapshot
                self._books.deliver(book.product_id, book)
        elif channel == "market_trades":
            for event in envelope["events"]:
                for raw in event.get("trades", ()):
                    trade = Trade.from_wire(raw, received_ns)
                    self._trades.deliver(trade.product_id, trade)
        elif channel == "heartbeats":
            events = envelope.get("events") or [{}]
            self.last_heartbeat = events[0].get("current_time")

    def on_gap(self) -> None:
        """Messages were lost: every book waits for its next snapshot."""
        for book in self.books.values():
            book.invalidate()
