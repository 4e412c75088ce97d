"""The WebSocket client and the level2 book against the simulator: the local book stays exactly the
simulator's own, through injected sequence gaps and dropped connections."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import aiohttp

from engine.auth import CdpKey
from engine.marketdata.feed import MarketFeed, Ticker
from engine.marketdata.ws import Backoff, CoinbaseSocket, Subscription
from engine.sim import SimConfig, Simulator
from tests.support.keys import new_ed25519_key

PRODUCTS = ("BTC-USD", "ETH-USD")


async def sim_book(
    session: aiohttp.ClientSession, base_url: str, product_id: str
) -> dict[str, list[tuple[Decimal, Decimal]]]:
    async with session.get(f"{base_url}/sim/book/{product_id}") as response:
        body = await response.json()
    return {side: [(Decimal(p), Decimal(s)) for p, s in body[side]] for side in ("bids", "asks")}


async def books_equal(feed: MarketFeed, session: aiohttp.ClientSession, base_url: str) -> bool:
    for product_id in PRODUCTS:
        book = feed.book(product_id)
        if not book.ready or book.snapshot() != await sim_book(session, base_url, product_id):
            return False
    return True


async def test_the_book_stays_exact_through_gaps_and_drops() -> None:
    sim = Simulator(SimConfig(seed=3, tick_interval_s=0.01, heartbeat_interval_s=0.2))
    key = new_ed25519_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    cdp = CdpKey(key.name, key.private_key)
    tokens: list[str] = []

    def token() -> str:
        tokens.append(cdp.ws_jwt())
        return tokens[-1]

    feed = MarketFeed()
    tickers: list[Ticker] = []
    feed.on_ticker(tickers.append)
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        socket = CoinbaseSocket(
            base_url.replace("http", "ws") + "/ws",
            [Subscription("level2", PRODUCTS, resync_on_gap=True), Subscription("ticker", PRODUCTS)],
            feed.on_envelope,
            token=token,
            on_gap=feed.on_gap,
            on_disconnect=feed.on_gap,
            backoff=Backoff(initial=0.01, maximum=0.1),
            idle_timeout=2.0,
            rng=random.Random(5),
        )
        socket.start()
        try:
            sim.faults.update({"ws_gap_rate": 0.02, "ws_drop_rate": 0.002})
            checks = 0
            for _ in range(6):
                sim.market_paused = False
                await asyncio.sleep(0.4)
                sim.market_paused = True  # quiesce, then the local book must converge to the simulator's
                for _ in range(300):
                    if await books_equal(feed, session, base_url):
                        checks += 1
                        break
                    await asyncio.sleep(0.01)
            sim.faults.clear()
            sim.market_paused = False
            await asyncio.sleep(0.3)
            sim.market_paused = True
            for _ in range(300):
                if await books_equal(feed, session, base_url):
                    break
                await asyncio.sleep(0.01)
            assert await books_equal(feed, session, base_url), "the local book diverged from the simulator's"
        finally:
            await socket.close()
    assert checks >= 4  # converged after most fault-ridden rounds (a drop mid-check may need the next round)
    assert socket.stats.gaps > 0, "no sequence gap was exercised"
    assert socket.stats.resubscribes > 0
    assert socket.stats.connects > 1, "no reconnect was exercised"
    assert feed.snapshots > len(PRODUCTS)  # books were rebuilt from fresh snapshots
    assert len(set(tokens)) == len(tokens) >= socket.stats.connects * 2  # a fresh token per subscribe
    assert tickers
    assert tickers[-1].product_id in PRODUCTS


async def test_reconnects_after_the_server_goes_away() -> None:
    sim = Simulator(SimConfig(seed=4, tick_interval_s=0.02, heartbeat_interval_s=0.2))
    feed = MarketFeed()
    async with sim.serve() as base_url:
        socket = CoinbaseSocket(
            base_url.replace("http", "ws") + "/ws",
            [Subscription("level2", ("BTC-USD",), resync_on_gap=True)],
            feed.on_envelope,
            on_disconnect=feed.on_gap,
            backoff=Backoff(initial=0.01, maximum=0.05),
        )
        socket.start()
        try:
            await asyncio.wait_for(socket.connected.wait(), 5)
            await sim.hub.close_all()  # every connection is cut
            for _ in range(500):
                if socket.stats.connects >= 2 and feed.book("BTC-USD").ready:
                    break
                await asyncio.sleep(0.01)
        finally:
            await socket.close()
    assert socket.stats.connects >= 2
    assert socket.stats.disconnects >= 1
    assert feed.book("BTC-USD").ready
