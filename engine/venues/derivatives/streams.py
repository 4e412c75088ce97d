"""Market data from the gateway's streams host (`public/subscribe`, no authentication), as the engine's
venue-neutral values: `OrderBook`, `Ticker`, `Trade`, `Candle`, plus the gateway's `Quote` and funding.

The book channel sends a full snapshot, then changes that each name the previous message's `change_id`
(`prev_change_id`). A change that does not follow on is a gap: the book is marked not ready, the channel is
subscribed again, and the snapshot that comes back rebuilds it; nothing is applied to a book in between.
A dropped connection invalidates every book the same way (https://docs.cdp.coinbase.com/coinbase-app/
advanced-trade-apis/websocket/websocket-endpoints).

Callbacks run inline on the reader's turn, in arrival order; to consume with `async for`, pass a
`engine.marketdata.stream.Stream`'s `push` as the callback.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from engine.marketdata.book import OrderBook
from engine.marketdata.candle import Candle
from engine.marketdata.feed import Ticker, Trade
from engine.venues.derivatives.connection import GatewaySocket, SessionConfig
from engine.venues.derivatives.credits import GatewayCredits
from engine.venues.derivatives.methods import RESOLUTIONS
from engine.venues.derivatives.types import (
    BookMessage,
    ChartTrades,
    PerpetualState,
    PublicTrade,
    Quote,
    TickerInfo,
)

__all__ = ["STREAMS_WS_URL", "BookStats", "MarketStreams", "ticker_value", "trade_value"]

log = logging.getLogger("engine.venues.derivatives")

STREAMS_WS_URL = "wss://streams.drb.coinbase.com/ws/api/v2"
_ZERO = Decimal(0)

_book_decoder = msgspec.json.Decoder(BookMessage)
_ticker_decoder = msgspec.json.Decoder(TickerInfo)
_trades_decoder = msgspec.json.Decoder(tuple[PublicTrade, ...])
_quote_decoder = msgspec.json.Decoder(Quote)
_perpetual_decoder = msgspec.json.Decoder(PerpetualState)
_chart_decoder = msgspec.json.Decoder(ChartTrades)


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")


def ticker_value(ticker: TickerInfo, received_ns: int = 0) -> Ticker:
    """The gateway's ticker as the engine's `Ticker` (price: the last trade, else the mark price)."""
    price = ticker.last_price if ticker.last_price is not None else ticker.mark_price
    return Ticker(
        ticker.instrument_name,
        price if price is not None else _ZERO,
        ticker.best_bid_price,
        ticker.best_bid_amount,
        ticker.best_ask_price,
        ticker.best_ask_amount,
        ticker.stats.volume,
        _iso(ticker.timestamp),
        received_ns,
    )


def trade_value(trade: PublicTrade, received_ns: int = 0) -> Trade:
    """A public trade as the engine's `Trade`; `side` is the taker's, upper case as Coinbase writes it."""
    return Trade(
        trade.trade_id,
        trade.instrument_name,
        trade.price,
        trade.amount,
        trade.direction.value.upper(),
        _iso(trade.timestamp),
        received_ns,
    )


class BookStats(msgspec.Struct):
    snapshots: int = 0
    changes: int = 0
    gaps: int = 0
    resyncs: int = 0
    ignored: int = 0  # changes that arrived while the book waited for a snapshot


class MarketStreams(GatewaySocket):
    """`async with MarketStreams() as streams: await streams.subscribe_book(instrument, on_book)`."""

    _subscribe_method = "public/subscribe"
    _unsubscribe_method = "public/unsubscribe"

    def __init__(
        self,
        url: str = STREAMS_WS_URL,
        *,
        config: SessionConfig | None = None,
        credits: GatewayCredits | None = None,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # The streams host only subscribes: no heartbeat to ask for, no cancel-on-disconnect.
        super().__init__(
            url,
            config=config or SessionConfig(heartbeat_interval_s=None, cancel_on_disconnect=False),
            credits=credits,
            session=session,
            ssl_context=ssl_context,
        )
        self.books: dict[str, OrderBook] = {}
        self.book_stats = BookStats()
        self._last_change: dict[str, int] = {}  # channel -> change_id of the last message applied
        self.on_disconnect(self._invalidate_books)

    def _subscription_hint(self) -> str:
        return "the streams host serves market data; user.* channels need the TradingSession"

    async def _handshake(self) -> None:
        await self._resubscribe()

    def _invalidate_books(self) -> None:
        for book in self.books.values():
            book.invalidate()
        self._last_change.clear()

    # -- subscribing --------------------------------------------------------------------------------------

    async def subscribe_book(
        self,
        instrument_name: str,
        callback: Callable[[OrderBook], Any] | None = None,
        interval: str = "100ms",
    ) -> OrderBook:
        """`book.{instrument}.{interval}` kept as an `OrderBook`; `callback(book)` after each message."""
        book = self.books.get(instrument_name)
        if book is None:
            book = self.books[instrument_name] = OrderBook(instrument_name)
        channel = f"book.{instrument_name}.{interval}"
        await self.subscribe([channel], self._book_handler(book, callback))
        return book

    async def subscribe_ticker(
        self, instrument_name: str, callback: Callable[[Ticker], Any], interval: str = "100ms"
    ) -> None:
        def deliver(_channel: str, raw: msgspec.Raw) -> None:
            callback(ticker_value(_ticker_decoder.decode(raw), time.perf_counter_ns()))

        await self.subscribe([f"ticker.{instrument_name}.{interval}"], deliver)

    async def subscribe_quote(self, instrument_name: str, callback: Callable[[Quote], Any]) -> None:
        await self.subscribe(
            [f"quote.{instrument_name}"], lambda _c, raw: callback(_quote_decoder.decode(raw))
        )

    async def subscribe_trades(
        self, instrument_name: str, callback: Callable[[Trade], Any], interval: str = "100ms"
    ) -> None:
        """One callback per public trade."""

        def deliver(_channel: str, raw: msgspec.Raw) -> None:
            received_ns = time.perf_counter_ns()
            for trade in _trades_decoder.decode(raw):
                callback(trade_value(trade, received_ns))

        await self.subscribe([f"trades.{instrument_name}.{interval}"], deliver)

    async def subscribe_candles(
        self, instrument_name: str, callback: Callable[[Candle], Any], resolution: str = "1"
    ) -> None:
        """`chart.trades.{instrument}.{resolution}`: the current candle each time it changes."""
        granularity = RESOLUTIONS.get(resolution)
        if granularity is None:
            raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")

        def deliver(_channel: str, raw: msgspec.Raw) -> None:
            bar = _chart_decoder.decode(raw)
            callback(
                Candle(
                    instrument_name,
                    bar.tick // 1000,
                    granularity,
                    bar.open,
                    bar.high,
                    bar.low,
                    bar.close,
                    bar.volume,
                    time.perf_counter_ns(),
                )
            )

        await self.subscribe([f"chart.trades.{instrument_name}.{resolution}"], deliver)

    async def subscribe_funding(
        self, instrument_name: str, callback: Callable[[PerpetualState], Any], interval: str = "100ms"
    ) -> None:
        """`perpetual.{instrument}.{interval}`: index price and funding interest."""
        await self.subscribe(
            [f"perpetual.{instrument_name}.{interval}"],
            lambda _c, raw: callback(_perpetual_decoder.decode(raw)),
        )

    # -- the book -----------------------------------------------------------------------------------------

    def _book_handler(
        self, book: OrderBook, callback: Callable[[OrderBook], Any] | None
    ) -> Callable[[str, msgspec.Raw], None]:
        def deliver(channel: str, raw: msgspec.Raw) -> None:
            if self._apply_book(channel, book, _book_decoder.decode(raw)) and callback is not None:
                callback(book)

        return deliver

    def _apply_book(self, channel: str, book: OrderBook, message: BookMessage) -> bool:
        stats = self.book_stats
        if message.type == "snapshot" or message.prev_change_id is None:
            book.bids.clear()
            book.asks.clear()
            _apply_levels(book, message)
            book.ready = True
            self._last_change[channel] = message.change_id
            stats.snapshots += 1
            return True
        last = self._last_change.get(channel)
        if not book.ready or last is None:
            stats.ignored += 1
            return False
        if message.prev_change_id != last:
            stats.gaps += 1
            log.warning(
                "book gap on %s: change %d follows %d, not %d; resyncing from a snapshot",
                channel,
                message.change_id,
                message.prev_change_id,
                last,
            )
            book.invalidate()
            del self._last_change[channel]
            self._spawn(self._resync(channel))
            return False
        _apply_levels(book, message)
        self._last_change[channel] = message.change_id
        stats.changes += 1
        return True

    async def _resync(self, channel: str) -> None:
        """Subscribe the channel again: the gateway starts it over with a snapshot."""
        self.book_stats.resyncs += 1
        try:
            await self.request(self._unsubscribe_method, {"channels": [channel]})
            await self.request(self._subscribe_method, {"channels": [channel]})
        except Exception as exc:  # the connection dropped: the reconnect resubscribes anyway
            log.warning("resync of %s failed (%s); it resumes on the next connection", channel, exc)


def _apply_levels(book: OrderBook, message: BookMessage) -> None:
    for side, levels in ((book.bids, message.bids), (book.asks, message.asks)):
        for action, price, amount in levels:
            side.set(price, _ZERO if action == "delete" else amount)
    book.updates_applied += 1
