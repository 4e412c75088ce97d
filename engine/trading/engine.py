"""`Engine`: what a strategy embeds. Orders under risk checks, journalled, tracked; positions; market data.

    async with Engine(key, EngineConfig(products=("BTC-USD",))) as engine:
        engine.on_ticker(on_tick, "BTC-USD")
        order = await engine.place("BTC-USD", Side.BUY, LimitGtc(base_size="0.001", limit_price="50000"))
        await order.done()

The order path, in order: risk gate (refusal raises `OrderRefused`, nothing is sent) -> journal intent
(durable before the request leaves) -> `Venue.submit` (Advanced Trade's retries keep the client_order_id, so
never a duplicate) -> the outcome, journalled in the next batch. Order states then follow the venue's order
events (and REST, after a gap or reconnect). On start the engine reconciles the journal with the venue first.

The Engine trades through a `Venue` (engine.venues.base) and never imports a venue's client: `Engine(key,
config)` builds the Advanced Trade venue from the key and config; `Engine(config=..., venue=...)` takes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, cast

import orjson

from engine.clock import SYSTEM_CLOCK, Clock
from engine.decimals import bounded_decimal
from engine.errors import ConfigError, EngineError, NotFound, OrderRejected
from engine.marketdata.book import OrderBook
from engine.marketdata.feed import Callback, MarketFeed, Ticker, Trade
from engine.marketdata.stream import Stream
from engine.net.retry import Backoff
from engine.net.transport import ApiKey
from engine.net.wire import decimal_str
from engine.risk.audit import AuditLog
from engine.risk.balance import required_funds
from engine.risk.gate import RiskConfig, RiskGate
from engine.risk.terms import OrderTerms
from engine.trading.ids import ClientOrderIds
from engine.trading.journal import Durability, JournalEntry, OrderJournal
from engine.trading.order_state import OrderState, advance
from engine.trading.portfolio import Portfolio
from engine.trading.reconcile import ReconcileReport, fetch_fills, reconcile
from engine.trading.tracked import TrackedOrder
from engine.trading.view import EngineView
from engine.venues import default_venue
from engine.venues.base import (
    CancelOutcome,
    Connection,
    MassCancelVenue,
    OrderEvent,
    OrderIntent,
    OrderUpdate,
    Venue,
    VenueOrder,
)

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
T = TypeVar("T")


# how long stopping waits to journal the fills still due (a venue that is down does not hold a shutdown)
_STOP_FILLS_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class EngineConfig:
    journal_path: str | Path = "engine-journal.db"
    durability: Durability | str = Durability.OS
    audit_path: str | Path | None = None  # default: beside the journal, "<journal>.audit.jsonl"
    worker: str = "eng"  # client_order_id prefix: which worker made an order
    products: Sequence[str] = ()  # market data for these products
    market_channels: Sequence[str] = ("level2", "ticker", "market_trades")
    user_channel: bool = True
    risk: RiskConfig = field(default_factory=RiskConfig)
    ws_url: str | None = None  # default: Coinbase's, or the base URL's /ws (the simulator)
    user_ws_url: str | None = None
    reconcile: bool = True
    account_refresh_s: float = 30.0
    housekeeping_s: float = 0.5
    journal_flush_s: float = 0.005  # at most one journal flush per this long: outcomes in between share it
    unknown_grace_s: float = 2.0  # an order with an unknown outcome is looked up after this long
    ws_backoff: Backoff = field(default_factory=Backoff)
    ws_idle_timeout: float = 10.0
    # Keep the event loop polling instead of sleeping while idle: a market event is then picked up by a loop
    # that never left the CPU, which cuts tail latency (tick-to-wire p99) at the price of one core at 100%.
    # Aeron calls this a busy-spin idle strategy; use it on a machine with a core to spare.
    busy_poll: bool = False
    # Settled orders leave `Engine.orders` once their fills are journalled (a bot running for weeks must not
    # grow with every order it ever placed); this many of the latest stay reachable through `Engine.order`.
    settled_orders_kept: int = 1_000
    # How many of this run's latest client_order_ids the journal keeps exactly in memory (~150 bytes each);
    # older ones go to a Bloom filter (~1.25 bytes each). Memory grows until the window is full, then stays.
    journal_recent_ids: int = 100_000


def _call_soon_threadsafe(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    """From another thread; nothing to do once the loop is closed (the engine stopped)."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


async def _until(done: Callable[[], bool], timeout: float) -> None:  # noqa: ASYNC109 (a bounded wait)
    """Until `done()`, checked every 10 ms, or `timeout` seconds: whichever comes first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        if loop.time() >= deadline:
            return
        await asyncio.sleep(0.01)


async def _busy_poll() -> None:
    """Yield to the loop forever: with a callback always ready, the loop polls and never blocks."""
    sleep = asyncio.sleep
    while True:
        await sleep(0)


class Engine:
    """The embeddable trading engine. Use `async with Engine(key, config, base_url=...) as engine:`."""

    def __init__(
        self,
        key: ApiKey | None = None,
        config: EngineConfig | None = None,
        *,
        base_url: str | None = None,
        client: Any = None,
        venue: Venue | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """With `key` (and optionally `base_url`, or an open Advanced Trade `client` to share): trade on
        Advanced Trade, its streams set up from `config`. With `venue`: trade through that venue instead.
        `clock` times the risk rules, the trading day, the journal's and audit log's records and the
        engine's own grace periods (engine.clock)."""
        self.config = config or EngineConfig()
        self.clock = clock
        if venue is None:
            if key is None:
                raise TypeError("Engine needs an API key, or a venue to trade through")
            venue = _advanced_trade(key, self.config, base_url, client)
        elif key is not None or client is not None:
            raise TypeError("pass either a venue or a key (and client), not both")
        self.venue: Venue = venue
        self.ids = ClientOrderIds(self.config.worker, uuid=venue.capabilities.uuid_client_order_ids)
        self.feed = MarketFeed()
        self.portfolio = Portfolio(clock=clock)
        self.orders: dict[str, TrackedOrder] = {}  # live: open, unresolved, or settled with fills still due
        self.settled: OrderedDict[str, TrackedOrder] = OrderedDict()  # the latest settled, oldest first
        self._retiring: list[str] = []  # settled, still in `orders` until their fills are journalled
        # venue orders the journal does not know (the latest `settled_orders_kept`)
        self.external_orders: OrderedDict[str, Mapping[str, Any]] = OrderedDict()
        self.reconcile_report: ReconcileReport | None = None
        self.journal: OrderJournal | None = None
        self.risk = RiskGate(self.config.risk, clock=clock)
        self._view = EngineView(self)
        self._open_by_product: dict[str, int] = {}
        self._open_total = 0
        self._unknown_since: dict[str, float] = {}
        self._order_listeners: list[Callable[[TrackedOrder], Any]] = []
        self._order_streams: list[Stream[TrackedOrder]] = []
        self._journal_thread: ThreadPoolExecutor | None = None  # durability fsync: every journal call
        self._journal_writer: ThreadPoolExecutor | None = None  # durability os: SQLite writes only
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush = 0.0  # loop time of the last journal flush
        self._tasks: set[asyncio.Task[Any]] = set()
        self._housekeeping: asyncio.Task[None] | None = None
        self._busy_poll: asyncio.Task[None] | None = None
        self._fills_due: set[str] = set()  # order ids whose fills to fetch and journal
        self._last_account_refresh = 0.0
        self._last_checkpoint = clock.monotonic()
        self._started = False

    # == lifecycle =======================================================================================

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        config = self.config
        durability = Durability(config.durability)
        journal_path = Path(config.journal_path)
        if durability is Durability.FSYNC:  # fsyncs must not stall the event loop
            self._journal_thread = ThreadPoolExecutor(1, thread_name_prefix="order-journal")
        else:  # records go to the intent log on the loop; SQLite's transactions and checkpoints run here
            self._journal_writer = ThreadPoolExecutor(1, thread_name_prefix="journal-writer")
        # Opening reads the journal (its ids into memory) on the loop with durability os: start-up only.
        open_journal = functools.partial(
            OrderJournal, journal_path, durability, recent_ids=config.journal_recent_ids, clock=self.clock
        )
        self.journal = await self._in_journal_thread(open_journal)
        self.journal.writer = self._journal_writer  # durability os: its statements run there from now on
        audit_path = config.audit_path or journal_path.with_name(journal_path.name + ".audit.jsonl")
        self.risk.audit = AuditLog(audit_path, clock=self.clock)
        await self.venue.open()
        try:
            await self._load_products()
            if config.reconcile:
                self.reconcile_report = await reconcile(self.venue, self.journal)
                self._audit_reconcile(self.reconcile_report)
            self._load_journal()
            await self.refresh_balances()
            self.venue.start(self.feed, self._on_order_event)
        except BaseException:
            await self._close_resources()
            raise
        loop = asyncio.get_running_loop()
        self._housekeeping = loop.create_task(self._run_housekeeping(), name="engine")
        if config.busy_poll:
            self._busy_poll = loop.create_task(_busy_poll(), name="engine-busy-poll")
        self._started = True

    async def stop(self) -> None:
        if self._busy_poll is not None:
            self._busy_poll.cancel()
            await asyncio.gather(self._busy_poll, return_exceptions=True)
            self._busy_poll = None
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            await asyncio.gather(self._housekeeping, return_exceptions=True)
            self._housekeeping = None
        # fills still due are journalled now: the next start fetches only those of orders it finds changed
        try:
            await asyncio.wait_for(self._fetch_due_fills(), _STOP_FILLS_TIMEOUT_S)
        except (EngineError, OSError, TimeoutError) as exc:
            log.warning("stopping: the fills of %d orders were not journalled: %s", len(self._fills_due), exc)
        await self._close_resources()
        self._started = False

    async def _close_resources(self) -> None:
        await self.venue.stop()
        # Strategy callbacks still running are cancelled and awaited while the journal is open: an order of
        # theirs in flight is then journalled UNKNOWN (resolved by the next start), not dropped mid-request.
        callbacks = self.feed.close()
        for stream in self._order_streams:
            stream.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *callbacks, return_exceptions=True)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._journal_writer is not None:  # let a write in progress, and any queued, finish
            writer, self._journal_writer = self._journal_writer, None
            if self.journal is not None:  # shutting down: what is left is written on the loop, in `close`
                self.journal.writer = None
            await asyncio.get_running_loop().run_in_executor(None, writer.shutdown)
        if self.journal is not None:
            await self._in_journal_thread(self.journal.close)
        self.risk.audit.close()
        await self.venue.close()
        if self._journal_thread is not None:
            self._journal_thread.shutdown(wait=True)
            self._journal_thread = None

    async def _load_products(self) -> None:
        self.portfolio.set_products({p.product_id: p.currencies for p in await self.venue.products()})

    def _load_journal(self) -> None:
        """Open orders from the journal are tracked again; positions are rebuilt from past fills."""
        assert self.journal is not None
        history: list[tuple[str, str, Decimal, Decimal]] = []
        for entry in self.journal.entries():
            if entry.filled_size > _ZERO:
                history.append((entry.product_id, entry.side, entry.filled_size, entry.filled_value))
            if entry.state.is_terminal:
                continue
            tracked = TrackedOrder(
                entry.client_order_id,
                entry.product_id,
                entry.side,
                state=entry.state,
                order_id=entry.order_id,
            )
            tracked.filled_size, tracked.filled_value = entry.filled_size, entry.filled_value
            tracked.total_fees = entry.total_fees
            self.orders[entry.client_order_id] = tracked
            self._count_open(entry.product_id, +1)
            if entry.state.is_unresolved:
                self._unknown_since[entry.client_order_id] = self.clock.monotonic()
        self.portfolio.restore(history)

    def _audit_reconcile(self, report: ReconcileReport) -> None:
        self.risk.audit.record(
            "reconciled",
            resolved={coid: state.value for coid, state in report.resolved.items()},
            refreshed={coid: state.value for coid, state in report.refreshed.items()},
            unknown_open_orders=[o.order_id for o in report.unknown_open_orders],
            fills_fetched=report.fills_fetched,
        )

    @property
    def client(self) -> Any:
        """The venue's own REST client (Advanced Trade: `Client`), for calls the `Venue` protocol does not
        cover; the Engine itself trades through `venue`."""
        return getattr(self.venue, "client", None)

    @property
    def sockets(self) -> tuple[Connection, ...]:
        """The venue's long-lived connections (their `stats` count gaps and reconnects)."""
        return self.venue.connections

    def replace_key(self, key: ApiKey) -> None:
        """Rotate the API key: the venue's requests and subscriptions from now on are signed with `key`
        (Advanced Trade: see `Client.replace_key`). Open connections stay up; the old key is the caller's."""
        self.venue.replace_key(key)

    async def wait_ready(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (one deadline over several waits)
        """Wait until every socket is connected and every subscribed book has its snapshot."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self.venue.wait_ready(timeout)
        if "level2" in self.config.market_channels:
            while not all(self.feed.book(p).ready for p in self.config.products):
                if loop.time() > deadline:
                    raise TimeoutError("order books did not receive their snapshots in time")
                await asyncio.sleep(0.01)

    # == the journal, on the loop (durability os) or on its own thread (fsync) ===========================

    async def _in_journal_thread(self, fn: Callable[..., T], *args: Any) -> T:
        if self._journal_thread is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._journal_thread, fn, *args)

    def _journal_outcome(self, tracked: TrackedOrder) -> None:
        journal = self.journal
        if journal is None:
            return
        record = functools.partial(
            journal.record_outcome,
            tracked.client_order_id,
            tracked.state,
            order_id=tracked.order_id,
            filled_size=tracked.filled_size,
            filled_value=tracked.filled_value,
            total_fees=tracked.total_fees,
            failure_reason=tracked.failure_reason,
        )
        if self._journal_thread is None:
            record()
        else:
            self._journal_thread.submit(record)
        if self._flush_handle is None:
            # Flush right behind the outcome (the loop has just handled a response; the next market event is
            # likely further off than the flush takes), unless the last flush was under `journal_flush_s`
            # ago: then at that mark, so a burst of outcomes still shares one transaction. A flush a fixed
            # delay after each outcome lands where a strategy trading on a steady beat sends its next order.
            loop = asyncio.get_running_loop()
            due = self._last_flush + self.config.journal_flush_s
            if loop.time() >= due:
                self._flush_handle = loop.call_soon(self._flush_journal)
            else:
                self._flush_handle = loop.call_at(due, self._flush_journal)

    def _flush_journal(self) -> None:
        self._flush_handle = None
        loop = asyncio.get_running_loop()
        self._last_flush = loop.time()
        journal = self.journal
        if journal is None:
            return
        if self._journal_thread is not None:
            self._journal_thread.submit(journal.flush)
        elif self._journal_writer is not None and journal.start_flush():
            written = self._journal_writer.submit(journal.write_queued)
            written.add_done_callback(lambda done: _call_soon_threadsafe(loop, self._journal_written, done))
        elif self._journal_writer is None:  # stopping: the writer is gone
            journal.flush()

    def _journal_written(self, written: Future[None]) -> None:
        journal = self.journal
        if journal is not None:
            journal.settle()
        error = written.exception()
        if error is not None:  # the records stay in the intent log and queued: the next flush retries them
            log.error("writing the journal to SQLite failed (retried at the next flush): %r", error)

    # == orders ==========================================================================================

    async def place(
        self,
        product_id: str,
        side: str,
        configuration: Any,
        *,
        client_order_id: str | None = None,
        leverage: Any = None,
        margin_type: Any = None,
    ) -> TrackedOrder:
        """Place an order (spot; futures with `leverage`/`margin_type`); returns once the exchange answered.

        `side` and `configuration` are the venue's (Advanced Trade: `Side` and an order configuration such as
        `LimitGtc`, from engine.venues.advanced.orders).
        Raises `OrderRefused` (risk, nothing sent), `OrderRejected` (the exchange refused it), or the client's
        errors; after `OutcomeUnknown` the order stays tracked as UNKNOWN and is resolved in the background.
        """
        request = self.venue.order_request(
            product_id,
            side,
            configuration,
            client_order_id=client_order_id or self.ids.next(),
            leverage=leverage,
            margin_type=margin_type,
        )
        return await self.submit(request)

    def check(self, request: OrderIntent) -> None:
        """Run the risk checks `submit` would run, placing nothing (a dry run): raises `OrderRefused`."""
        self.risk.check(OrderTerms.of(request), self._view)

    async def journalled(self, client_order_id: str) -> JournalEntry | None:
        """The journal's record of a client_order_id, from this run or an earlier one; None if never used.
        (An order of this run is also in `orders`, whose state is newer than the journal's batched one.)"""
        assert self.journal is not None
        if self._journal_thread is None:  # from memory, or awaited from the journal's writer thread
            return await self.journal.entry(client_order_id)
        return await self._in_journal_thread(self.journal.get, client_order_id)

    async def submit(self, request: OrderIntent) -> TrackedOrder:
        """Place an order the venue prepared (Advanced Trade: an `OrderRequest`; see `place`)."""
        if not self._started:
            raise EngineError("the engine is not started: use `async with Engine(...)`")
        terms = OrderTerms.of(request)
        self.risk.check(terms, self._view)
        client_order_id = request.client_order_id
        if client_order_id in self.orders:
            raise ValueError(f"client_order_id {client_order_id} was already used")
        tracked = TrackedOrder(client_order_id, request.product_id, terms.side, request=request, terms=terms)
        self.orders[client_order_id] = tracked
        self._count_open(request.product_id, +1)
        self._reserve(tracked)
        assert self.journal is not None
        try:
            if self._journal_thread is None:
                # durability os: the intent goes to the journal's intent log (a memory copy, no system call);
                # the flush timer (`journal_flush_s`) writes it to SQLite off the order path. A strategy's own
                # id is checked in memory, or awaited from the writer thread when memory cannot tell.
                if not self.ids.minted(client_order_id):
                    await self.journal.ensure_new(client_order_id)
                self.journal.record_intent(
                    client_order_id, request.product_id, terms.side, request.body.decode(), fresh=True
                )
            else:
                await self._in_journal_thread(
                    self.journal.record_intent,
                    client_order_id,
                    request.product_id,
                    terms.side,
                    request.body.decode(),
                )
        except BaseException:
            self._settle(tracked, OrderState.NOT_PLACED, failure_reason="JOURNAL_WRITE_FAILED", journal=False)
            raise
        try:
            result = await self.venue.submit(request)
        except OrderRejected as rejected:
            self.risk.record_failure(rejected)
            self._settle(tracked, OrderState.REJECTED, failure_reason=rejected.failure_reason or "REJECTED")
            raise
        except BaseException as error:
            # Any other failure (or our own cancellation) leaves the outcome open: look it up later.
            if isinstance(error, Exception):
                self.risk.record_failure(error)
            self._unknown_since[client_order_id] = self.clock.monotonic()
            self._settle(tracked, OrderState.UNKNOWN, failure_reason=type(error).__name__)
            raise
        self.risk.record_success()
        self._settle(tracked, OrderState.OPEN, order_id=result.order_id)
        if self.risk.kill_switch.engaged and tracked.is_open:  # acknowledged after a kill: take it off
            self._spawn(self.cancel(tracked))
        return tracked

    def _reserve(self, tracked: TrackedOrder) -> None:
        terms = tracked.terms
        currencies = self._view.currencies(tracked.product_id)
        if terms is None or currencies is None:
            return
        bid, ask = self.feed.best_bid_ask(tracked.product_id)
        amount = required_funds(terms, bid, ask, self.config.risk.fee_rate)
        if amount is not None:
            currency = currencies[1] if terms.is_buy else currencies[0]
            self.portfolio.reserve(tracked.client_order_id, currency, amount)

    def _count_open(self, product_id: str, change: int) -> None:
        self._open_by_product[product_id] = self._open_by_product.get(product_id, 0) + change
        self._open_total += change

    def _settle(
        self,
        tracked: TrackedOrder,
        state: OrderState,
        *,
        order_id: str | None = None,
        filled_size: Decimal | None = None,
        filled_value: Decimal | None = None,
        total_fees: Decimal | None = None,
        failure_reason: str | None = None,
        journal: bool = True,
    ) -> None:
        """Apply what was learnt about an order: state (monotonic), ids, fills; journal and notify."""
        before = tracked.state
        changed = False
        if order_id and tracked.order_id != order_id:
            tracked.order_id = order_id
            changed = True
        if filled_size is not None and filled_size > tracked.filled_size:
            value = filled_value if filled_value is not None else tracked.filled_value
            fees = total_fees if total_fees is not None else tracked.total_fees
            self.portfolio.apply_fill(
                tracked.client_order_id,
                tracked.product_id,
                tracked.side,
                filled_size - tracked.filled_size,
                value - tracked.filled_value,
                fees - tracked.total_fees,
            )
            tracked.filled_size, tracked.filled_value, tracked.total_fees = filled_size, value, fees
            if tracked.order_id:
                self._fills_due.add(tracked.order_id)
            changed = True
        elif total_fees is not None and total_fees > tracked.total_fees:  # fees told apart from the fills
            self.portfolio.apply_fees(total_fees - tracked.total_fees)
            tracked.total_fees = total_fees
            changed = True
        after = advance(before, state)
        if after is not before:
            tracked.state = after
            changed = True
            if failure_reason and after in (OrderState.REJECTED, OrderState.UNKNOWN, OrderState.NOT_PLACED):
                tracked.failure_reason = failure_reason
            if not after.is_unresolved:
                self._unknown_since.pop(tracked.client_order_id, None)
            if after.is_terminal:
                self._count_open(tracked.product_id, -1)
                self.portfolio.release(tracked.client_order_id)
                tracked._mark_done()
                self._retiring.append(tracked.client_order_id)
        if not changed:
            return
        if journal:
            self._journal_outcome(tracked)
        for listener in self._order_listeners:
            try:
                result = listener(tracked)
                if asyncio.iscoroutine(result):
                    self._spawn(result)
            except Exception:
                log.exception("order listener %r failed", listener)
        for stream in self._order_streams:
            stream.push(tracked)

    def _settle_from_exchange(self, tracked: TrackedOrder, order: VenueOrder) -> None:
        self._settle(
            tracked,
            order.state,
            order_id=order.order_id or None,
            filled_size=order.filled_size,
            filled_value=order.filled_value,
            total_fees=order.total_fees,
        )

    def order(self, client_order_id: str) -> TrackedOrder | None:
        """The order with this client_order_id: live, or among the latest `settled_orders_kept` settled
        (older ones are in the journal: `journalled`)."""
        return self.orders.get(client_order_id) or self.settled.get(client_order_id)

    def _retire_settled(self) -> None:
        """Move settled orders whose fills are journalled out of `orders` into the bounded `settled`."""
        still_due: list[str] = []
        kept = self.config.settled_orders_kept
        for client_order_id in self._retiring:
            tracked = self.orders[client_order_id]  # settled once, and only retiring takes it out
            if tracked.order_id is not None and tracked.order_id in self._fills_due:
                still_due.append(client_order_id)
                continue
            del self.orders[client_order_id]
            self.settled[client_order_id] = tracked
            while len(self.settled) > kept:
                self.settled.popitem(last=False)
        self._retiring = still_due

    def _tracked(self, order: TrackedOrder | str) -> TrackedOrder:
        if isinstance(order, TrackedOrder):
            return order
        tracked = self.order(order)
        if tracked is None:
            raise KeyError(f"no tracked order with client_order_id {order}")
        return tracked

    async def cancel(self, order: TrackedOrder | str) -> bool:
        """Cancel one order. True if the exchange cancelled it; False if it was already done or could not be
        (its true state is then fetched)."""
        tracked = self._tracked(order)
        if not tracked.is_open or tracked.order_id is None:
            return False
        results = await self.venue.cancel([tracked.order_id])
        self.risk.audit.record("cancel", client_order_id=tracked.client_order_id, order_id=tracked.order_id)
        return self._apply_cancels(results) == 1

    def _apply_cancels(self, results: list[CancelOutcome]) -> int:
        by_order_id = {o.order_id: o for o in self.orders.values() if o.order_id and o.is_open}
        cancelled = 0
        for result in results:
            tracked = by_order_id.get(result.order_id)
            if result.success:
                cancelled += 1
                if tracked is not None:
                    self._settle(tracked, OrderState.CANCELLED)
            elif tracked is not None:  # already filled or gone: learn its real state
                self._spawn(self._refresh_order(tracked))
        return cancelled

    async def cancel_all(self, product_id: str | None = None, *, include_unknown: bool = False) -> int:
        """Cancel every open order the engine tracks (in one product, or all). With `include_unknown`, also
        the exchange's open orders the engine does not track. Returns how many were cancelled."""
        order_ids = [
            o.order_id
            for o in self.orders.values()
            if o.is_open and o.order_id and (product_id is None or o.product_id == product_id)
        ]
        if include_unknown:
            for listed in await self.venue.open_orders(product_id):
                if listed.order_id not in order_ids:
                    order_ids.append(listed.order_id)
        cancelled = 0
        batch = self.venue.capabilities.cancel_batch
        for start in range(0, len(order_ids), batch):
            cancelled += self._apply_cancels(await self.venue.cancel(order_ids[start : start + batch]))
        return cancelled

    async def edit(self, order: TrackedOrder | str, *, size: Any = None, price: Any = None) -> bool:
        """Change a resting limit order's size and/or price, under the same risk rules as a new order."""
        tracked = self._tracked(order)
        if tracked.order_id is None or not tracked.is_open or tracked.terms is None:
            return False
        new_size = bounded_decimal(size, "size") if size is not None else tracked.terms.base_size
        new_price = bounded_decimal(price, "price") if price is not None else tracked.terms.limit_price
        edited = replace(
            tracked.terms,
            base_size=new_size,
            limit_price=new_price,
            prices=(new_price,) if new_price is not None else tracked.terms.prices,
        )
        # Only the increase in size is new exposure; open-order and balance rules see the order as it is.
        self.risk.check(edited, self._view)
        success = await self.venue.edit(tracked.order_id, size=size, price=price)
        if success:
            tracked.terms = edited
        return success

    async def close_position(self, product_id: str, size: Any = None) -> TrackedOrder:
        """Close a futures position at market, journalled like any order."""
        if not self.venue.capabilities.close_position:  # refused before an intent is journalled for it
            raise ConfigError(f"{self.venue.name} has no positions to close: sell the balance instead")
        client_order_id = self.ids.next()
        # the size as the decimal text that goes on the wire, checked before anything is tracked: a bad size
        # leaves nothing behind
        size_text = None if size is None else decimal_str(size, "size")
        tracked = TrackedOrder(client_order_id, product_id, "CLOSE")
        self.orders[client_order_id] = tracked
        self._count_open(product_id, +1)
        assert self.journal is not None
        self.risk.audit.record(
            "close_position", client_order_id=client_order_id, product_id=product_id, size=size_text
        )
        body = orjson.dumps(
            {"client_order_id": client_order_id, "product_id": product_id, "size": size_text}
        ).decode()
        record = functools.partial(self.journal.record_intent, fresh=True)  # a minted id: new
        await self._in_journal_thread(record, client_order_id, product_id, "CLOSE", body)
        try:
            result = await self.venue.close_position(product_id, size_text, client_order_id=client_order_id)
        except OrderRejected as rejected:
            self._settle(tracked, OrderState.REJECTED, failure_reason=rejected.failure_reason or "REJECTED")
            raise
        except BaseException as error:
            self._unknown_since[client_order_id] = self.clock.monotonic()
            self._settle(tracked, OrderState.UNKNOWN, failure_reason=type(error).__name__)
            raise
        tracked.side = result.side or tracked.side
        self._settle(tracked, OrderState.OPEN, order_id=result.order_id)
        return tracked

    async def kill(self, reason: str = "kill switch") -> int:
        """Refuse every new order from now on and cancel every open order on the exchange, tracked or not."""
        self.risk.engage_kill_switch(reason)
        cancelled = await self._cancel_everything()
        self.risk.audit.record("kill_switch_cancelled", cancelled=cancelled)
        return cancelled

    async def drain(self, reason: str = "draining", timeout: float = 5.0) -> int:  # noqa: ASYNC109
        """Before stopping (SIGTERM): refuse new orders, wait up to `timeout` for orders in flight to be
        answered, cancel every open order, and wait up to `timeout` again for the cancels to be confirmed (so
        the journal holds them settled). The venue's cancel-on-disconnect is a safety net, not this."""
        self.risk.engage_kill_switch(reason)
        orders = self.orders
        await _until(lambda: all(o.state is not OrderState.PENDING_NEW for o in orders.values()), timeout)
        cancelled = await self._cancel_everything()
        await _until(lambda: all(o.state is not OrderState.OPEN for o in orders.values()), timeout)
        self.risk.audit.record("drained", cancelled=cancelled, still_open=len(self.open_orders()))
        return cancelled

    async def _cancel_everything(self) -> int:
        """One mass cancel where the venue has it (each tracked order's state then follows from its events,
        and is looked up besides); else every open order, tracked or not, by id."""
        if not self.venue.capabilities.mass_cancel:
            return await self.cancel_all(include_unknown=True)
        cancelled = await cast(MassCancelVenue, self.venue).cancel_all_orders()
        for tracked in self.open_orders():
            self._spawn(self._refresh_order(tracked))
        return cancelled

    def open_orders(self, product_id: str | None = None) -> list[TrackedOrder]:
        return [
            o
            for o in self.orders.values()
            if o.is_open and (product_id is None or o.product_id == product_id)
        ]

    def on_order(self, callback: Callable[[TrackedOrder], Any]) -> None:
        """Called with the order after every change of state or fills."""
        self._order_listeners.append(callback)

    def order_updates(self, maxlen: int = 4096) -> Stream[TrackedOrder]:
        stream: Stream[TrackedOrder] = Stream(maxlen)
        self._order_streams.append(stream)
        return stream

    # == order events from the venue =====================================================================

    def _on_order_event(self, event: OrderEvent) -> None:
        if isinstance(event, OrderUpdate):
            tracked = self.order(event.client_order_id)
            if tracked is None:
                self._note_external(event.order_id or "", event.raw)
                return
            if event.side is not None and tracked.side == "CLOSE":  # its fills move the position this way
                tracked.side = event.side
            self._settle(
                tracked,
                event.state,
                order_id=event.order_id,
                filled_size=event.filled_size,
                filled_value=event.filled_value,
                total_fees=event.total_fees,
            )
        else:
            # The snapshot lists open orders only: an order we hold open that is missing from it finished
            # while we were not listening. Ask the venue what became of it.
            for tracked in list(self.orders.values()):
                if tracked.state is OrderState.OPEN and tracked.client_order_id not in event.client_order_ids:
                    self._spawn(self._refresh_order(tracked))

    def _note_external(self, order_id: str, raw: Mapping[str, Any]) -> None:
        self.external_orders[order_id] = raw
        self.external_orders.move_to_end(order_id)
        while len(self.external_orders) > self.config.settled_orders_kept:
            self.external_orders.popitem(last=False)

    async def _refresh_order(self, tracked: TrackedOrder) -> None:
        try:
            if tracked.order_id:
                order: VenueOrder | None = await self.venue.order(tracked.order_id)
            else:
                order = await self.venue.find_order(tracked.client_order_id)
        except NotFound:
            return
        if order is not None:
            self._settle_from_exchange(tracked, order)

    # == balances, housekeeping ==========================================================================

    async def refresh_balances(self) -> None:
        """Replace the balances with the exchange's accounts (done every `account_refresh_s` too)."""
        in_flight = [c for c, o in self.orders.items() if o.state is OrderState.PENDING_NEW]
        available: dict[str, Decimal] = {}
        holds: dict[str, Decimal] = {}
        for balance in await self.venue.balances():
            if balance.available is not None:
                available[balance.currency] = balance.available
            if balance.hold is not None:
                holds[balance.currency] = balance.hold
        self.portfolio.load_balances(available, holds, in_flight=in_flight)
        if self.venue.capabilities.margin:  # a margined account's positions are the venue's to say
            self.portfolio.load_positions(await self.venue.positions())
        self._last_account_refresh = self.clock.monotonic()

    async def _run_housekeeping(self) -> None:
        config = self.config
        while True:
            await asyncio.sleep(config.housekeeping_s)
            try:
                await self._housekeep()
            except (EngineError, OSError, TimeoutError) as exc:
                log.warning("housekeeping: %s", exc)

    async def _fetch_due_fills(self) -> None:
        """Journal the fills of orders that filled since the last pass. An order leaves the due set only once
        its fills are journalled: a pass cancelled half-way (the engine stopping) leaves it due."""
        if not self._fills_due or self.journal is None:
            return
        due = list(self._fills_due)
        if self._journal_thread is None:
            await self.journal.written()  # on the writer thread
            await fetch_fills(self.venue, self.journal, due)
        else:
            await self._in_journal_thread(self.journal.flush)
        self._fills_due.difference_update(due)

    async def _housekeep(self) -> None:
        self.risk.audit.flush()
        now = self.clock.monotonic()
        for client_order_id, since in list(self._unknown_since.items()):
            tracked = self.orders.get(client_order_id)
            if tracked is None or now - since < self.config.unknown_grace_s:
                continue
            if tracked.state is OrderState.PENDING_NEW and tracked.request is not None:
                continue  # our own request is still in flight
            found = await self.venue.find_order(client_order_id)
            if found is None:
                self._settle(tracked, OrderState.NOT_PLACED, failure_reason="NOT_FOUND")
            else:
                self._settle_from_exchange(tracked, found)
        await self._fetch_due_fills()
        self._retire_settled()
        if now - self._last_account_refresh >= self.config.account_refresh_s:
            await self.refresh_balances()
        if now - self._last_checkpoint >= 60.0 and self.journal is not None:
            self._last_checkpoint = now
            if self._journal_writer is not None:  # its fsyncs off the loop, as every SQLite write
                self.journal.start_flush()
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(self._journal_writer, self.journal.write_queued, True)
                self.journal.settle()
            else:
                await self._in_journal_thread(self.journal.checkpoint)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("engine background task failed: %r", task.exception())

    # == market data =====================================================================================

    def book(self, product_id: str) -> OrderBook:
        return self.feed.book(product_id)

    def on_ticker(self, callback: Callback[Ticker], product_id: str | None = None) -> None:
        self.feed.on_ticker(callback, product_id)

    def on_trade(self, callback: Callback[Trade], product_id: str | None = None) -> None:
        self.feed.on_trade(callback, product_id)

    def on_book(self, callback: Callback[OrderBook], product_id: str | None = None) -> None:
        self.feed.on_book(callback, product_id)

    def tickers(self, product_id: str | None = None) -> Stream[Ticker]:
        return self.feed.ticker_stream(product_id)

    def trades(self, product_id: str | None = None) -> Stream[Trade]:
        return self.feed.trade_stream(product_id)

    def books(self, product_id: str | None = None) -> Stream[OrderBook]:
        return self.feed.book_stream(product_id)

    # == positions and balances ==========================================================================

    def position(self, product_id: str) -> Decimal:
        return self.portfolio.position(product_id)

    def balances(self) -> dict[str, Decimal]:
        return self.portfolio.balances()

    def __repr__(self) -> str:
        return f"Engine(worker={self.config.worker!r}, venue={self.venue!r}, open={self._open_total})"


def _advanced_trade(key: ApiKey, config: EngineConfig, base_url: str | None, client: Any) -> Venue:
    """The default venue, Advanced Trade, with the streams the config asks for."""
    return default_venue(
        key,
        base_url=base_url,
        client=client,
        products=config.products,
        market_channels=config.market_channels,
        user_channel=config.user_channel,
        ws_url=config.ws_url,
        user_ws_url=config.user_ws_url,
        ws_backoff=config.ws_backoff,
        ws_idle_timeout=config.ws_idle_timeout,
    )
