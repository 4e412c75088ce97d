"""Tick to wire on perpetuals: from a `ticker` notification's bytes reaching the streams socket to the
`private/buy` frame written to the trading socket, through the whole embedded engine: `DerivativesVenue`'s
ticker handler -> `MarketFeed` -> strategy callback -> `Engine.place` -> risk gate -> journal intent
(durability `os`, on) -> `TradingSession` (credits, JSON-RPC frame) onto the trading WebSocket.

The simulator runs in its own process (plain WS on loopback, limits lifted) and ticks every 5 ms; each run
places one resting bid per BTC_USDC-PERPETUAL ticker, one order in flight at a time. Four runs, in
alternating rounds (the host's state moves every figure by up to 2x within minutes; only interleaving makes
them comparable):

- `engine perps`: the engine on the gateway, as above;
- `engine AT`: the engine's Advanced Trade tick-to-wire (benches/bench_tick_to_wire.py's run, REST order);
- `SDK`: the official SDK, coinbase-advanced-py 2.0.0rc1: an unauthenticated `DeribitRetailWSClient` on the
  streams host whose ticker callback hands the tick to a thread that calls `private_buy` on an authenticated
  one (the SDK refuses an RPC from inside a callback: callbacks run on its reader thread);
- `bare uvloop`: the floor, a loop that parses the notification and writes a prebuilt `private/buy` frame
  to an already authenticated socket (aiohttp's WebSocket, no journal, risk or tracking).

The ends are taps: for aiohttp connections, the client protocol's `data_received` (bytes from the socket,
before any parsing) and a transport wrapper noting each write (benches/bench_tick_to_wire.py's
`tapped_connections`); for the SDK's `websockets` sync client, the socket's `recv` and `sendall`. The order
frame is the first sizeable write after the tick (client frames are masked, so it is known by its place, not
its text). Samples are handed to pytest-benchmark through a clock advancing one sample per round.

Bars: the engine on perpetuals p50 <= 0.5x the engine's AT tick-to-wire and <= 0.25x the SDK's. Correctness:
every order a round sent is on the gateway exactly once (the simulator's ledger, by label), and the engine's
journal holds each with its order id.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import queue
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import uvloop

from benches.bench_tick_to_wire import percentiles, stream_ticks, tapped_connections
from engine.auth import CdpKey
from engine.marketdata.feed import Ticker
from engine.trading.engine import Engine, EngineConfig
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.venues.derivatives import (
    CreditLimits,
    CreditPool,
    GatewayCredits,
    PerpLimit,
    TradingSession,
    derivatives_venue,
)
from tests.support.keys import new_ed25519_key
from tests.support.simproc import running_sim

BTC = "BTC_USDC-PERPETUAL"
AMOUNT = Decimal("0.0001")
SIM_FLAGS = ("--no-rate-limit", "--tick-interval", "0.005", "--funding-interval", "0")
TICKER_FRAME = b'"channel":"ticker.BTC_USDC-PERPETUAL.'  # server frames are neither masked nor compressed
ORDER_FRAME_MIN_BYTES = 96  # a private/buy frame; pongs and heartbeat answers are smaller
LIFTED_CREDITS = CreditLimits(matching=CreditPool(1, 1e6, 1e6), non_matching=CreditPool(1, 1e6, 1e6))
RUNS = ("engine perps", "engine AT", "SDK", "bare uvloop")


class SampleClock:
    """A pytest-benchmark timer that advances only by the sample a round hands it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


CLOCK = SampleClock()


@dataclass
class Samples:
    """One run's samples, and the stopwatch the taps drive (`on_read`, `on_write`)."""

    latencies: list[int] = field(default_factory=list)  # ticker bytes read -> order frame written, ns
    sent: list[str] = field(default_factory=list)  # labels
    last_ticker_read_ns: int = 0
    tick_started_ns: int = 0  # non-zero while an order is on its way to the wire

    def on_read(self, data: bytes) -> None:
        if TICKER_FRAME in data:
            self.last_ticker_read_ns = time.perf_counter_ns()

    def on_write(self, data: bytes) -> None:
        if self.tick_started_ns and len(data) >= ORDER_FRAME_MIN_BYTES:
            self.latencies.append(time.perf_counter_ns() - self.tick_started_ns)
            self.tick_started_ns = 0

    def start(self) -> None:
        read_ns = self.last_ticker_read_ns
        assert read_ns > 0
        self.tick_started_ns = read_ns


@contextmanager
def tapped_sockets(
    on_read: Callable[[socket.socket, bytes], None], on_write: Callable[[socket.socket, bytes], None]
) -> Iterator[None]:
    """Inside the block, every Python socket calls `on_read(sock, data)` on what `recv` returned and
    `on_write(sock, data)` once `sendall(data)` returned: the `websockets` sync client reads and writes so."""
    recv, sendall = socket.socket.recv, socket.socket.sendall

    def tapped_recv(self: socket.socket, size: int, *flags: int) -> bytes:
        data = recv(self, size, *flags)
        on_read(self, data)
        return data

    def tapped_sendall(self: socket.socket, data: Any, *flags: int) -> None:
        sendall(self, data, *flags)
        on_write(self, bytes(data))

    socket.socket.recv = tapped_recv  # type: ignore[method-assign,assignment]
    socket.socket.sendall = tapped_sendall  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.recv = recv  # type: ignore[method-assign]
        socket.socket.sendall = sendall  # type: ignore[method-assign]


@dataclass(frozen=True)
class Gateway:
    base_url: str
    key_file: Path

    @property
    def trading_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/ws/api/v2"

    @property
    def streams_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/streams/ws/api/v2"

    def key(self) -> CdpKey:
        return CdpKey.from_json_file(self.key_file)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    key_file = new_ed25519_key().write_portal_file(tmp_path_factory.mktemp("perp-tick") / "key.json")
    with running_sim(key_file, *SIM_FLAGS) as sim:
        yield Gateway(sim.base_url, key_file)


async def resting_price(gateway: Gateway) -> Decimal:
    key = gateway.key()
    async with TradingSession(key, gateway.trading_url) as session:
        ticker = await session.ticker(BTC)
        tick = (await session.get_instrument(BTC)).tick_size
    assert ticker.best_bid_price is not None
    price = ticker.best_bid_price * Decimal("0.7")
    return price - price % tick


# -- the runs ------------------------------------------------------------------------------------------------


async def engine_ticks(gateway: Gateway, journal: Path, samples: int, price: Decimal) -> Samples:
    key = gateway.key()
    stream = Samples()
    placed: list[Any] = []
    done = asyncio.Event()
    venue = derivatives_venue(
        key,
        gateway.base_url,
        products=(BTC,),
        market_channels=("ticker",),  # as the AT run: tickers only
        credits=GatewayCredits(key.name, LIFTED_CREDITS),
    )
    config = EngineConfig(journal_path=journal, durability="os", worker="bench", market_channels=())
    resting = PerpLimit(AMOUNT, price)
    with tapped_connections(stream.on_read, stream.on_write):
        async with Engine(config=config, venue=venue) as engine:
            await engine.wait_ready()

            async def on_ticker(ticker: Ticker) -> None:
                if done.is_set() or stream.tick_started_ns:  # one order in flight at a time: a clean sample
                    return
                stream.start()
                order = await engine.place(BTC, "BUY", resting)
                placed.append(order)
                stream.sent.append(order.client_order_id)
                if len(stream.latencies) >= samples:
                    done.set()

            engine.on_ticker(on_ticker, BTC)
            await asyncio.wait_for(done.wait(), timeout=30 + samples * 0.05)
            await asyncio.sleep(0.05)
            assert all(order.state is OrderState.OPEN for order in placed)
            await engine.cancel_all()
    return stream


def sdk_ticks(gateway: Gateway, samples: int, price: Decimal, prefix: str) -> Samples:
    from coinbase.deribit import DeribitRetailWSClient

    key = gateway.key()
    stream = Samples()
    labels = (f"{prefix}-{n}" for n in itertools.count())
    ticks: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    done = threading.Event()
    test_key = json.loads(gateway.key_file.read_text())
    trading = DeribitRetailWSClient(
        api_key=test_key["name"], api_secret=test_key["privateKey"], url=gateway.trading_url
    )
    streams = DeribitRetailWSClient(url=gateway.streams_url)

    def on_ticker(data: Any, channel: str) -> None:  # on the SDK's reader thread: no RPC allowed here
        if done.is_set() or stream.tick_started_ns:
            return
        stream.start()
        ticks.put(next(labels))

    def place() -> None:
        while (label := ticks.get()) is not None:
            trading.private_buy(BTC, amount=float(AMOUNT), price=float(price), type="limit", label=label)
            stream.sent.append(label)
            if len(stream.latencies) >= samples:
                done.set()

    key.close()
    # The SDK's websockets connections negotiate permessage-deflate: frames are compressed, so each end is
    # known by its socket: every read on the streams socket is a ticker (its one channel), and the first
    # write on the trading socket after a tick is the order.
    sockets: dict[str, Any] = {}

    def on_read(sock: socket.socket, data: bytes) -> None:
        if sock is sockets.get("streams") and data:
            stream.last_ticker_read_ns = time.perf_counter_ns()

    def on_write(sock: socket.socket, data: bytes) -> None:
        if sock is sockets.get("trading") and stream.tick_started_ns:
            stream.latencies.append(time.perf_counter_ns() - stream.tick_started_ns)
            stream.tick_started_ns = 0

    with tapped_sockets(on_read, on_write):
        trading.open()
        streams.open()
        sockets["trading"], sockets["streams"] = trading._ws.socket, streams._ws.socket
        worker = threading.Thread(target=place, daemon=True)
        worker.start()
        try:
            streams.subscribe([f"ticker.{BTC}.100ms"], on_ticker)
            assert done.wait(timeout=30 + samples * 0.05), "the SDK run did not finish"
        finally:
            ticks.put(None)
            worker.join(timeout=10)
            streams.close()
            trading.private_cancel_all()
            trading.close()
    return stream


async def bare_ticks(gateway: Gateway, samples: int, price: Decimal, prefix: str) -> Samples:
    """The floor: parse the notification, write a prebuilt frame (only its id and label change), read the
    reply. An already authenticated socket, nothing else on the path."""
    key = gateway.key()
    stream = Samples()
    ids = itertools.count(1_000)
    template = (
        '{"jsonrpc":"2.0","id":%d,"method":"private/buy","params":{"instrument_name":"'
        + BTC
        + f'","type":"limit","amount":{AMOUNT},"price":{price},"label":"%s"}}}}'
    ).encode()
    with tapped_connections(stream.on_read, stream.on_write):
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(gateway.trading_url) as trading,
            session.ws_connect(gateway.streams_url) as streams,
        ):
            auth = {"grant_type": "coinbase_cdp", "token": key.ws_jwt()}
            await trading.send_bytes(
                orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "public/auth", "params": auth})
            )
            assert "result" in orjson.loads((await trading.receive()).data)
            channel = f"ticker.{BTC}.100ms"
            subscribe = {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "public/subscribe",
                "params": {"channels": [channel]},
            }
            await streams.send_bytes(orjson.dumps(subscribe))
            async for message in streams:
                frame = orjson.loads(message.data)
                if frame.get("method") != "subscription":
                    continue
                stream.start()
                request_id = next(ids)
                label = f"{prefix}-{request_id}"
                await trading.send_bytes(template % (request_id, label.encode()))
                async with asyncio.timeout(10):
                    while True:
                        reply = orjson.loads((await trading.receive()).data)
                        if reply.get("id") == request_id:
                            break
                assert "result" in reply, reply
                stream.sent.append(label)
                if len(stream.latencies) >= samples:
                    break
            cancel = {"jsonrpc": "2.0", "id": 3, "method": "private/cancel_all", "params": {}}
            await trading.send_bytes(orjson.dumps(cancel))
            await trading.receive()
    key.close()
    return stream


def ledger_labels(base_url: str) -> list[str]:
    with urllib.request.urlopen(f"{base_url}/sim/ledger", timeout=30) as response:  # noqa: S310 (loopback)
        entries = json.load(response)["orders"]
    labels = []
    for entry in entries:
        if entry.get("source") == "derivatives":
            [terms] = entry["order_configuration"].values()
            labels.append(terms.get("label", ""))
    return labels


@pytest.fixture(scope="module")
def streams(
    gateway: Gateway, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> dict[str, Samples]:
    """Every run's samples, in alternating rounds, each round a fresh engine (or client) whose first ticks
    are a warm-up. Correct, not just fast: every order a round sent is on the gateway once."""
    timed = not request.config.getoption("benchmark_disable")
    rounds, samples, warmup = (8, 250, 25) if timed else (1, 15, 0)
    price = asyncio.run(resting_price(gateway))
    pooled = {run: Samples() for run in RUNS}
    for number in range(rounds):
        for run in RUNS:
            prefix = f"{run.replace(' ', '')}{number}"
            if run == "engine perps":
                journal = tmp_path_factory.mktemp("journal") / "journal.db"
                stream = uvloop.run(engine_ticks(gateway, journal, samples + warmup, price))
                with OrderJournal(journal) as reopened:
                    entries = {e.client_order_id: e for e in reopened.entries()}
                assert all(entries[c].order_id for c in stream.sent)
            elif run == "engine AT":
                journal = tmp_path_factory.mktemp("journal") / "journal.db"
                at = uvloop.run(
                    stream_ticks(gateway.base_url, gateway.key_file, journal, samples + warmup, False)
                )
                stream = Samples(latencies=at.latencies, sent=[])
            elif run == "SDK":
                stream = sdk_ticks(gateway, samples + warmup, price, prefix)
            else:
                stream = uvloop.run(bare_ticks(gateway, samples + warmup, price, prefix))
            if stream.sent:
                on_gateway = ledger_labels(gateway.base_url)
                wanted = set(stream.sent)
                assert sorted(label for label in on_gateway if label in wanted) == sorted(stream.sent), run
            assert len(stream.latencies) >= samples + warmup, run
            assert all(latency > 0 for latency in stream.latencies)
            pooled[run].latencies += stream.latencies[warmup:]
            pooled[run].sent += stream.sent
    return pooled


@pytest.mark.benchmark(group="perp-tick-to-wire", timer=CLOCK)
@pytest.mark.parametrize("run", RUNS)
def test_perp_tick_to_wire(benchmark: Any, streams: dict[str, Samples], run: str) -> None:
    if run == "engine perps":
        benchmark.extra_info.update(
            role="engine", label="engine tick-to-wire (perpetuals)", vs=["engine AT", "SDK", "bare uvloop"]
        )
    else:
        benchmark.extra_info.update(role="peer", label=run)
    latencies = streams[run].latencies
    queue_ = iter(latencies)

    def one_sample() -> None:
        CLOCK.now += next(queue_) / 1e9

    benchmark.pedantic(one_sample, rounds=len(latencies) if not benchmark.disabled else 1, iterations=1)
    p50, p99 = percentiles(latencies)
    benchmark.extra_info.update(p50_us=round(p50, 1), p99_us=round(p99, 1), samples=len(latencies))
    print(f"\nperp tick-to-wire ({run}) over {len(latencies)} tickers: p50 {p50:.1f} us, p99 {p99:.1f} us")


def test_bars(streams: dict[str, Samples], request: pytest.FixtureRequest) -> None:
    if request.config.getoption("benchmark_disable"):
        pytest.skip("timing disabled: no figures to hold to the bars")
    p50 = {run: percentiles(streams[run].latencies)[0] for run in RUNS}
    ratios = {
        "perps / AT": p50["engine perps"] / p50["engine AT"],
        "perps / SDK": p50["engine perps"] / p50["SDK"],
        "perps / bare uvloop": p50["engine perps"] / p50["bare uvloop"],
    }
    lines = [
        *(f"  p50 {run:<14} {value:9.1f} µs" for run, value in p50.items()),
        *(f"  {name:<22} {value:6.3f}x" for name, value in ratios.items()),
    ]
    print("\nperp tick-to-wire figures:\n" + "\n".join(lines))
    assert ratios["perps / AT"] <= 0.5
    assert ratios["perps / SDK"] <= 0.25
