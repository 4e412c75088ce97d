"""Advanced Trade behind the `Venue` protocol: the REST client, CFM futures and the two WebSocket connections.

The adapter is where Advanced Trade's JSON becomes venue-neutral values: orders and fills from REST, and the
`user` channel's order messages as `OrderUpdate`s (plus an `OpenOrdersSnapshot` after each subscribe, which
lists the open orders only). Market channels go to the Engine's `MarketFeed`.
https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from yarl import URL

from engine._signer import CdpKey
from engine.marketdata.feed import MarketFeed
from engine.marketdata.ws import CoinbaseSocket, Subscription
from engine.net.retry import Backoff
from engine.net.transport import ApiKey
from engine.venues.advanced.client import ADVANCED_TRADE_URL, Client
from engine.venues.advanced.orders import Amount, MarginType, OrderConfiguration, OrderRequest, Side
from engine.venues.advanced.types import Fill, Order
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

COINBASE_MARKET_WS = "wss://advanced-trade-ws.coinbase.com"
COINBASE_USER_WS = "wss://advanced-trade-ws-user.coinbase.com"
_ZERO = Decimal(0)

# Advanced Trade `status` values (REST and the WS user channel) -> local state.
_EXCHANGE_STATUS = {
    "PENDING": OrderState.OPEN,
    "QUEUED": OrderState.OPEN,
    "OPEN": OrderState.OPEN,
    "EDIT_QUEUED": OrderState.OPEN,
    "CANCEL_QUEUED": OrderState.OPEN,
    "FILLED": OrderState.FILLED,
    "CANCELLED": OrderState.CANCELLED,
    "EXPIRED": OrderState.EXPIRED,
    "FAILED": OrderState.FAILED,
    "UNKNOWN_ORDER_STATUS": OrderState.UNKNOWN,
}


def from_exchange_status(status: str) -> OrderState:
    """The local state for an Advanced Trade order status; an unknown status is UNKNOWN, to be reconciled."""
    return _EXCHANGE_STATUS.get(status.upper(), OrderState.UNKNOWN)


def ws_urls(
    base_url: str | None, ws_url: str | None = None, user_ws_url: str | None = None
) -> tuple[str, str]:
    """The market and user WebSocket URLs: given ones win; Coinbase's for its REST base, else the base's /ws
    (the simulator)."""
    if ws_url and user_ws_url:
        return ws_url, user_ws_url
    if base_url is None or base_url.rstrip("/") == ADVANCED_TRADE_URL:
        market, user = COINBASE_MARKET_WS, COINBASE_USER_WS
    else:
        url = URL(base_url)
        origin = url.with_scheme("wss" if url.scheme == "https" else "ws").origin()
        market, user = str(origin.with_path("/ws")), str(origin.with_path("/ws/user"))
    return ws_url or market, user_ws_url or user


def _dec(value: Any) -> Decimal | None:
    return Decimal(value) if value not in (None, "") else None


def venue_order(order: Order) -> VenueOrder:
    return VenueOrder(
        order.order_id,
        order.client_order_id,
        order.product_id,
        order.side,
        from_exchange_status(order.status),
        order.filled_size,
        order.filled_value,
        order.total_fees,
        order.raw,
    )


def _venue_fill(fill: Fill) -> VenueFill:
    return VenueFill(
        fill.entry_id or f"{fill.trade_id}:{fill.order_id}",
        fill.trade_id,
        fill.order_id,
        str(fill.raw.get("client_order_id") or "") or None,
        fill.product_id,
        fill.side,
        fill.price or _ZERO,
        fill.size or _ZERO,
        fill.commission or _ZERO,
        fill.trade_time,
    )


def user_channel_events(envelope: Mapping[str, Any]) -> list[OrderEvent]:
    """The order events in one `user` channel message, in the order they must be applied."""
    if envelope.get("channel") != "user":
        return []
    found: list[OrderEvent] = []
    for event in envelope.get("events") or ():
        seen: set[str] = set()
        for raw in event.get("orders") or ():
            client_order_id = raw.get("client_order_id", "")
            seen.add(client_order_id)
            found.append(
                OrderUpdate(
                    client_order_id,
                    raw.get("order_id") or None,
                    from_exchange_status(raw.get("status", "")),
                    filled_size=_dec(raw.get("cumulative_quantity")),
                    filled_value=_dec(raw.get("filled_value")),
                    total_fees=_dec(raw.get("total_fees")),
                    raw=raw,
                )
            )
        if event.get("type") == "snapshot":
            found.append(OpenOrdersSnapshot(frozenset(seen)))
    return found


class AdvancedTradeVenue:
    """Coinbase Advanced Trade (spot and CFM futures) as a `Venue`.

    `client` is used as given (its session is the caller's) or built from `key` and `base_url`.
    """

    name = "advanced"
    capabilities = Capabilities(
        idempotent_client_order_id=True, order_events=True, edit=True, close_position=True, cancel_batch=100
    )

    def __init__(
        self,
        key: ApiKey,
        *,
        base_url: str | None = None,
        client: Client | None = None,
        products: Sequence[str] = (),
        market_channels: Sequence[str] = ("level2", "ticker", "market_trades"),
        user_channel: bool = True,
        ws_url: str | None = None,
        user_ws_url: str | None = None,
        ws_backoff: Backoff | None = None,
        ws_idle_timeout: float = 10.0,
    ) -> None:
        self._key = key
        self._own_client = client is None
        self.client = client if client is not None else Client(key, base_url)
        self.base_url = self.client.transport.base_url if base_url is None else base_url
        self.products_subscribed = tuple(products)
        self.market_channels = tuple(market_channels)
        self.user_channel = user_channel
        self.ws_url, self.user_ws_url = ws_url, user_ws_url
        self.ws_backoff = ws_backoff or Backoff()
        self.ws_idle_timeout = ws_idle_timeout
        self._sockets: list[CoinbaseSocket] = []

    # -- lifecycle --------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._own_client:
            await self.client.open()

    async def close(self) -> None:
        if self._own_client:
            await self.client.close()

    def start(self, market: MarketFeed, on_order_event: Callable[[OrderEvent], None]) -> None:
        market_url, user_url = ws_urls(self.base_url, self.ws_url, self.user_ws_url)
        token = self._ws_token if isinstance(self._key, CdpKey) else None  # HMAC keys have no user channel
        if self.products_subscribed and self.market_channels:
            subscriptions = [
                Subscription(channel, self.products_subscribed, resync_on_gap=channel == "level2")
                for channel in self.market_channels
            ]
            self._sockets.append(
                CoinbaseSocket(
                    market_url,
                    subscriptions,
                    market.on_envelope,
                    token=token,
                    on_gap=market.on_gap,
                    on_disconnect=market.on_gap,
                    backoff=self.ws_backoff,
                    idle_timeout=self.ws_idle_timeout,
                )
            )
        if self.user_channel and token is not None:

            def on_user_envelope(envelope: dict[str, Any], received_ns: int) -> None:
                for event in user_channel_events(envelope):
                    on_order_event(event)

            self._sockets.append(
                CoinbaseSocket(
                    user_url,
                    [Subscription("user", (), resync_on_gap=True)],
                    on_user_envelope,
                    token=token,  # on a gap: the resubscribe snapshot plus REST refreshes repair the picture
                    backoff=self.ws_backoff,
                    idle_timeout=self.ws_idle_timeout,
                )
            )
        for socket in self._sockets:
            socket.start()

    async def stop(self) -> None:
        for socket in self._sockets:
            await socket.close()
        self._sockets.clear()

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109 (one deadline over several waits)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for socket in self._sockets:
            await asyncio.wait_for(socket.connected.wait(), max(0.0, deadline - loop.time()))

    @property
    def connections(self) -> tuple[CoinbaseSocket, ...]:
        """The market and user WebSocket connections (their `stats` count gaps and reconnects)."""
        return tuple(self._sockets)

    def _ws_token(self) -> str:
        assert isinstance(self._key, CdpKey)
        return self._key.ws_jwt()  # the current key's: a rotation applies from the next subscribe

    def replace_key(self, key: ApiKey) -> None:
        """REST requests and WebSocket subscriptions from now on are signed with `key` (see
        `Client.replace_key`)."""
        self.client.replace_key(key)
        self._key = key

    # -- orders -----------------------------------------------------------------------------------------

    def order_request(
        self,
        product_id: str,
        side: str,
        configuration: OrderConfiguration,
        *,
        client_order_id: str,
        leverage: Amount | None = None,
        margin_type: MarginType | None = None,
    ) -> OrderRequest:
        return OrderRequest(
            product_id=product_id,
            side=side if side.__class__ is Side else Side(side),  # skip Enum.__call__ (Python code) if we can
            configuration=configuration,
            client_order_id=client_order_id,
            leverage=leverage,
            margin_type=margin_type,
        )

    async def submit(self, request: OrderIntent) -> Acknowledged:
        if not isinstance(request, OrderRequest):
            raise TypeError("an Advanced Trade order is an OrderRequest (AdvancedTradeVenue.order_request)")
        result = await self.client.submit_order(request)
        return Acknowledged(result.order_id, result.client_order_id, result.side)

    async def cancel(self, order_ids: Sequence[str]) -> list[CancelOutcome]:
        results = await self.client.cancel_orders(list(order_ids))
        return [CancelOutcome(r.order_id, r.success, r.failure_reason) for r in results]

    async def edit(self, order_id: str, *, size: Amount | None = None, price: Amount | None = None) -> bool:
        return (await self.client.edit_order(order_id, size=size, price=price)).success

    async def close_position(
        self, product_id: str, size: Amount | None, *, client_order_id: str
    ) -> Acknowledged:
        result = await self.client.close_position(product_id, size=size, client_order_id=client_order_id)
        return Acknowledged(result.order_id, client_order_id, result.side)

    # -- what the venue knows ---------------------------------------------------------------------------

    async def order(self, order_id: str) -> VenueOrder:
        return venue_order(await self.client.get_order(order_id))

    async def find_order(self, client_order_id: str) -> VenueOrder | None:
        found = await self.client.find_order(client_order_id)
        return venue_order(found) if found is not None else None

    async def open_orders(self, product_id: str | None = None) -> list[VenueOrder]:
        orders: list[VenueOrder] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_orders(
                order_status="OPEN", product_ids=product_id, cursor=cursor, limit=250
            )
            orders.extend(venue_order(o) for o in page.items)
            if not page.has_next or not page.cursor:
                return orders
            cursor = page.cursor

    async def fills(self, order_ids: Sequence[str]) -> list[VenueFill]:
        fills: list[VenueFill] = []
        cursor: str | None = None
        while True:
            page = await self.client.fills(order_ids=list(order_ids), cursor=cursor, limit=250)
            fills.extend(_venue_fill(f) for f in page.items)
            if not page.cursor or not page.items:
                return fills
            cursor = page.cursor

    async def positions(self) -> list[Position]:
        """CFM futures positions (spot holdings are balances)."""
        positions: list[Position] = []
        for position in await self.client.futures.positions():
            contracts = position.number_of_contracts or _ZERO
            signed = -contracts if position.side == "SHORT" else contracts
            positions.append(Position(position.product_id, signed))
        return positions

    async def balances(self) -> list[Balance]:
        balances: list[Balance] = []
        cursor: str | None = None
        while True:
            page = await self.client.accounts(limit=250, cursor=cursor)
            for account in page.items:
                balances.append(
                    Balance(
                        account.currency,
                        account.available_balance.value if account.available_balance is not None else None,
                        account.hold.value if account.hold is not None else None,
                    )
                )
            if not page.has_next or not page.cursor:
                return balances
            cursor = page.cursor

    async def products(self) -> list[ProductInfo]:
        found: list[ProductInfo] = []
        for product in await self.client.products():
            raw = product.raw
            if product.product_type.upper() == "FUTURE" or raw.get("future_product_details"):
                found.append(ProductInfo(product.product_id, None))
            else:
                base = str(raw.get("base_currency_id") or product.product_id.partition("-")[0])
                quote = str(raw.get("quote_currency_id") or product.product_id.partition("-")[2])
                found.append(ProductInfo(product.product_id, (base, quote)))
        return found

    def __repr__(self) -> str:
        return f"AdvancedTradeVenue(base_url={self.base_url!r})"
