"""Coinbase Exchange behind the `Venue` protocol: the REST client (`client.exchange`) and two feed sockets.

Our `client_order_id` is the order's `client_oid` (a UUID, `Capabilities.uuid_client_order_ids`). A create
whose response was lost is looked up by `GET /orders/client:{client_oid}` before anything is sent again (the
REST client's keyed send). Cancel is one `DELETE /orders/{id}` per order, run a few at a time; there is no
edit and no position (spot balances are balances).

Order events come from the feed's `user` channel: its `received`/`open`/`match`/`done` messages are folded
per order into cumulative `OrderUpdate`s (a `match` adds its size and value; a `done` ends it, then the order
is read back from REST for its fees, and for any match lost on the way). After every (re)subscribe, and every
`open_orders_refresh_s`, the open orders are listed over REST: each becomes an update and the set an
`OpenOrdersSnapshot`, so an order that finished while the feed was down, or whose `done` was lost, is
looked up. Market channels go to the Engine's `MarketFeed`.
https://docs.cdp.coinbase.com/exchange/websocket-feed/channels
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine._signer import ExchangeKey
from engine.errors import ConfigError, EngineError, ExchangeError, NotFound
from engine.marketdata.feed import MarketFeed
from engine.net.retry import Backoff, RetryPolicy
from engine.net.transport import ApiKey
from engine.ratelimit import Priority
from engine.venues.base import (
    Acknowledged,
    Balance,
    CancelOutcome,
    Capabilities,
    OpenOrdersSnapshot,
    OrderEvent,
    OrderIntent,
    OrderState,
    OrderUpdate,
    Position,
    ProductInfo,
    VenueFill,
    VenueOrder,
)
from engine.venues.exchange.feed import FEED_URLS, ExchangeFeed
from engine.venues.exchange.feed import OrderEvent as FeedMessage
from engine.venues.exchange.orders import ExchangeOrderRequest, exchange_order
from engine.venues.exchange.rest import REST_URLS
from engine.venues.exchange.types import ExchangeFill, ExchangeOrder, OrderStatus

if TYPE_CHECKING:
    from engine.venues.advanced.client import Client

__all__ = ["ExchangeVenue", "exchange_venue", "feed_url", "venue_order"]

log = logging.getLogger(__name__)

_ZERO = Decimal(0)
_CLIENT_OIDS_KEPT = 100_000  # a bot trading for weeks must not keep every order id it ever saw
_CANCEL_CONCURRENCY = 8  # cancels in flight at once: risk comes off fast without a burst past the limit


def feed_url(base_url: str | None) -> str:
    """The feed for a REST base URL: Coinbase's production or sandbox feed, else the base URL itself (the
    simulator serves both on one port)."""
    if base_url is None:
        return FEED_URLS["production"]
    base = base_url.rstrip("/")
    for environment, rest_url in REST_URLS.items():
        if base == rest_url:
            return FEED_URLS[environment]
    return "ws" + base[4:] if base.startswith("http") else base


def order_state(order: ExchangeOrder) -> OrderState:
    """The local state of an Exchange order: received/pending/open/active hold it; done is filled or
    cancelled (an expired GTT order is done, canceled)."""
    status = order.status
    if status is OrderStatus.DONE:
        return OrderState.FILLED if order.done_reason == "filled" else OrderState.CANCELLED
    if status is OrderStatus.REJECTED:
        return OrderState.REJECTED
    if order.is_open:
        return OrderState.OPEN
    return OrderState.UNKNOWN


def venue_order(order: ExchangeOrder) -> VenueOrder:
    return VenueOrder(
        order.id,
        order.client_oid,
        order.product_id,
        order.side.value.upper(),
        order_state(order),
        order.filled_size,
        order.executed_value,
        order.fill_fees,
        order.raw,
    )


def _venue_fill(fill: ExchangeFill, client_order_id: str | None) -> VenueFill:
    return VenueFill(
        f"{fill.trade_id}:{fill.order_id}",  # a trade has two sides: with the order id, unique per fill
        str(fill.trade_id),
        fill.order_id,
        client_order_id,
        fill.product_id,
        fill.side.value.upper(),
        fill.price or _ZERO,
        fill.size or _ZERO,
        fill.fee or _ZERO,
        fill.created_at.isoformat() if fill.created_at is not None else "",
    )


@dataclass(slots=True)
class _Folded:
    """One order as its feed messages have told it so far."""

    client_oid: str
    filled_size: Decimal = _ZERO
    filled_value: Decimal = _ZERO


class ExchangeVenue:
    """Coinbase Exchange (spot) as a `Venue`. Build it with `exchange_venue`.

    `client` is used as given (its session is the caller's) or built from `key` and `base_url`.
    """

    name = "exchange"
    capabilities = Capabilities(
        idempotent_client_order_id=True,
        order_events=True,
        cancel_batch=100,
        uuid_client_order_ids=True,
    )

    def __init__(
        self,
        key: ExchangeKey,
        *,
        base_url: str | None = None,
        client: Client | None = None,
        products: Sequence[str] = (),
        market_channels: Sequence[str] = ("level2", "ticker", "matches"),
        user_channel: bool = True,
        url: str | None = None,
        ws_backoff: Backoff | None = None,
        ws_idle_timeout: float = 10.0,
        open_orders_refresh_s: float = 15.0,
    ) -> None:
        if not isinstance(key, ExchangeKey):
            raise ConfigError("Coinbase Exchange needs an Exchange key (engine.auth.ExchangeKey)")
        self._key = key
        self._own_client = client is None
        if client is None:
            from engine.venues.advanced.client import Client  # it imports this package: on use

            client = Client(key, base_url)
        self.client = client
        if self.client.key_kind != "exchange":
            raise ConfigError("the client for Coinbase Exchange must hold an Exchange key")
        self.api = self.client.exchange
        self.base_url = self.client.transport.base_url if base_url is None else base_url
        self.url = url or feed_url(self.base_url)
        self.products_subscribed = tuple(products)
        self.market_channels = tuple(market_channels)
        self.user_channel = user_channel
        backoff = ws_backoff or Backoff()
        self.ws_retry = RetryPolicy(base_delay_s=backoff.initial, max_delay_s=backoff.maximum)
        self.ws_idle_timeout = ws_idle_timeout
        self.open_orders_refresh_s = open_orders_refresh_s
        self._spot: tuple[str, ...] = ()  # every spot product, learnt by `products()`
        self._feeds: list[ExchangeFeed] = []
        self._user_feed: ExchangeFeed | None = None
        self._folded: dict[str, _Folded] = {}  # order id -> what its messages said
        self._unlisted: set[str] = set()  # folded orders the last listing did not show
        # order id -> client_oid, for fills (Exchange's fills do not name it); the latest orders only
        self._client_oids: OrderedDict[str, str] = OrderedDict()
        self._on_order_event: Callable[[OrderEvent], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._own_client:
            await self.client.open()

    async def close(self) -> None:
        if self._own_client:
            await self.client.close()

    def start(self, market: MarketFeed, on_order_event: Callable[[OrderEvent], None]) -> None:
        self._on_order_event = on_order_event
        if self.products_subscribed and self.market_channels:
            self._feeds.append(
                ExchangeFeed(
                    self.products_subscribed,
                    self.market_channels,
                    key=self._key,
                    rest=self.api,
                    url=self.url,
                    retry=self.ws_retry,
                    idle_timeout_s=self.ws_idle_timeout,
                    market=market,
                )
            )
        # Exchange's user channel takes product ids: the configured ones, else every spot product.
        user_products = self.products_subscribed or self._spot
        if self.user_channel and user_products:
            feed = ExchangeFeed(
                user_products,
                ("user",),
                key=self._key,
                url=self.url,
                retry=self.ws_retry,
                idle_timeout_s=self.ws_idle_timeout,
                market=MarketFeed(),  # its heartbeats only: the market feed above carries the market
            )
            feed.on_order_event(self._on_feed_message)
            feed.on_subscribed(self._on_subscribed)
            self._user_feed = feed
            self._feeds.append(feed)
            self._spawn(self._refresh_open_orders())
        elif self.user_channel:
            log.warning("no products known: the Exchange user channel is not subscribed (order news by REST)")
        for feed in self._feeds:
            feed.start()

    async def stop(self) -> None:
        for feed in self._feeds:
            await feed.close()
        self._feeds.clear()
        self._user_feed = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._on_order_event = None

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109 (one deadline over several waits)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for feed in self._feeds:
            await asyncio.wait_for(feed.connected.wait(), max(0.0, deadline - loop.time()))

    @property
    def connections(self) -> tuple[ExchangeFeed, ...]:
        """The market and user feed connections (their `stats` count gaps and reconnects)."""
        return tuple(self._feeds)

    def replace_key(self, key: ApiKey) -> None:
        """REST requests and feed subscriptions from now on are signed with `key`."""
        if not isinstance(key, ExchangeKey):
            raise ConfigError("Coinbase Exchange needs an Exchange key (engine.auth.ExchangeKey)")
        self.client.replace_key(key)
        for feed in self._feeds:
            feed.replace_key(key)
        self._key = key

    # -- order events -----------------------------------------------------------------------------------

    def _emit(self, event: OrderEvent) -> None:
        if self._on_order_event is not None:
            self._on_order_event(event)

    def _track(self, order_id: str, client_oid: str, order: ExchangeOrder | None = None) -> None:
        """Follow an order the feed may not have seen received; `order`, as REST reads it, seeds its fold
        (unless the feed has told more already)."""
        self._remember(order_id, client_oid)
        if order is not None and order.is_open:
            folded = self._folded.get(order_id)
            filled = order.filled_size or _ZERO
            if folded is None or folded.filled_size < filled:
                self._folded[order_id] = _Folded(client_oid, filled, order.executed_value or _ZERO)
        if self._user_feed is not None:
            self._user_feed.track(order_id, client_oid)

    def _remember(self, order_id: str, client_oid: str) -> None:
        client_oids = self._client_oids
        client_oids[order_id] = client_oid
        client_oids.move_to_end(order_id)
        while len(client_oids) > _CLIENT_OIDS_KEPT:
            client_oids.popitem(last=False)

    def _on_feed_message(self, message: FeedMessage) -> None:
        """Fold one user-channel message into the order's cumulative update."""
        order_id = message.order_id
        folded = self._folded.get(order_id)
        if folded is None:
            folded = self._folded[order_id] = _Folded(message.client_oid)
            self._remember(order_id, message.client_oid)
        kind = message.type
        state = OrderState.OPEN
        if kind == "match" and message.size is not None and message.price is not None:
            folded.filled_size += message.size
            folded.filled_value += message.size * message.price
        elif kind == "done":
            state = OrderState.FILLED if message.reason == "filled" else OrderState.CANCELLED
            del self._folded[order_id]
        elif kind not in ("received", "open", "match"):
            return  # change, activate: nothing the Engine tracks
        self._emit(
            OrderUpdate(
                folded.client_oid,
                order_id,
                state,
                filled_size=folded.filled_size,
                filled_value=folded.filled_value,
            )
        )
        if kind == "done":  # even with nothing folded: its matches may be what was lost
            self._spawn(self._read_back(order_id))

    async def _read_back(self, order_id: str) -> None:
        """The finished order from REST: its fees, and the fills of any match the feed lost."""
        try:
            order = await self.api.get_order(order_id, priority=Priority.LOW)  # orders go first
        except NotFound:
            return  # Exchange forgets an order cancelled with nothing filled: the feed said all there was
        except (EngineError, OSError, TimeoutError) as exc:
            log.warning("reading back finished order %s failed: %s", order_id, exc)
            return
        self._emit(self._update(order))

    def _on_subscribed(self) -> None:
        self._spawn(self._open_orders_snapshot())

    async def _refresh_open_orders(self) -> None:
        """The user channel cannot show a lost message (its sequence numbers are the full channel's, with
        everyone else's orders between ours), so the open orders are listed again every so often: an order
        whose `done` went missing is then looked up like one that finished while disconnected."""
        while True:
            await asyncio.sleep(self.open_orders_refresh_s)
            await self._open_orders_snapshot()

    async def _open_orders_snapshot(self) -> None:
        """After a (re)subscribe: what is open now, each order's news, then the set (an order the Engine
        holds open that is not among them finished meanwhile)."""
        try:
            listed = [order async for order in self.api.iter_orders(page_size=1000)]
        except (EngineError, OSError, TimeoutError) as exc:
            log.warning("listing open orders after subscribing failed: %s", exc)
            return
        for order in listed:
            self._track(order.id, order.client_oid, order)
            self._emit(self._update(order))
        # a fold whose `done` was lost would stay forever: dropped once two listings in a row miss it (one
        # may have been read just before the order was received)
        unlisted = set(self._folded).difference(o.id for o in listed)
        for order_id in unlisted & self._unlisted:
            self._folded.pop(order_id, None)
        self._unlisted = unlisted
        self._emit(OpenOrdersSnapshot(frozenset(o.client_oid for o in listed if o.client_oid)))

    @staticmethod
    def _update(order: ExchangeOrder) -> OrderUpdate:
        return OrderUpdate(
            order.client_oid,
            order.id,
            order_state(order),
            filled_size=order.filled_size,
            filled_value=order.executed_value,
            total_fees=order.fill_fees,
            raw=order.raw,
        )

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- orders -----------------------------------------------------------------------------------------

    def order_request(
        self,
        product_id: str,
        side: str,
        configuration: Any,
        *,
        client_order_id: str,
        leverage: Any = None,
        margin_type: Any = None,
    ) -> ExchangeOrderRequest:
        """An Exchange order (`LimitOrder`, `MarketOrder`, `StopOrder`, or an Advanced Trade configuration
        Exchange also has) under `client_order_id`, a UUID. Exchange is spot: no leverage, no margin."""
        if leverage is not None or margin_type is not None:
            raise ValueError("Coinbase Exchange is spot: an order takes no leverage or margin_type")
        return exchange_order(product_id, side, configuration, client_order_id=client_order_id)

    async def submit(self, request: OrderIntent) -> Acknowledged:
        if not isinstance(request, ExchangeOrderRequest):
            raise TypeError("an Exchange order is an ExchangeOrderRequest (ExchangeVenue.order_request)")
        order = await self.api.submit_order(request.body, request.client_order_id)
        self._track(order.id, request.client_order_id)
        return Acknowledged(order.id, request.client_order_id, request.side)

    async def _cancel_one(self, order_id: str, gate: asyncio.Semaphore) -> CancelOutcome:
        async with gate:
            try:
                await self.api.cancel_order(order_id)
            except NotFound:
                return CancelOutcome(order_id, False, "NOT_FOUND")
            except ExchangeError as exc:  # "Order already done", mostly
                return CancelOutcome(order_id, False, exc.code or str(exc))
        return CancelOutcome(order_id, True)

    async def cancel(self, order_ids: Sequence[str]) -> list[CancelOutcome]:
        """Cancel each order (Exchange cancels one per request); a failure is that order's outcome."""
        gate = asyncio.Semaphore(_CANCEL_CONCURRENCY)
        return list(await asyncio.gather(*(self._cancel_one(i, gate) for i in order_ids)))

    async def edit(self, order_id: str, *, size: Any = None, price: Any = None) -> bool:
        raise ConfigError("Coinbase Exchange cannot edit an order: cancel it and place a new one")

    async def close_position(self, product_id: str, size: Any, *, client_order_id: str) -> Acknowledged:
        raise ConfigError("Coinbase Exchange is spot: there is no position to close, sell the balance")

    # -- what the venue knows ---------------------------------------------------------------------------

    async def order(self, order_id: str) -> VenueOrder:
        """The order Exchange gave this id. Exchange forgets an order cancelled before anything filled (its
        Get Order answers 404 for it), so a 404 for an id it gave out is that order, cancelled and unfilled:
        the Engine would otherwise hold it open forever. https://docs.cdp.coinbase.com/exchange/reference"""
        try:
            return venue_order(await self.api.get_order(order_id))
        except NotFound:
            client_oid = self._client_oids.get(order_id, "")
            return VenueOrder(order_id, client_oid, "", "", OrderState.CANCELLED, _ZERO, _ZERO, _ZERO)

    async def find_order(self, client_order_id: str) -> VenueOrder | None:
        found = await self.api.find_order(client_order_id)
        if found is None:
            return None
        self._remember(found.id, found.client_oid)
        return venue_order(found)

    async def open_orders(self, product_id: str | None = None) -> list[VenueOrder]:
        return [venue_order(o) async for o in self.api.iter_orders(product_id=product_id, page_size=1000)]

    async def fills(self, order_ids: Sequence[str]) -> list[VenueFill]:
        """Every fill of these orders (Exchange's `/fills` takes one order per request, page after page)."""
        found: list[VenueFill] = []
        for order_id in order_ids:
            client_oid = self._client_oids.get(order_id)
            async for fill in self.api.iter_fills(order_id=order_id, page_size=1000):
                found.append(_venue_fill(fill, client_oid))
        return found

    async def positions(self) -> list[Position]:
        """None: Exchange is spot, its holdings are balances."""
        return []

    async def balances(self) -> list[Balance]:
        return [Balance(a.currency, a.available, a.hold) for a in await self.api.accounts()]

    async def products(self) -> list[ProductInfo]:
        found: list[ProductInfo] = []
        for product in await self.api.products():
            found.append(ProductInfo(product.id, (product.base_currency, product.quote_currency)))
        self._spot = tuple(p.product_id for p in found)
        return found

    def __repr__(self) -> str:
        return f"ExchangeVenue(base_url={self.base_url!r})"


def exchange_venue(
    key: ExchangeKey,
    *,
    base_url: str | None = None,
    client: Client | None = None,
    products: Sequence[str] = (),
    market_channels: Sequence[str] = ("level2", "ticker", "matches"),
    user_channel: bool = True,
    url: str | None = None,
    ws_backoff: Backoff | None = None,
    ws_idle_timeout: float = 10.0,
    open_orders_refresh_s: float = 15.0,
) -> ExchangeVenue:
    """Coinbase Exchange as the venue an Engine trades on:

    engine = Engine(config=config, venue=exchange_venue(key, base_url=..., products=("BTC-USD",)))

    `base_url` is Coinbase's production REST URL by default (`REST_URLS["sandbox"]` for the sandbox, or the
    simulator's); `products` get the market channels (and the user channel, which is otherwise subscribed
    for every spot product); `url` overrides the feed's URL; the open orders are listed again every
    `open_orders_refresh_s` (a lost user-channel message cannot be told otherwise)."""
    return ExchangeVenue(
        key,
        base_url=base_url,
        client=client,
        products=products,
        market_channels=market_channels,
        user_channel=user_channel,
        url=url,
        ws_backoff=ws_backoff,
        ws_idle_timeout=ws_idle_timeout,
        open_orders_refresh_s=open_orders_refresh_s,
    )
