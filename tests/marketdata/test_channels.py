"""Typed consumers for all nine Advanced Trade WebSocket channels against the simulator, with subscribe and
unsubscribe at run time and the unauthenticated message rate respected."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal

import pytest

from engine import Client
from engine.auth import CdpKey
from engine.marketdata.channels import (
    CHANNELS,
    Candle,
    ChannelEvent,
    ChannelFeed,
    FuturesBalanceSummary,
    Heartbeat,
    Level2Update,
    MarketTrade,
    ProductStatus,
    TickerEvent,
    UserOrder,
    UserPosition,
    parse_envelope,
)
from engine.marketdata.ws import MAX_UNAUTHENTICATED_PER_S, Backoff, CoinbaseSocket, Subscription
from engine.rest import LimitGtc, MarketIoc, Side
from engine.sim import SimConfig, Simulator
from tests.support.keys import new_ed25519_key

PRODUCTS = ("BTC-USD", "ETH-USD")
MARKET = {
    "heartbeats": Heartbeat,
    "candles": Candle,
    "status": ProductStatus,
    "ticker": TickerEvent,
    "ticker_batch": TickerEvent,
    "level2": Level2Update,
    "market_trades": MarketTrade,
}


async def _until(condition: Callable[[], bool], what: str) -> None:
    # A bound so the test ends by itself if the feed never delivers; not a timing assertion.
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(wait(), 20.0)
    except TimeoutError:
        pytest.fail(f"never saw {what}")


def _socket(url: str, feed: ChannelFeed, token: Callable[[], str] | None) -> CoinbaseSocket:
    return CoinbaseSocket(
        url, [], feed.on_envelope, token=token, backoff=Backoff(initial=0.01, maximum=0.1), idle_timeout=5.0,
        rng=random.Random(1),
    )  # fmt: skip


async def test_every_channel_typed_with_run_time_subscribe_and_unsubscribe() -> None:
    sim = Simulator(SimConfig(seed=2, tick_interval_s=0.02, heartbeat_interval_s=0.1))
    key = new_ed25519_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    cdp = CdpKey(key.name, key.private_key)
    market, user = ChannelFeed(), ChannelFeed()
    seen: dict[str, list[ChannelEvent]] = {channel: [] for channel in CHANNELS}
    for channel in MARKET:
        market.on(channel, seen[channel].append)
    for channel in ("user", "futures_balance_summary"):
        user.on(channel, seen[channel].append)
    async with sim.serve() as base_url:
        ws = base_url.replace("http", "ws")
        market_socket, user_socket = (
            _socket(ws + "/ws", market, cdp.ws_jwt),
            _socket(ws + "/ws/user", user, cdp.ws_jwt),
        )
        market_socket.start()
        user_socket.start()
        try:
            await market_socket.connected.wait()
            await user_socket.connected.wait()
            for channel in MARKET:
                if channel != "heartbeats":
                    await market_socket.subscribe(Subscription(channel, PRODUCTS))
            await user_socket.subscribe(Subscription("user"))
            await user_socket.subscribe(Subscription("futures_balance_summary"))
            async with Client(cdp, base_url, sync_clock=False) as client:
                await client.create_order("BTC-USD", Side.BUY, MarketIoc(quote_size="100"))
                await client.create_order("BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price="1000"))
                await client.create_order("BIP-20DEC30-CDE", Side.BUY, MarketIoc(base_size="1"))
                await _until(lambda: all(seen[c] for c in CHANNELS), "an event on every channel")
                # positions come in the user channel's snapshot: subscribe afresh to get one holding it
                await user_socket.unsubscribe("user")
                await user_socket.subscribe(Subscription("user"))
                await _until(lambda: any(isinstance(e, UserPosition) for e in seen["user"]), "a position")
        finally:
            await market_socket.close()
            await user_socket.close()
    for channel, kind in MARKET.items():
        assert all(isinstance(e, kind) for e in seen[channel]), channel
    tickers = [e for e in seen["ticker"] if isinstance(e, TickerEvent)]
    assert {t.product_id for t in tickers} == set(PRODUCTS)
    assert all(t.price is not None and t.price > 0 for t in tickers)
    assert all(isinstance(e, TickerEvent) and e.channel == "ticker_batch" for e in seen["ticker_batch"])
    levels = [e for e in seen["level2"] if isinstance(e, Level2Update)]
    assert {u.side for u in levels} == {"bid", "offer"}
    orders = [e for e in seen["user"] if isinstance(e, UserOrder)]
    assert {"BTC-USD", "BIP-20DEC30-CDE"} <= {o.product_id for o in orders}
    (position, *_) = [e for e in seen["user"] if isinstance(e, UserPosition) and e.number_of_contracts]
    assert position.product_id == "BIP-20DEC30-CDE"
    assert not position.perpetual
    summaries = [e for e in seen["futures_balance_summary"] if isinstance(e, FuturesBalanceSummary)]
    assert summaries[0].futures_buying_power is not None
    assert set(market.subscriptions) == set(MARKET)


async def test_unsubscribe_at_run_time_and_the_unauthenticated_rate() -> None:
    sim = Simulator(SimConfig(seed=4, tick_interval_s=0.02, heartbeat_interval_s=0.1))
    feed = ChannelFeed()
    tickers: list[ChannelEvent] = []
    feed.on("ticker", tickers.append)
    async with sim.serve() as base_url:
        socket = _socket(base_url.replace("http", "ws") + "/ws", feed, None)  # no key: public channels only
        socket.start()
        try:
            await socket.connected.wait()
            loop = asyncio.get_running_loop()
            started = loop.time()
            for product in PRODUCTS:
                for channel in ("ticker", "market_trades", "level2", "candles", "status"):
                    await socket.subscribe(Subscription(channel, (product,)))
            sent = 1 + 2 * 5  # heartbeats at connect, then ten run-time subscribes
            # the messages went out no faster than Coinbase allows an unauthenticated connection
            assert loop.time() - started >= (sent - 1 - MAX_UNAUTHENTICATED_PER_S) / MAX_UNAUTHENTICATED_PER_S
            assert socket.stats.paced > 0
            await _until(
                lambda: feed.subscriptions.get("ticker") == sorted(PRODUCTS), "both tickers subscribed"
            )
            await _until(lambda: bool(tickers), "a ticker")
            await socket.unsubscribe("ticker", ("BTC-USD",))
            await _until(lambda: feed.subscriptions.get("ticker") == ["ETH-USD"], "BTC-USD's ticker dropped")
            assert [s.product_ids for s in socket.subscriptions if s.channel == "ticker"] == [("ETH-USD",)]
            await socket.unsubscribe("ticker")
            await _until(lambda: "ticker" not in feed.subscriptions, "the ticker channel dropped")
            assert all(
                s.channel != "ticker" for s in socket.subscriptions
            )  # and it stays dropped on reconnect
        finally:
            await socket.close()


def test_parse_envelope_names_level2_and_ignores_the_unknown() -> None:
    envelope = {
        "channel": "l2_data",
        "timestamp": "2026-01-01T00:00:00Z",
        "sequence_num": 0,
        "events": [
            {"type": "update", "product_id": "BTC-USD", "updates": [
                {"side": "bid", "event_time": "t", "price_level": "100.5", "new_quantity": "0"},
            ]},
            "not an event",
        ],
    }  # fmt: skip
    channel, events = parse_envelope(envelope)
    assert channel == "level2"
    assert events == [
        Level2Update("BTC-USD", "bid", Decimal("100.5"), Decimal("0"), "t", "update", envelope["timestamp"])
    ]
    assert parse_envelope({"channel": "nonsense", "events": [{}]}) == ("nonsense", [])
    with pytest.raises(ValueError, match="unknown channel"):
        ChannelFeed().on("tickers", print)
