"""Coinbase's global perpetuals (the Deribit-powered gateway) behind the `Venue` protocol.

One `TradingSession` carries every call and the `user.changes` / `user.portfolio` channels; `MarketStreams`
carries books and tickers from the streams host into the Engine's `MarketFeed`. Our client order id is the
order's `label`: the gateway does not make labels unique or idempotent, the Engine's ids do, so an order
whose answer was lost is found with `private/get_order_state_by_label` and never sent twice.

The gateway reports an order's new state before the fill that caused it (or, on `user.changes`, both in one
message): an order update carrying more fill than its trades explain waits for those trades, so the Engine
always learns a fill with its fee; a short timer sends it on regardless if the trades never come. After a
reconnect the open orders are fetched and reported as an `OpenOrdersSnapshot`, so what happened in the gap
is looked up. https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/guides/derivatives/technical
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from engine._signer import CdpKey
from engine.errors import EngineError, GatewayError, NotFound, OrderRejected
from engine.marketdata.feed import MarketFeed
from engine.net.transport import ApiKey
from engine.venues.base import (
    Acknowledged,
    Balance,
    CancelOutcome,
    Capabilities,
    MarginAccount,
    OpenOrdersSnapshot,
    OrderEvent,
    OrderIntent,
    OrderState,
    OrderUpdate,
    Position,
    PositionRisk,
    ProductInfo,
    VenueFill,
    VenueOrder,
)
from engine.venues.derivatives.connection import SessionConfig, SocketStats
from engine.venues.derivatives.credits import GatewayCredits
from engine.venues.derivatives.orders import PerpConfiguration, PerpMarket, PerpOrderRequest, order_side
from engine.venues.derivatives.session import TRADING_WS_URL, TradingSession
from engine.venues.derivatives.streams import STREAMS_WS_URL, MarketStreams, ticker_value
from engine.venues.derivatives.types import (
    AccountSummary,
    InstrumentKind,
    Order,
    OrderResult,
    TickerInfo,
    UserChanges,
    UserTrade,
)
from engine.venues.derivatives.types import OrderState as GatewayState
from engine.venues.derivatives.types import Position as GatewayPosition

__all__ = ["DerivativesVenue", "derivatives_venue", "venue_order"]

log = logging.getLogger("engine.venues.derivatives")

_ZERO = Decimal(0)
_ORDER_NOT_FOUND = 10004
# how long an order update that reports more fill than its trades waits for them before it goes on as it is
_TRADES_GRACE_S = 0.5

_STATE = {
    GatewayState.OPEN: OrderState.OPEN,
    GatewayState.UNTRIGGERED: OrderState.OPEN,
    GatewayState.TRIGGERED: OrderState.OPEN,
    GatewayState.FILLED: OrderState.FILLED,
    GatewayState.CANCELLED: OrderState.CANCELLED,
    GatewayState.REJECTED: OrderState.FAILED,  # e.g. a post-only order that would have crossed
}


def local_state(order: Order) -> OrderState:
    if order.order_state is GatewayState.ARCHIVE:  # only old orders: done, one way or the other
        full = order.amount is not None and order.filled_amount >= order.amount
        return OrderState.FILLED if full else OrderState.CANCELLED
    return _STATE.get(order.order_state, OrderState.UNKNOWN)


def venue_order(order: Order, fees: Decimal | None = None) -> VenueOrder:
    return VenueOrder(
        order.order_id,
        order.label,
        order.instrument_name,
        order.direction.value.upper(),
        local_state(order),
        order.filled_amount,
        _filled_value(order),
        fees,
    )


def _filled_value(order: Order) -> Decimal:
    if order.average_price is None or not order.filled_amount:
        return _ZERO
    return order.filled_amount * order.average_price


def _iso(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="milliseconds")


def _venue_fill(trade: UserTrade) -> VenueFill:
    return VenueFill(
        trade.trade_id,
        trade.trade_id,
        trade.order_id,
        trade.label or None,
        trade.instrument_name,
        trade.direction.value.upper(),
        trade.price,
        trade.amount,
        trade.fee,
        _iso(trade.timestamp),
    )


def _position_risk(position: GatewayPosition) -> PositionRisk:
    size = position.size if position.direction.value != "sell" else -abs(position.size)
    return PositionRisk(
        position.instrument_name,
        size,
        position.average_price,
        position.mark_price,
        position.leverage,
        position.initial_margin,
        position.maintenance_margin,
        position.estimated_liquidation_price or None,
        position.floating_profit_loss,
        position.realized_profit_loss,
        position.realized_funding,
    )


def _margin_account(summary: AccountSummary) -> MarginAccount:
    return MarginAccount(
        summary.currency.upper(),
        summary.equity,
        summary.initial_margin,
        summary.maintenance_margin,
        summary.available_funds,
        summary.session_upl,
        summary.session_rpl,
    )


@dataclass(slots=True)
class _Traded:
    """What the trades of one order added up to so far."""

    amount: Decimal = _ZERO
    value: Decimal = _ZERO
    fees: Decimal = _ZERO
    trade_ids: set[str] = field(default_factory=set)
    order: Order | None = None  # its latest state
    waiting: asyncio.TimerHandle | None = None  # an update held for its trades


class _Connection:
    """A gateway socket as the Engine watches it (`connected` as an event, `stats` its counters)."""

    __slots__ = ("socket",)

    def __init__(self, socket: TradingSession | MarketStreams) -> None:
        self.socket = socket

    @property
    def connected(self) -> asyncio.Event:
        return self.socket.ready

    @property
    def stats(self) -> SocketStats:
        return self.socket.stats


class DerivativesVenue:
    """The gateway as a `Venue` and a `MarginVenue`. See the module docstring.

    Args:
        key: the CDP key (the socket authenticates with it at `public/auth`).
        url, streams_url: the trading and streams hosts (the simulator's on 127.0.0.1 in tests).
        products: instruments whose books and tickers go to the Engine's `MarketFeed`.
        market_channels: of `book` and `ticker` (the ticker also carries the mark price).
        currency: the settlement currency whose orders, positions and portfolio the venue follows.
        session_config, credits: the trading session's (see `TradingSession`).
    """

    name = "derivatives"
    capabilities = Capabilities(
        idempotent_client_order_id=False,
        order_events=True,
        edit=True,
        close_position=True,
        cancel_batch=20,
        mass_cancel=True,
        margin=True,
    )

    def __init__(
        self,
        key: CdpKey,
        *,
        url: str = TRADING_WS_URL,
        streams_url: str = STREAMS_WS_URL,
        products: Sequence[str] = (),
        currency: str = "USDC",
        market_data: bool = True,
        market_channels: Sequence[str] = ("book", "ticker"),
        book_interval: str = "100ms",
        ticker_interval: str = "100ms",
        session_config: SessionConfig | None = None,
        credits: GatewayCredits | None = None,
        streams_config: SessionConfig | None = None,
    ) -> None:
        self.session = TradingSession(key, url, config=session_config, credits=credits)
        self.streams = MarketStreams(streams_url, config=streams_config) if market_data and products else None
        self.products_subscribed = tuple(products)
        unknown = set(market_channels) - {"book", "ticker"}
        if unknown:
            raise ValueError(f"market_channels are book and ticker, not {sorted(unknown)}")
        self.market_channels = tuple(market_channels)
        self.currency = currency.upper()
        self.book_interval, self.ticker_interval = book_interval, ticker_interval
        self._on_order_event: Callable[[OrderEvent], None] | None = None
        self._traded: dict[str, _Traded] = {}  # by order id, until the order is done
        self._marks: dict[str, Decimal] = {}
        self._leverage: dict[str, Decimal] = {}
        self._positions: dict[str, PositionRisk] = {}
        self._account: MarginAccount | None = None
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._resync = asyncio.Event()
        self.resyncs = 0  # open-order snapshots fetched after a reconnect
        self.session.on_disconnect(self._resync.set)

    @property
    def client(self) -> TradingSession:
        """The trading session, for the gateway's calls the `Venue` protocol does not cover."""
        return self.session

    # -- lifecycle --------------------------------------------------------------------------------------

    async def open(self) -> None:
        await self.session.open()

    async def close(self) -> None:
        # `private/logout` ends the session without firing cancel-on-disconnect: orders left resting on a
        # stop are the caller's choice (`Engine.stop(cancel_orders=True)` cancels them first).
        await self.session.logout()
        for handle in [t.waiting for t in self._traded.values() if t.waiting is not None]:
            handle.cancel()

    def start(self, market: MarketFeed, on_order_event: Callable[[OrderEvent], None]) -> None:
        self._on_order_event = on_order_event
        self._spawn(self._subscribe(market))
        self._spawn(self._resync_after_reconnects())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.streams is not None:
            await self.streams.close()
        self._on_order_event = None

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109 (the Engine's one deadline)
        await asyncio.wait_for(self._ready.wait(), timeout)

    @property
    def connections(self) -> tuple[_Connection, ...]:
        sockets: list[TradingSession | MarketStreams] = [self.session]
        if self.streams is not None:
            sockets.append(self.streams)
        return tuple(_Connection(socket) for socket in sockets)

    def replace_key(self, key: ApiKey) -> None:
        """The next `public/auth` (re-authentication or reconnect) uses `key`; the open socket stays up."""
        if not isinstance(key, CdpKey):
            raise TypeError("the derivatives gateway authenticates with a CDP key")
        self.session.key = key

    async def _subscribe(self, market: MarketFeed) -> None:
        currency = self.currency
        await self.session.subscribe([f"user.changes.future.{currency}.raw"], self._on_changes)
        await self.session.subscribe([f"user.portfolio.{currency.lower()}"], self._on_portfolio)
        await self._snapshot_open_orders()  # what changed between the Engine's reconcile and this subscribe
        streams = self.streams
        if streams is not None:
            await streams.open()
            for product_id in self.products_subscribed:
                if "book" in self.market_channels:
                    streams.books[product_id] = market.book(
                        product_id
                    )  # one book, kept by the streams socket
                    await streams.subscribe_book(product_id, market.publish_book, self.book_interval)
                if "ticker" in self.market_channels:  # also the mark price the margin rules read
                    await streams.subscribe(
                        [f"ticker.{product_id}.{self.ticker_interval}"], self._ticker_handler(market)
                    )
        self._ready.set()

    def _ticker_handler(self, market: MarketFeed) -> Callable[[str, msgspec.Raw], None]:
        decode = msgspec.json.Decoder(TickerInfo).decode
        marks = self._marks

        def deliver(_channel: str, raw: msgspec.Raw) -> None:
            received_ns = time.perf_counter_ns()
            ticker = decode(raw)
            if ticker.mark_price is not None:
                marks[ticker.instrument_name] = ticker.mark_price
            market.publish_ticker(ticker_value(ticker, received_ns))

        return deliver

    async def _resync_after_reconnects(self) -> None:
        while True:
            await self._resync.wait()
            self._resync.clear()
            await self.session.ready.wait()
            try:
                await self._snapshot_open_orders()
                self.resyncs += 1
            except (EngineError, OSError) as exc:
                log.warning("gateway: open orders after a reconnect could not be fetched (%s); retrying", exc)
                self._resync.set()
                await asyncio.sleep(0.5)

    async def _snapshot_open_orders(self) -> None:
        orders = await self.session.get_open_orders(kind=InstrumentKind.FUTURE)
        for order in orders:
            self._on_order(order)
        self._emit(OpenOrdersSnapshot(frozenset(order.label for order in orders if order.label)))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway venue task failed: %r", task.exception())

    # -- order events -----------------------------------------------------------------------------------

    def _emit(self, event: OrderEvent) -> None:
        callback = self._on_order_event
        if callback is not None:
            callback(event)

    def _on_changes(self, _channel: str, raw: msgspec.Raw) -> None:
        changes = _changes_decoder.decode(raw)
        for position in changes.positions:
            self._note_position(position)
        for trade in changes.trades:  # before the orders: an order's fill is reported with its fee
            self._on_trade(trade)
        for order in changes.orders:
            self._on_order(order)

    def _on_portfolio(self, _channel: str, raw: msgspec.Raw) -> None:
        self._account = _margin_account(_summary_decoder.decode(raw))

    def _note_position(self, position: GatewayPosition) -> None:
        risk = _position_risk(position)
        self._positions[position.instrument_name] = risk
        if position.leverage:
            self._leverage[position.instrument_name] = position.leverage
        if position.mark_price is not None and position.instrument_name not in self._marks:
            self._marks[position.instrument_name] = position.mark_price

    def _on_trade(self, trade: UserTrade) -> None:
        traded = self._traded.get(trade.order_id)
        if traded is None:
            traded = self._traded[trade.order_id] = _Traded()
        if trade.trade_id in traded.trade_ids:
            return
        traded.trade_ids.add(trade.trade_id)
        traded.amount += trade.amount
        traded.value += trade.amount * trade.price
        traded.fees += trade.fee
        order = traded.order
        if order is not None and traded.waiting is not None and traded.amount >= order.filled_amount:
            traded.waiting.cancel()
            traded.waiting = None
            self._report(order, traded)

    def _on_order(self, order: Order) -> None:
        traded = self._traded.get(order.order_id)
        if traded is None:
            traded = self._traded[order.order_id] = _Traded()
        traded.order = order
        if order.filled_amount > traded.amount:  # its trades are still to come
            if traded.waiting is None:
                loop = asyncio.get_running_loop()
                traded.waiting = loop.call_later(_TRADES_GRACE_S, self._trades_overdue, order.order_id)
            return
        self._report(order, traded)

    def _trades_overdue(self, order_id: str) -> None:
        traded = self._traded.get(order_id)
        if traded is not None and traded.order is not None:
            traded.waiting = None
            self._report(traded.order, traded)

    def _report(self, order: Order, traded: _Traded) -> None:
        if traded.amount >= order.filled_amount and traded.amount:
            filled_size, filled_value = traded.amount, traded.value
        else:
            filled_size, filled_value = order.filled_amount, _filled_value(order)
        state = local_state(order)
        if state.is_terminal:
            del self._traded[order.order_id]
        if not order.label:
            return  # not placed through an engine: the Engine's reconcile reports such orders
        self._emit(
            OrderUpdate(
                order.label,
                order.order_id,
                state,
                filled_size=filled_size,
                filled_value=filled_value,
                total_fees=traded.fees,
                raw={"order_state": order.order_state.value, "instrument_name": order.instrument_name},
                side=order.direction.value.upper(),
            )
        )

    def _on_result(self, result: OrderResult) -> None:
        for trade in result.trades:
            self._on_trade(trade)
        self._on_order(result.order)

    # -- orders -----------------------------------------------------------------------------------------

    def order_request(
        self,
        product_id: str,
        side: str,
        configuration: PerpConfiguration,
        *,
        client_order_id: str,
        leverage: Any = None,
        margin_type: Any = None,
    ) -> PerpOrderRequest:
        if leverage is not None or margin_type is not None:
            raise TypeError(
                "the gateway sets leverage per instrument (private/set_leverage), not per order; "
                "margin is cross on this account"
            )
        return PerpOrderRequest(client_order_id, product_id, order_side(side), configuration)

    async def submit(self, request: OrderIntent) -> Acknowledged:
        if not isinstance(request, PerpOrderRequest):
            raise TypeError("a perpetual order is a PerpOrderRequest (DerivativesVenue.order_request)")
        client_order_id = request.client_order_id
        try:
            result: OrderResult = await self.session._call(
                request.method, request.params, OrderResult, label=client_order_id
            )
        except OrderRejected as rejected:
            rejected.client_order_id = client_order_id
            raise
        except GatewayError as refused:  # an answer: the order does not exist
            raise _rejected(refused, client_order_id) from refused
        self._on_result(result)
        return Acknowledged(result.order.order_id, client_order_id, request.side)

    async def cancel(self, order_ids: Sequence[str]) -> list[CancelOutcome]:
        return list(await asyncio.gather(*(self._cancel_one(order_id) for order_id in order_ids)))

    async def _cancel_one(self, order_id: str) -> CancelOutcome:
        try:
            order = await self.session.cancel(order_id)
        except (GatewayError, EngineError) as exc:
            return CancelOutcome(order_id, False, type(exc).__name__)
        self._on_order(order)
        cancelled = order.order_state is GatewayState.CANCELLED
        return CancelOutcome(order_id, cancelled, "" if cancelled else order.order_state.value)

    async def cancel_all_orders(self, product_id: str | None = None) -> int:
        """`private/cancel_all` (or `_by_instrument`): one call, how many it cancelled."""
        if product_id is None:
            return await self.session.cancel_all()
        return await self.session.cancel_all_by_instrument(product_id)

    async def edit(self, order_id: str, *, size: Any = None, price: Any = None) -> bool:
        """`private/edit`; the gateway wants the amount, so an unchanged one is read first."""
        try:
            if size is None:
                size = (await self.session.get_order_state(order_id)).amount
            result = await self.session.edit(order_id, amount=size, price=price)
        except GatewayError as exc:
            log.info("gateway refused to edit %s: %s", order_id, exc)
            return False
        self._on_result(result)
        return True

    async def close_position(self, product_id: str, size: Any, *, client_order_id: str) -> Acknowledged:
        """A reduce-only market order against the position, labelled with our id (unlike
        `private/close_position`, which takes no label), so a lost answer is looked up like any order."""
        position = await self.session.get_position(product_id)
        held = position.size if position.direction.value != "sell" else -abs(position.size)
        if held == _ZERO:
            raise OrderRejected(
                f"no {product_id} position to close",
                failure_reason="NO_POSITION",
                client_order_id=client_order_id,
            )
        amount = abs(held) if size is None else Decimal(size)
        side = "SELL" if held > _ZERO else "BUY"
        request = PerpOrderRequest(
            client_order_id, product_id, side, PerpMarket(min(amount, abs(held)), reduce_only=True)
        )
        return await self.submit(request)

    # -- what the venue knows ---------------------------------------------------------------------------

    async def order(self, order_id: str) -> VenueOrder:
        try:
            order = await self.session.get_order_state(order_id)
        except GatewayError as exc:
            if exc.rpc_code == _ORDER_NOT_FOUND:
                raise NotFound(f"the gateway has no order {order_id}") from None
            raise
        return venue_order(order, await self._fees(order))

    async def find_order(self, client_order_id: str) -> VenueOrder | None:
        """The order labelled with our id. Labels are ours and unique by construction; should the gateway
        hold two (an order placed by hand with the same label), the one that traded most is reported."""
        found = [
            o
            for o in await self.session.get_order_state_by_label(client_order_id, self.currency)
            if o.label == client_order_id
        ]
        if not found:
            return None
        if len(found) > 1:
            log.error("gateway holds %d orders labelled %s", len(found), client_order_id)
        order = max(found, key=lambda o: (o.filled_amount, o.creation_timestamp))
        return venue_order(order, await self._fees(order))

    async def _fees(self, order: Order) -> Decimal | None:
        if not order.filled_amount:
            return _ZERO
        trades = await self.session.get_user_trades_by_order(order.order_id)
        return sum((t.fee for t in trades), _ZERO)

    async def open_orders(self, product_id: str | None = None) -> list[VenueOrder]:
        if product_id is None:
            orders = await self.session.get_open_orders(kind=InstrumentKind.FUTURE)
        else:
            orders = await self.session.get_open_orders_by_instrument(product_id)
        return [venue_order(o) for o in orders]

    async def fills(self, order_ids: Sequence[str]) -> list[VenueFill]:
        fills: list[VenueFill] = []
        for order_id in order_ids:
            fills.extend(_venue_fill(t) for t in await self.session.get_user_trades_by_order(order_id))
        return fills

    async def positions(self) -> list[Position]:
        found: list[Position] = []
        for position in await self.session.get_positions(self.currency, kind=InstrumentKind.FUTURE):
            self._note_position(position)
            risk = self._positions[position.instrument_name]
            if risk.size != _ZERO:
                found.append(Position(risk.product_id, risk.size, risk.average_price))
        return found

    async def balances(self) -> list[Balance]:
        summary = await self.session.get_account_summary(self.currency)
        self._account = _margin_account(summary)
        return [Balance(summary.currency.upper(), summary.available_funds, summary.initial_margin)]

    async def products(self) -> list[ProductInfo]:
        instruments = await self.session.get_instruments(self.currency, kind=InstrumentKind.FUTURE)
        for name in self.products_subscribed:
            self._leverage.setdefault(name, (await self.session.get_leverage(name)).leverage)
        return [ProductInfo(instrument.instrument_name, None) for instrument in instruments]

    # -- the margined account, as the last notifications left it -----------------------------------------

    def mark_price(self, product_id: str) -> Decimal | None:
        return self._marks.get(product_id)

    def leverage(self, product_id: str) -> Decimal | None:
        return self._leverage.get(product_id)

    def margin_account(self) -> MarginAccount | None:
        return self._account

    def position_risk(self, product_id: str) -> PositionRisk | None:
        return self._positions.get(product_id)

    def __repr__(self) -> str:
        return f"DerivativesVenue(url={self.session.url!r})"


_changes_decoder = msgspec.json.Decoder(UserChanges)
_summary_decoder = msgspec.json.Decoder(AccountSummary)


def _rejected(error: GatewayError, client_order_id: str) -> OrderRejected:
    return OrderRejected(
        str(error), failure_reason=f"gateway_{error.rpc_code}", client_order_id=client_order_id
    )


def derivatives_venue(
    key: CdpKey,
    base_url: str | None = None,
    *,
    products: Sequence[str] = (),
    **settings: Any,
) -> DerivativesVenue:
    """The gateway venue for `Engine(venue=...)`: Coinbase's hosts, or the simulator's under `base_url`
    (`http://127.0.0.1:PORT`: its trading socket at /ws/api/v2, its streams at /streams/ws/api/v2)."""
    if base_url is not None:
        origin = base_url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
        settings.setdefault("url", f"{origin}/ws/api/v2")
        settings.setdefault("streams_url", f"{origin}/streams/ws/api/v2")
    return DerivativesVenue(key, products=products, **settings)
