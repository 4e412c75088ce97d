"""The Exchange WebSocket feed, simulator and client: books that stay equal to the simulator's (level2 from
its snapshot, full from the REST level-3 book, rebuilt after lost messages and after reconnects), tickers and
trades as the venue-neutral values, and the user's own order events over an authenticated subscribe."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from engine.auth import ExchangeKey
from engine.errors import AuthDiagnosis, AuthError, ConfigError
from engine.marketdata.feed import Ticker, Trade
from engine.sim import Simulator
from engine.venues.exchange import FEED_URLS, REST_URLS, ExchangeFeed, OrderEvent
from tests.exchange.conftest import ServedExchange

D = Decimal
Levels = tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]


async def until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    """Wait for the feed to catch up; a test that never gets there fails with `what`, it does not hang."""
    try:
        async with asyncio.timeout(seconds):
            while not condition():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


def sim_levels(sim: Simulator, product_id: str, *, with_user_orders: bool) -> Levels:
    book = sim.markets[product_id].book
    bids, asks = dict(book.bids.levels()), dict(book.asks.levels())
    if with_user_orders:
        for order in sim.exchange.feed.resting_user_orders(product_id):
            side = bids if order.side == "BUY" else asks
            price = order.spec.limit_price or D(0)
            side[price] = side.get(price, D(0)) + order.leaves
    return sorted(bids.items(), reverse=True), sorted(asks.items())


def feed_levels(feed: ExchangeFeed, product_id: str) -> Levels:
    book = feed.market.book(product_id)
    return book.bids.levels(), book.asks.levels()


def test_environments_and_bad_configuration() -> None:
    assert FEED_URLS["production"] == "wss://ws-feed.exchange.coinbase.com"
    assert REST_URLS["sandbox"] == "https://api-public.sandbox.exchange.coinbase.com"
    assert ExchangeFeed(["BTC-USD"], environment="sandbox").url == FEED_URLS["sandbox"]
    with pytest.raises(ConfigError, match="environment"):
        ExchangeFeed(["BTC-USD"], environment="staging")
    with pytest.raises(ConfigError, match="unknown"):
        ExchangeFeed(["BTC-USD"], ["level3"])
    with pytest.raises(ConfigError, match="Exchange key"):
        ExchangeFeed(["BTC-USD"], ["user"])
    with pytest.raises(ConfigError, match="rest="):
        ExchangeFeed(["BTC-USD"], ["full"])


async def test_level2_ticker_and_matches(served: ServedExchange) -> None:
    sim = served.sim
    feed = ExchangeFeed(["BTC-USD", "ETH-USD"], ["ticker", "matches", "level2_batch"], url=served.base_url)
    tickers: list[Ticker] = []
    trades: list[Trade] = []
    feed.market.on_ticker(tickers.append)
    feed.market.on_trade(trades.append)
    feed.start()
    try:
        await until(lambda: feed.market.book("ETH-USD").ready, "the level2 snapshot arrived")
        for _ in range(20):
            sim.tick()
        async with served.client() as client:
            await client.exchange.create_order("BTC-USD", "buy", type="market", size="0.05")
        last = sim.recent_trades("BTC-USD")[-1]
        await until(lambda: bool(trades) and trades[-1].trade_id == last.trade_id, "the last trade arrived")
        for product_id in ("BTC-USD", "ETH-USD"):
            await until(
                lambda p=product_id: feed_levels(feed, p) == sim_levels(sim, p, with_user_orders=False),  # type: ignore[misc]
                f"the {product_id} book equals the simulator's",
            )
    finally:
        await feed.close()
    assert trades[-1].side == "BUY"  # the taker's side, venue-neutral
    ids = [int(t.trade_id) for t in trades if t.product_id == "BTC-USD"]
    assert ids == sorted(set(ids))  # each match once, in order
    assert ids[-1] == int(last.trade_id)
    btc = [t for t in tickers if t.product_id == "BTC-USD"]
    assert btc[-1].price == sim.markets["BTC-USD"].last_price
    assert feed.stats.connects == 1


async def test_full_channel_book_and_gaps(served: ServedExchange) -> None:
    sim = served.sim
    async with served.client() as client:
        feed = ExchangeFeed(["BTC-USD"], ["full"], rest=client.exchange, url=served.base_url)
        feed.start()
        try:
            await until(lambda: feed.market.book("BTC-USD").ready, "the level-3 snapshot was loaded")
            resting = await client.exchange.create_order("BTC-USD", "buy", size="0.3", price="59000.00")
            await client.exchange.create_order("BTC-USD", "sell", type="market", size="0.2")
            for _ in range(10):
                sim.tick()

            def in_step() -> bool:
                return feed_levels(feed, "BTC-USD") == sim_levels(sim, "BTC-USD", with_user_orders=True)

            await until(in_step, "the full-channel book equals the simulator's, the user's order included")
            assert D("59000.00") in dict(feed.market.book("BTC-USD").bids.levels())
            assert feed.stats.gaps == 0

            sim.faults.update({"ws_gap_rate": 0.2})  # every fifth full-channel message is lost
            for _ in range(10):
                sim.tick()
            await until(lambda: feed.stats.gaps > 0, "the lost messages were noticed")
            sim.faults.update({"ws_gap_rate": 0.0})
            await client.exchange.cancel_order(resting.id)
            for _ in range(5):
                sim.tick()
            await until(in_step, "the rebuilt book equals the simulator's")
            assert feed.stats.rebuilds > 1

            feed.drop_connection()
            await until(lambda: feed.stats.connects == 2, "the feed reconnected")
            sim.tick()
            await until(lambda: feed.market.book("BTC-USD").ready and in_step(), "the book is whole again")
        finally:
            await feed.close()
    assert sim.exchange.feed.gaps_injected > 0


async def test_user_channel_events_and_refused_credentials(served: ServedExchange) -> None:
    sim = served.sim
    key = ExchangeKey(served.key.key, served.key.secret, served.key.passphrase)
    events: list[OrderEvent] = []
    feed = ExchangeFeed(["BTC-USD"], ["user"], key=key, url=served.base_url)
    feed.on_order_event(events.append)
    feed.start()
    try:
        await until(feed.connected.is_set, "the authenticated subscribe was accepted")
        async with served.client() as client:
            order = await client.exchange.create_order("BTC-USD", "buy", size="0.01", price="50000.00")
            await until(lambda: [e.type for e in events] == ["received", "open"], "received, then open")
            await client.exchange.cancel_order(order.id)
            sim.publish_book("BTC-USD")
        await until(lambda: events[-1].type == "done", "done after the cancel")
    finally:
        await feed.close()
    assert {e.order_id for e in events} == {order.id}
    assert {e.client_oid for e in events} == {order.client_oid}
    assert events[1].remaining_size == D("0.01")
    assert events[-1].reason == "canceled"
    assert [e.sequence for e in events] == sorted(e.sequence for e in events)

    wrong = ExchangeKey(served.key.key, served.key.secret, "not-the-passphrase")
    refused = ExchangeFeed(["BTC-USD"], ["user"], key=wrong, url=served.base_url)
    try:
        with pytest.raises(AuthError) as error:
            await asyncio.wait_for(refused.run(), 10)
    finally:
        await refused.close()
    assert error.value.diagnosis is AuthDiagnosis.BAD_PASSPHRASE
    assert served.key.passphrase not in str(error.value)
