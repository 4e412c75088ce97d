"""Market streams from the simulator's streams host: the book from a snapshot and chained change ids,
tickers, trades, candles and funding as the engine's values; a refused channel named in the error."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from engine.errors import SubscriptionRejected
from engine.marketdata.book import OrderBook
from engine.marketdata.candle import Candle
from engine.marketdata.feed import Ticker, Trade
from engine.venues.derivatives import OrderType
from engine.venues.derivatives.types import PerpetualState, Quote
from tests.derivatives.client.conftest import GatewayEnv

BTC = "BTC_USDC-PERPETUAL"


async def _until(condition: object, rounds: int = 500) -> None:
    for _ in range(rounds):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met")


@pytest.mark.parametrize("sim_config", [{"tick_interval_s": 0.02}], indirect=True)
async def test_the_book_is_built_from_a_snapshot_and_kept_by_change_ids(gateway: GatewayEnv) -> None:
    books: list[OrderBook] = []
    async with gateway.streams() as streams:
        book = await streams.subscribe_book(BTC, books.append)
        await _until(lambda: streams.book_stats.snapshots >= 1 and streams.book_stats.changes >= 3)
        assert book.ready
        best_bid, best_ask = book.best_bid(), book.best_ask()
        assert best_bid is not None
        assert best_ask is not None
        assert best_bid < best_ask
        assert streams.book_stats.gaps == 0
        async with gateway.http() as client:
            snapshot = await client.get_order_book(BTC, depth=1)
        assert snapshot.bids[0][0] > 0


@pytest.mark.parametrize("sim_config", [{"tick_interval_s": 0.02}], indirect=True)
async def test_tickers_quotes_trades_candles_and_funding_arrive_typed(gateway: GatewayEnv) -> None:
    tickers: list[Ticker] = []
    quotes: list[Quote] = []
    trades: list[Trade] = []
    candles: list[Candle] = []
    funding: list[PerpetualState] = []
    async with gateway.streams() as streams:
        await streams.subscribe_ticker(BTC, tickers.append)
        await streams.subscribe_quote(BTC, quotes.append)
        await streams.subscribe_trades(BTC, trades.append)
        await streams.subscribe_candles(BTC, candles.append, "1")
        await streams.subscribe_funding(BTC, funding.append)
        async with gateway.session() as session:  # a fill of ours makes a public trade
            await session.buy(BTC, Decimal("0.001"), type=OrderType.MARKET)
        await _until(lambda: tickers and quotes and trades and candles and funding)
    assert tickers[-1].product_id == BTC
    assert tickers[-1].price > 0
    assert quotes[-1].best_bid_price is not None
    assert trades[-1].side in ("BUY", "SELL")
    assert trades[-1].size > 0
    assert candles[-1].granularity_s == 60
    assert candles[-1].high >= candles[-1].low
    assert funding[-1].index_price > 0


async def test_channels_the_streams_host_refuses_are_named(gateway: GatewayEnv) -> None:
    async with gateway.streams() as streams:
        with pytest.raises(SubscriptionRejected) as rejected:
            await streams.subscribe_book("NOPE_USDC-PERPETUAL")
        assert rejected.value.rejected == ["book.NOPE_USDC-PERPETUAL.100ms"]
        await streams.subscribe_book(BTC)  # the socket is still good
        assert streams.connected
