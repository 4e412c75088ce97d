"""Tick to wire on Coinbase Exchange, beside Advanced Trade: from a feed `ticker` message's bytes arriving at
the engine's feed socket to the Exchange order request (`POST /orders`, HMAC-signed in Rust) written to the
REST connection, through the whole embedded engine on `exchange_venue`: Exchange feed -> strategy callback
-> `Engine.place` -> risk gate -> journal intent (durability `os`, on) -> `ExchangeVenue.submit` -> the
request lane onto a pooled aiohttp connection.

Measured as `bench_tick_to_wire` measures Advanced Trade, with its taps and helpers (`tapped_connections`,
`Stream`, `stream_ticks`, `bare_bot_ticks`, `report`): the start is the ticker's bytes reaching the feed
connection from its socket, before aiohttp parses the frame; the end is the return of the transport's
`write` that carries the order. One simulator process (plain HTTP/WS on loopback, rate limits lifted, a
tick every 5 ms) serves both venues on one port; Exchange sends a ticker per trade, on about half the ticks.

Three runs take turns in each round: the engine on Exchange, the engine on Advanced Trade (the figure in
BENCHMARKS.md's tick-to-wire table) and the bare aiohttp bot on Advanced Trade (its anchor). On this shared
VM the host's state moves every figure by up to 2x within minutes; the ratios of runs taken in the same
rounds hold still. After each run every resting order is cancelled (Exchange's `DELETE /orders`), so each
engine starts on an empty book: an Exchange engine lists the open orders when its user channel subscribes.

Correctness, timed or not: on Exchange, each ticker that started a sample sent exactly one order, written
to the wire once, and the orders new in the simulator's ledger during the run are exactly those, once each,
journalled with their order ids and resting; the other two runs are checked as `bench_tick_to_wire` checks
them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvloop

from benches.bench_tick_to_wire import (
    CLOCK,
    LIFTED,
    RESTING_BID,
    SIM_FLAGS,
    Stream,
    bare_bot_ticks,
    ledger,
    percentiles,
    report,
    stream_ticks,
    tapped_connections,
)
from engine.auth import ExchangeKey
from engine.marketdata.feed import Ticker
from engine.trading.engine import Engine, EngineConfig
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.venues.advanced.client import Client
from engine.venues.exchange import LimitOrder, exchange_venue
from tests.support.keys import TestExchangeKey, new_ed25519_key, new_exchange_key
from tests.support.simproc import running_sim

EXCHANGE_TICKER_FRAME = b'"type":"ticker",'  # not `ticker_batch`; the simulator's frames are orjson's
EXCHANGE_ORDER_REQUEST_LINE = b"POST /orders "
# The Advanced Trade leg's resting bid, as an Exchange order: far below the market, 1 USD of hold.
EXCHANGE_RESTING_BID = LimitOrder(size=str(RESTING_BID.base_size), price=str(RESTING_BID.limit_price))

EXCHANGE, ADVANCED, BOT = "Exchange", "Advanced Trade", "bare aiohttp bot"
RUNS = (EXCHANGE, ADVANCED, BOT)
LABELS = {
    EXCHANGE: "engine tick-to-wire, Exchange",
    ADVANCED: "engine tick-to-wire, Advanced Trade (Exchange rounds)",
    BOT: "bare aiohttp bot (Exchange rounds)",
}


@dataclass(frozen=True)
class Venues:
    """The simulator process, and the credentials of both venues registered with it."""

    base_url: str
    cdp_key_file: Path
    exchange_key: TestExchangeKey

    def exchange(self) -> ExchangeKey:
        key = self.exchange_key
        return ExchangeKey(key.key, key.secret, key.passphrase)


@pytest.fixture(scope="module")
def venues(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Venues]:
    workdir = tmp_path_factory.mktemp("exchange-tick-to-wire")
    cdp_key_file = new_ed25519_key().write_portal_file(workdir / "key.json")
    exchange_key = new_exchange_key()
    exchange_key_file = workdir / "exchange_key.json"
    exchange_key_file.write_text(
        json.dumps(
            {"key": exchange_key.key, "secret": exchange_key.secret, "passphrase": exchange_key.passphrase}
        )
    )
    exchange_key_file.chmod(0o600)
    with running_sim(cdp_key_file, "--exchange-key-file", str(exchange_key_file), *SIM_FLAGS) as sim:
        yield Venues(sim.base_url, cdp_key_file, exchange_key)


async def exchange_ticks(venues: Venues, journal: Path, samples: int) -> Stream:
    """Run the engine on Exchange until `samples` orders went out on tickers, and every order it started has
    its answer."""
    key = venues.exchange()
    stream = Stream(ticker_frame=EXCHANGE_TICKER_FRAME, order_request_line=EXCHANGE_ORDER_REQUEST_LINE)
    placed: list[Any] = []
    in_flight = 0
    done = asyncio.Event()
    settled = asyncio.Event()
    client = Client(key, venues.base_url, rate_limits=LIFTED)
    config = EngineConfig(
        journal_path=journal,
        durability="os",
        worker="bench",
        products=("BTC-USD",),
        market_channels=("ticker",),
    )
    venue = exchange_venue(
        key, client=client, products=config.products, market_channels=config.market_channels
    )
    posts = 0  # order requests written, sampled or not: a resend would be one more

    def on_write(data: bytes) -> None:
        nonlocal posts
        stream.on_write(data)  # first: the sample ends as the write returns
        posts += data.startswith(EXCHANGE_ORDER_REQUEST_LINE)

    with tapped_connections(stream.on_read, on_write):
        async with client, Engine(config=config, venue=venue) as engine:
            await engine.wait_ready()

            async def on_ticker(ticker: Ticker) -> None:
                nonlocal in_flight
                if done.is_set() or stream.tick_started_ns:  # one order on its way to the wire at a time
                    return
                stream.start(ticker.received_ns)
                in_flight += 1
                try:
                    order = await engine.place("BTC-USD", "BUY", EXCHANGE_RESTING_BID)
                finally:
                    in_flight -= 1
                placed.append(order)
                stream.sent.append(order.client_order_id)
                if len(stream.latencies) >= samples:
                    done.set()
                if done.is_set() and not in_flight:
                    settled.set()

            engine.on_ticker(on_ticker, "BTC-USD")
            await asyncio.wait_for(settled.wait(), timeout=30 + samples * 0.1)
            assert all(order.state is OrderState.OPEN for order in placed)
    assert len(set(stream.sent)) == len(stream.sent) == len(stream.to_reader), "one order per ticker sampled"
    assert posts == len(stream.sent), "each order was written to the wire once"
    return stream


async def cancel_resting(venues: Venues) -> int:
    """Cancel every open order (the next run starts on an empty book); how many there were."""
    async with Client(venues.exchange(), venues.base_url, rate_limits=LIFTED) as client:
        return len(await client.exchange.cancel_all())


def journalled_open(journal: Path, client_order_ids: list[str]) -> bool:
    with OrderJournal(journal) as reopened:
        entries = {e.client_order_id: e for e in reopened.entries()}
    return all(entries[c].order_id and entries[c].state is OrderState.OPEN for c in client_order_ids)


def run_once(run: str, venues: Venues, journal: Path, samples: int) -> Stream:
    """One run of one round, checked: each order it sent is in the ledger once and rested until cancelled."""
    before = len(ledger(venues.base_url))
    if run == EXCHANGE:
        stream = uvloop.run(exchange_ticks(venues, journal, samples))
    elif run == ADVANCED:
        stream = uvloop.run(
            stream_ticks(venues.base_url, venues.cdp_key_file, journal, samples, busy_poll=False)
        )
    else:
        stream = uvloop.run(bare_bot_ticks(venues.base_url, venues.cdp_key_file, samples))
    if run != BOT:
        assert journalled_open(journal, stream.sent), run
    new = ledger(venues.base_url)[before:]
    sent = set(stream.sent)
    assert sorted(c for c in new if c in sent) == sorted(stream.sent), run  # each once
    if run == EXCHANGE:
        assert sorted(new) == sorted(stream.sent), "the Exchange run placed nothing but its sampled orders"
    cancelled = uvloop.run(cancel_resting(venues))
    assert cancelled == len(new), (run, cancelled, len(new))  # every order the run placed was resting
    assert len(stream.latencies) >= samples
    assert all(latency > 0 for latency in stream.latencies)
    return stream


@pytest.fixture(scope="module")
def streams(
    venues: Venues, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, Stream]:
    """Every run's samples, in alternating rounds (Exchange, Advanced Trade, the bot); each round is a fresh
    engine (or bot) with its own journal, and its first ticks are a warm-up, not counted."""
    timed = not request.config.getoption("benchmark_disable")
    rounds, samples, warmup = (8, 250, 25) if timed else (1, 20, 0)
    pooled = {run: Stream() for run in RUNS}
    for _ in range(rounds):
        for run in RUNS:
            journal = tmp_path_factory.mktemp("journal") / "journal.db"
            stream = run_once(run, venues, journal, samples + warmup)
            pooled[run].latencies += stream.latencies[warmup:]
            pooled[run].to_reader += stream.to_reader[warmup:]
            pooled[run].sent += stream.sent
    return pooled


@pytest.mark.benchmark(group="exchange-tick-to-wire", timer=CLOCK)
@pytest.mark.parametrize("run", RUNS)
def test_exchange_tick_to_wire(benchmark: Any, streams: dict[str, Stream], run: str) -> None:
    if run == BOT:
        benchmark.extra_info.update(role="peer", label=LABELS[run])
    elif run == ADVANCED:
        benchmark.extra_info.update(role="engine", label=LABELS[run], vs=[LABELS[BOT]])
    else:
        benchmark.extra_info.update(role="engine", label=LABELS[run], vs=[LABELS[ADVANCED], LABELS[BOT]])
        exchange_p50, exchange_p99 = percentiles(streams[EXCHANGE].latencies)
        advanced_p50, advanced_p99 = percentiles(streams[ADVANCED].latencies)
        benchmark.extra_info.update(
            vs_advanced_p50=round(exchange_p50 / advanced_p50, 2),
            vs_advanced_p99=round(exchange_p99 / advanced_p99, 2),
        )
        print(
            "\nExchange vs Advanced Trade tick-to-wire, same rounds: "
            f"p50 {exchange_p50 / advanced_p50:.2f}x, p99 {exchange_p99 / advanced_p99:.2f}x"
        )
    report(benchmark, streams[run], run)
