"""`Client`: the typed async REST client for Advanced Trade (CDP keys) and Coinbase Exchange (HMAC keys).

    async with Client(CdpKey.from_json_file("key.json")) as client:
        config = LimitGtc(base_size="0.001", limit_price="50000")
        order = await client.create_order("BTC-USD", Side.BUY, config)

One aiohttp session per client, many requests in flight at once. Which API it speaks follows from the key:
a CDP key talks Advanced Trade (`client.*`, `client.futures.*`, `client.portfolios.*`, `client.converts.*`,
`client.payment_methods.*`), an Exchange key the Exchange API (`client.exchange.*`). The base URL alone
points it at Coinbase or at the simulator.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import orjson

from engine._signer import CdpKey
from engine.errors import ConfigError, EngineError, OrderEntryDisabled, OrderRejected
from engine.net.clock import ClockSync
from engine.net.paths import path_segment
from engine.net.pipeline import Confirmed, Pipeline
from engine.net.retry import Idempotency, RetryPolicy
from engine.net.transport import USER_AGENT, ApiKey, PoolConfig, Timeouts, Transport
from engine.net.wire import Amount, Timestamp, decimal_str, timestamp_str
from engine.ratelimit import EndpointClass, LimiterStats, LocalRateLimiter, Priority, RateLimiter, RateLimits
from engine.venues.advanced.converts import ConvertsApi
from engine.venues.advanced.fees import TransactionSummary
from engine.venues.advanced.futures import FuturesApi
from engine.venues.advanced.market import Candle, Granularity, MarketTrades, ProductBook, unix_time_str
from engine.venues.advanced.orders import (
    ClosePositionRequest,
    MarginType,
    OrderConfiguration,
    OrderRequest,
    Side,
)
from engine.venues.advanced.payments import PaymentMethodsApi
from engine.venues.advanced.portfolios import PortfoliosApi
from engine.venues.advanced.query import listify, query_string
from engine.venues.advanced.types import (
    Account,
    BestBidAsk,
    CancelResult,
    CreateOrderResult,
    EditPreview,
    EditResult,
    Fill,
    KeyPermissions,
    Order,
    Page,
    PreviewResult,
    Product,
    ServerTime,
)
from engine.venues.exchange import ExchangeApi

__all__ = ["ADVANCED_TRADE_URL", "EXCHANGE_URL", "Client", "query_string"]

T = TypeVar("T")

log = logging.getLogger("engine.venues.advanced.client")

ADVANCED_TRADE_URL = "https://api.coinbase.com"
EXCHANGE_URL = "https://api.exchange.coinbase.com"
BROKERAGE = "/api/v3/brokerage"
ORDERS = f"{BROKERAGE}/orders"
BATCH_CANCEL = f"{BROKERAGE}/orders/batch_cancel"
# the failure reasons that mean the product takes no such order now, whatever the order says
_ENTRY_DISABLED = frozenset({"ORDER_ENTRY_DISABLED", "UNTRADABLE_PRODUCT"})
# Minted ahead in the signer so an order's token is ready before the order is.
HOT_ROUTES: tuple[tuple[str, str], ...] = (("POST", ORDERS), ("POST", BATCH_CANCEL))


class Client:
    """Async Coinbase REST client. Use as `async with Client(key, base_url) as client: ...`.

    Args:
        key: an `engine.auth.CdpKey` (Advanced Trade) or `engine.auth.ExchangeKey` (Exchange API).
        base_url: scheme://host[:port]; defaults to Coinbase's URL for the key's API.
        timeout_s: seconds for one attempt of a request (per-call `timeout_s=` overrides);
            connect_timeout_s bounds getting a connection.
        rate_limits: the local limiter's budget (defaults: the key's API's published limits, e.g.
            https://docs.cdp.coinbase.com/advanced-trade/docs/rest-api-rate-limits); or pass a
            `limiter` (e.g. one shared by several clients of the same key).
        retry: backoff policy for retryable failures.
        sync_clock: measure the clock offset at start (it is re-measured after any 401 that looks like skew).
        premint_depth: tokens kept minted ahead for order create/cancel (0 disables).
        trace_configs: aiohttp `TraceConfig`s to observe every request (e.g. when its body was written).
            Requests then go through `session.request`, the only path that reports to them, instead of the
            faster request lane (engine.net.lane); none by default.
    """

    def __init__(
        self,
        key: ApiKey,
        base_url: str | None = None,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        rate_limits: RateLimits | None = None,
        limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        pool_size: int = 64,
        sync_clock: bool = True,
        premint_depth: int = 16,
        premint_max_age_s: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        is_cdp = isinstance(key, CdpKey)
        self.key_kind = "cdp" if is_cdp else "exchange"
        if base_url is None:
            base_url = ADVANCED_TRADE_URL if is_cdp else EXCHANGE_URL
        key_id = key.name if isinstance(key, CdpKey) else key.key
        if limiter is None:
            limiter = LocalRateLimiter(
                rate_limits or (RateLimits.advanced_trade() if is_cdp else RateLimits.exchange())
            )
        self.limiter = limiter
        self.transport = Transport(
            base_url,
            key,
            limiter=limiter,
            key_id=key_id,
            timeouts=Timeouts(total=timeout_s, connect=connect_timeout_s),
            pool=PoolConfig(limit=pool_size),
            ssl_context=ssl_context,
            user_agent=user_agent,
            trace_configs=trace_configs,
        )
        self.clock = ClockSync(self.transport, f"{BROKERAGE}/time" if is_cdp else "/time")
        self._pipeline = Pipeline(
            self.transport, retry or RetryPolicy(), key_kind=self.key_kind, clock=self.clock
        )
        self._sync_clock = sync_clock
        self._premint_depth = premint_depth
        self._premint_max_age_s = premint_max_age_s
        self._key = key
        self.futures = FuturesApi(self._pipeline)
        self.portfolios = PortfoliosApi(self._pipeline)
        self.converts = ConvertsApi(self._pipeline)
        self.payment_methods = PaymentMethodsApi(self._pipeline)
        self.exchange = ExchangeApi(self._pipeline)

    def __repr__(self) -> str:
        return f"Client({self.key_kind} key, base_url={self.transport.base_url!r})"

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the session, pre-mint hot tokens, measure the clock offset."""
        await self.transport.open()
        if isinstance(self._key, CdpKey) and self._premint_depth > 0:
            self._key.premint(
                list(HOT_ROUTES),
                depth=self._premint_depth,
                max_age=self._premint_max_age_s,
                host=self.transport.host,
            )
        if self._sync_clock:
            try:
                await self.clock.measure()
            except (EngineError, aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
                log.warning("could not measure the clock offset at start (%s); signing with local time", exc)

    async def close(self) -> None:
        await self.transport.close()

    def replace_key(self, key: ApiKey) -> None:
        """Rotate the key: every request signed from now on uses `key` (of the same kind as the current one).

        The session, the limiter (the new key's requests are counted under its own name, as Coinbase counts
        them), the clock offset and the retry policy stay. Requests already signed finish as they are; the
        old key is the caller's to close. Hot tokens are minted ahead for the new key when the client is open.
        """
        key_id = key.name if isinstance(key, CdpKey) else key.key
        key.clock_offset = self.clock.signing_offset_s
        self.transport.replace_key(key, key_id)
        self._key = key
        if self.transport.is_open and isinstance(key, CdpKey) and self._premint_depth > 0:
            key.premint(
                list(HOT_ROUTES),
                depth=self._premint_depth,
                max_age=self._premint_max_age_s,
                host=self.transport.host,
            )

    @property
    def clock_offset_s(self) -> float:
        return self.clock.offset_s

    def limiter_stats(self) -> LimiterStats:
        return self.limiter.stats()

    def _advanced_trade(self) -> None:
        if self.key_kind != "cdp":
            raise ConfigError(
                "Advanced Trade endpoints need a CDP key (engine.auth.CdpKey); this client holds an "
                "Exchange key: use client.exchange.* instead"
            )

    async def _get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        public: bool = False,
        timeout_s: float | None = None,
        priority: Priority = Priority.NORMAL,
    ) -> Any:
        self._advanced_trade()
        return await self._pipeline.call(
            "GET",
            path,
            query=query_string(params) if params else "",
            endpoint=EndpointClass.PUBLIC if public else EndpointClass.PRIVATE,
            signed=not public,
            timeout_s=timeout_s,
            priority=priority,
        )

    # --- reference data ---------------------------------------------------------------------------------

    async def time(self) -> ServerTime:
        return ServerTime.parse(await self._get(f"{BROKERAGE}/time", public=True))

    async def key_permissions(self) -> KeyPermissions:
        return KeyPermissions.parse(await self._get(f"{BROKERAGE}/key_permissions"))

    async def accounts(
        self, *, limit: int | None = None, cursor: str | None = None, retail_portfolio_id: str | None = None
    ) -> Page[Account]:
        params = {"limit": limit, "cursor": cursor, "retail_portfolio_id": retail_portfolio_id}
        data = await self._get(f"{BROKERAGE}/accounts", params)
        return Page.parse(data, "accounts", Account.parse)

    def iter_accounts(
        self, *, limit: int | None = None, retail_portfolio_id: str | None = None
    ) -> AsyncIterator[Account]:
        """Every account, page after page (`limit` is the page size)."""
        return self._pages(self.accounts, limit=limit, retail_portfolio_id=retail_portfolio_id)

    @staticmethod
    async def _pages(fetch: Callable[..., Awaitable[Page[T]]], **params: Any) -> AsyncIterator[T]:
        # Coinbase's cursor pagination: follow `cursor` while `has_next`; a repeated cursor ends it rather
        # than looping forever on a server that keeps returning the same page.
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await fetch(cursor=cursor, **params)
            for item in page.items:
                yield item
            if not page.has_next or not page.cursor or page.cursor in seen:
                return
            seen.add(page.cursor)
            cursor = page.cursor

    async def account(self, account_uuid: str) -> Account:
        data = await self._get(f"{BROKERAGE}/accounts/{path_segment(account_uuid, 'account_uuid')}")
        return Account.parse(data.get("account", data))

    async def products(
        self,
        *,
        product_type: str | None = None,
        product_ids: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        contract_expiry_type: str | None = None,
        expiring_contract_status: str | None = None,
        get_tradability_status: bool | None = None,
        get_all_products: bool | None = None,
        cursor: str | None = None,
        futures_underlying_type: str | None = None,
        user_country_code: str | None = None,
        public: bool = False,
    ) -> list[Product]:
        """Products; `public=True` reads `/market/products`, which needs no key."""
        params = {
            "limit": limit,
            "offset": offset,
            "product_type": product_type,
            "product_ids": listify(product_ids),
            "contract_expiry_type": contract_expiry_type,
            "expiring_contract_status": expiring_contract_status,
            "get_tradability_status": None if public else get_tradability_status,
            "get_all_products": get_all_products,
            "cursor": cursor,
            "futures_underlying_type": futures_underlying_type,
            "user_country_code": user_country_code,
        }
        data = await self._get(f"{self._market(public)}/products", params, public=public)
        return [Product.parse(p) for p in data.get("products") or ()]

    async def product(
        self, product_id: str, *, get_tradability_status: bool | None = None, public: bool = False
    ) -> Product:
        path = f"{self._market(public)}/products/{path_segment(product_id, 'product_id')}"
        params = None if public else {"get_tradability_status": get_tradability_status}
        return Product.parse(await self._get(path, params, public=public))

    async def public_products(self, **filters: Any) -> list[Product]:
        """`products(public=True, ...)`: `GET /market/products`."""
        return await self.products(public=True, **filters)

    async def public_product(self, product_id: str) -> Product:
        return await self.product(product_id, public=True)

    @staticmethod
    def _market(public: bool) -> str:
        return f"{BROKERAGE}/market" if public else BROKERAGE

    async def candles(
        self,
        product_id: str,
        start: datetime | int | str,
        end: datetime | int | str,
        granularity: Granularity | str,
        *,
        limit: int | None = None,
        public: bool = False,
    ) -> list[Candle]:
        """OHLCV candles over [start, end] (aware datetimes or UNIX seconds), newest first as Coinbase sends
        them; at most 350 per call."""
        params = {
            "start": unix_time_str(start, "start"),
            "end": unix_time_str(end, "end"),
            "granularity": Granularity(granularity).value,
            "limit": limit,
        }
        path = f"{self._market(public)}/products/{path_segment(product_id, 'product_id')}/candles"
        data = await self._get(path, params, public=public)
        return [Candle.parse(c) for c in data.get("candles") or ()]

    async def public_candles(
        self,
        product_id: str,
        start: datetime | int | str,
        end: datetime | int | str,
        granularity: Granularity | str,
        *,
        limit: int | None = None,
    ) -> list[Candle]:
        return await self.candles(product_id, start, end, granularity, limit=limit, public=True)

    async def market_trades(
        self,
        product_id: str,
        limit: int,
        *,
        start: datetime | int | str | None = None,
        end: datetime | int | str | None = None,
        public: bool = False,
    ) -> MarketTrades:
        """The latest `limit` trades (`GET /products/{id}/ticker`) and the best bid and ask."""
        params = {"limit": limit, "start": unix_time_str(start, "start"), "end": unix_time_str(end, "end")}
        path = f"{self._market(public)}/products/{path_segment(product_id, 'product_id')}/ticker"
        return MarketTrades.parse(await self._get(path, params, public=public))

    async def public_market_trades(
        self,
        product_id: str,
        limit: int,
        *,
        start: datetime | int | str | None = None,
        end: datetime | int | str | None = None,
    ) -> MarketTrades:
        return await self.market_trades(product_id, limit, start=start, end=end, public=True)

    async def product_book(
        self,
        product_id: str,
        *,
        limit: int | None = None,
        aggregation_price_increment: Amount | None = None,
        public: bool = False,
    ) -> ProductBook:
        params = {
            "product_id": product_id,
            "limit": limit,
            "aggregation_price_increment": None
            if aggregation_price_increment is None
            else decimal_str(aggregation_price_increment, "aggregation_price_increment"),
        }
        data = await self._get(f"{self._market(public)}/product_book", params, public=public)
        return ProductBook.parse(data)

    async def public_product_book(
        self, product_id: str, *, limit: int | None = None, aggregation_price_increment: Amount | None = None
    ) -> ProductBook:
        return await self.product_book(
            product_id, limit=limit, aggregation_price_increment=aggregation_price_increment, public=True
        )

    async def transaction_summary(
        self,
        *,
        product_type: str | None = None,
        contract_expiry_type: str | None = None,
        product_venue: str | None = None,
    ) -> TransactionSummary:
        params = {
            "product_type": product_type,
            "contract_expiry_type": contract_expiry_type,
            "product_venue": product_venue,
        }
        return TransactionSummary.parse(await self._get(f"{BROKERAGE}/transaction_summary", params))

    async def best_bid_ask(self, product_ids: str | Sequence[str]) -> list[BestBidAsk]:
        data = await self._get(f"{BROKERAGE}/best_bid_ask", {"product_ids": listify(product_ids)})
        return [BestBidAsk.parse(book) for book in data.get("pricebooks") or ()]

    # --- orders -------------------------------------------------------------------------------------------

    async def create_order(
        self,
        product_id: str,
        side: Side | str,
        configuration: OrderConfiguration,
        *,
        client_order_id: str | None = None,
        leverage: Amount | None = None,
        margin_type: MarginType | None = None,
        preview_id: str | None = None,
        attached_configuration: OrderConfiguration | None = None,
        self_trade_prevention_id: str | None = None,
        retail_portfolio_id: str | None = None,
        prediction_metadata: Mapping[str, Any] | None = None,
        equity_order_metadata: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> CreateOrderResult:
        """Place an order. Retried only under the same client_order_id (generated here when not given); a lost
        response is settled by looking the order up, so the order is never placed twice.

        Raises OrderRejected (with Coinbase's failure reason), OutcomeUnknown (the order may exist: look it
        up by `client_order_id` later), AuthError, RateLimited, ExchangeUnavailable, RequestTimeout.
        """
        extra: dict[str, Any] = {}
        if client_order_id is not None:
            extra["client_order_id"] = client_order_id
        order = OrderRequest(
            product_id=product_id,
            side=Side(side),
            configuration=configuration,
            leverage=leverage,
            margin_type=margin_type,
            preview_id=preview_id,
            attached_configuration=attached_configuration,
            self_trade_prevention_id=self_trade_prevention_id,
            retail_portfolio_id=retail_portfolio_id,
            prediction_metadata=prediction_metadata,
            equity_order_metadata=equity_order_metadata,
            **extra,
        )
        return await self.submit_order(order, timeout_s=timeout_s)

    async def submit_order(self, order: OrderRequest, *, timeout_s: float | None = None) -> CreateOrderResult:
        """Place a prepared `OrderRequest` (its body bytes are sent as they are, on every attempt)."""
        self._advanced_trade()
        client_order_id = order.client_order_id

        async def confirm() -> Order | None:
            return await self.find_order(client_order_id, timeout_s=timeout_s)

        data = await self._pipeline.call(
            "POST",
            ORDERS,
            body=order.body,
            idempotency=Idempotency.KEYED,
            confirm=confirm,
            client_order_id=client_order_id,
            timeout_s=timeout_s,
        )
        return self._order_result(data, client_order_id, "POST /orders")

    @staticmethod
    def _order_result(data: Any, client_order_id: str, what: str) -> CreateOrderResult:
        if isinstance(data, Confirmed):
            found: Order = data.value
            return CreateOrderResult(
                found.order_id, client_order_id, found.product_id, found.side, confirmed_by_lookup=True,
                raw=found.raw,
            )  # fmt: skip
        if not data.get("success", False):
            error = data.get("error_response") or {}
            reason = (
                error.get("new_order_failure_reason")
                or error.get("preview_failure_reason")
                or error.get("error")
                or data.get("failure_reason")
                or "UNKNOWN_FAILURE_REASON"
            )
            detail = error.get("message") or error.get("error_details") or ""
            refusal = OrderEntryDisabled if reason in _ENTRY_DISABLED else OrderRejected
            raise refusal(
                f"{what} rejected order {client_order_id}: {reason}" + (f" ({detail})" if detail else ""),
                failure_reason=str(reason),
                client_order_id=client_order_id,
                code=str(error.get("error") or reason),
            )
        return CreateOrderResult.parse(data, client_order_id=client_order_id)

    async def preview_order(
        self,
        product_id: str,
        side: Side | str,
        configuration: OrderConfiguration,
        *,
        leverage: Amount | None = None,
        margin_type: MarginType | None = None,
        attached_configuration: OrderConfiguration | None = None,
        retail_portfolio_id: str | None = None,
        prediction_metadata: Mapping[str, Any] | None = None,
        equity_order_metadata: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> PreviewResult:
        self._advanced_trade()
        order = OrderRequest(
            product_id=product_id, side=Side(side), configuration=configuration, leverage=leverage,
            margin_type=margin_type, attached_configuration=attached_configuration,
            retail_portfolio_id=retail_portfolio_id, prediction_metadata=prediction_metadata,
            equity_order_metadata=equity_order_metadata,
        )  # fmt: skip
        data = await self._pipeline.call(
            "POST", f"{ORDERS}/preview", body=order.preview_body(), timeout_s=timeout_s
        )
        return PreviewResult.parse(data)

    async def cancel_orders(
        self, order_ids: str | Sequence[str], *, timeout_s: float | None = None
    ) -> list[CancelResult]:
        """Cancel by order id. Cancels go ahead of new orders in the limiter and are retried freely."""
        self._advanced_trade()
        ids = listify(order_ids) or []
        if not ids:
            return []
        data = await self._pipeline.call(
            "POST",
            BATCH_CANCEL,
            body=orjson.dumps({"order_ids": ids}),
            priority=Priority.HIGH,
            idempotency=Idempotency.SAFE,
            timeout_s=timeout_s,
        )
        return [CancelResult.parse(r) for r in data.get("results") or ()]

    @staticmethod
    def _edit_body(
        order_id: str,
        size: Amount | None,
        price: Amount | None,
        stop_price: Amount | None,
        average_entry_price: Amount | None,
        attached_configuration: OrderConfiguration | None,
        cancel_attached_order: bool | None,
    ) -> bytes:
        body: dict[str, Any] = {"order_id": order_id}
        for name, value in (
            ("size", size), ("price", price), ("stop_price", stop_price),
            ("average_entry_price", average_entry_price),
        ):  # fmt: skip
            if value is not None:
                body[name] = decimal_str(value, name)
        if attached_configuration is not None:
            body["attached_order_configuration"] = attached_configuration.payload()
        if cancel_attached_order is not None:
            body["cancel_attached_order"] = bool(cancel_attached_order)
        return orjson.dumps(body)

    async def edit_order(
        self,
        order_id: str,
        *,
        size: Amount | None = None,
        price: Amount | None = None,
        stop_price: Amount | None = None,
        average_entry_price: Amount | None = None,
        attached_configuration: OrderConfiguration | None = None,
        cancel_attached_order: bool | None = None,
        timeout_s: float | None = None,
    ) -> EditResult:
        """Change a resting GTC order's size, price or stop. Not retried once it may have been sent."""
        self._advanced_trade()
        body = self._edit_body(
            order_id, size, price, stop_price, average_entry_price, attached_configuration,
            cancel_attached_order,
        )  # fmt: skip
        data = await self._pipeline.call(
            "POST", f"{ORDERS}/edit", body=body, idempotency=Idempotency.UNSAFE, timeout_s=timeout_s
        )
        return EditResult.parse(data)

    async def preview_edit_order(
        self,
        order_id: str,
        *,
        size: Amount | None = None,
        price: Amount | None = None,
        stop_price: Amount | None = None,
        average_entry_price: Amount | None = None,
        attached_configuration: OrderConfiguration | None = None,
        cancel_attached_order: bool | None = None,
        timeout_s: float | None = None,
    ) -> EditPreview:
        """What `edit_order` with the same arguments would do; changes nothing, so retried freely."""
        self._advanced_trade()
        body = self._edit_body(
            order_id, size, price, stop_price, average_entry_price, attached_configuration,
            cancel_attached_order,
        )  # fmt: skip
        data = await self._pipeline.call("POST", f"{ORDERS}/edit_preview", body=body, timeout_s=timeout_s)
        return EditPreview.parse(data)

    async def get_order(
        self,
        order_id: str,
        *,
        client_order_id: str | None = None,
        user_native_currency: str | None = None,
        timeout_s: float | None = None,
    ) -> Order:
        path = f"{ORDERS}/historical/{path_segment(order_id, 'order_id')}"
        params = {"client_order_id": client_order_id, "user_native_currency": user_native_currency}
        data = await self._get(path, params, timeout_s=timeout_s)
        return Order.parse(data.get("order", data))

    async def list_orders(
        self,
        *,
        order_ids: str | Sequence[str] | None = None,
        product_ids: str | Sequence[str] | None = None,
        order_status: str | Sequence[str] | None = None,
        limit: int | None = None,
        start_date: Timestamp | None = None,
        end_date: Timestamp | None = None,
        order_types: str | Sequence[str] | None = None,
        order_side: Side | str | None = None,
        cursor: str | None = None,
        product_type: str | None = None,
        order_placement_source: str | None = None,
        contract_expiry_type: str | None = None,
        asset_filters: str | Sequence[str] | None = None,
        retail_portfolio_id: str | None = None,
        time_in_forces: str | Sequence[str] | None = None,
        sort_by: str | None = None,
        user_native_currency: str | None = None,
        use_simplified_total_value_calculation: bool | None = None,
        client_order_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Page[Order]:
        """One page of orders matching every filter given (`GET /orders/historical/batch`)."""
        params = {
            "order_ids": listify(order_ids),
            "product_ids": listify(product_ids),
            "order_status": listify(order_status),
            "limit": limit,
            "start_date": None if start_date is None else timestamp_str(start_date, "start_date"),
            "end_date": None if end_date is None else timestamp_str(end_date, "end_date"),
            "order_types": listify(order_types),
            "order_side": None if order_side is None else Side(order_side).value,
            "cursor": cursor,
            "product_type": product_type,
            "order_placement_source": order_placement_source,
            "contract_expiry_type": contract_expiry_type,
            "asset_filters": listify(asset_filters),
            "retail_portfolio_id": retail_portfolio_id,
            "time_in_forces": listify(time_in_forces),
            "sort_by": sort_by,
            "user_native_currency": user_native_currency,
            "use_simplified_total_value_calculation": use_simplified_total_value_calculation,
            "client_order_id": client_order_id,
        }
        data = await self._get(f"{ORDERS}/historical/batch", params, timeout_s=timeout_s)
        return Page.parse(data, "orders", Order.parse)

    def iter_orders(self, **filters: Any) -> AsyncIterator[Order]:
        """Every order matching `filters` (those of `list_orders`), page after page."""
        filters.pop("cursor", None)
        return self._pages(self.list_orders, **filters)

    async def find_order(self, client_order_id: str, *, timeout_s: float | None = None) -> Order | None:
        """The order with this client_order_id, or None. Matches exactly on our side, whatever the server's
        filter did."""
        page = await self.list_orders(client_order_id=client_order_id, timeout_s=timeout_s)
        for order in page.items:
            if order.client_order_id == client_order_id:
                return order
        return None

    async def fills(
        self,
        *,
        order_ids: str | Sequence[str] | None = None,
        trade_ids: str | Sequence[str] | None = None,
        product_ids: str | Sequence[str] | None = None,
        start_sequence_timestamp: Timestamp | None = None,
        end_sequence_timestamp: Timestamp | None = None,
        retail_portfolio_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        sort_by: str | None = None,
        order_side: Side | str | None = None,
        order_types: str | Sequence[str] | None = None,
        product_types: str | Sequence[str] | None = None,
        asset_filters: str | Sequence[str] | None = None,
    ) -> Page[Fill]:
        start, end = start_sequence_timestamp, end_sequence_timestamp
        params = {
            "order_ids": listify(order_ids),
            "trade_ids": listify(trade_ids),
            "product_ids": listify(product_ids),
            "start_sequence_timestamp": None
            if start is None
            else timestamp_str(start, "start_sequence_timestamp"),
            "end_sequence_timestamp": None if end is None else timestamp_str(end, "end_sequence_timestamp"),
            "retail_portfolio_id": retail_portfolio_id,
            "limit": limit,
            "cursor": cursor,
            "sort_by": sort_by,
            "order_side": None if order_side is None else Side(order_side).value,
            "order_types": listify(order_types),
            "product_types": listify(product_types),
            "asset_filters": listify(asset_filters),
        }
        data = await self._get(f"{ORDERS}/historical/fills", params)
        return Page.parse(data, "fills", Fill.parse)

    def iter_fills(self, **filters: Any) -> AsyncIterator[Fill]:
        """Every fill matching `filters` (those of `fills`), page after page."""
        filters.pop("cursor", None)
        return self._pages(self.fills, **filters)

    async def close_position(
        self,
        product_id: str,
        *,
        size: Amount | None = None,
        client_order_id: str | None = None,
        timeout_s: float | None = None,
    ) -> CreateOrderResult:
        """Close a futures position with a market order; keyed by client_order_id like any order."""
        extra = {} if client_order_id is None else {"client_order_id": client_order_id}
        request = ClosePositionRequest(product_id=product_id, size=size, **extra)
        return await self.submit_close_position(request, timeout_s=timeout_s)

    async def submit_close_position(
        self, request: ClosePositionRequest, *, timeout_s: float | None = None
    ) -> CreateOrderResult:
        """Send a prepared `ClosePositionRequest` (its body bytes as they are, on every attempt)."""
        self._advanced_trade()
        coid = request.client_order_id

        async def confirm() -> Order | None:
            return await self.find_order(coid, timeout_s=timeout_s)

        data = await self._pipeline.call(
            "POST",
            f"{ORDERS}/close_position",
            body=request.body,
            idempotency=Idempotency.KEYED,
            confirm=confirm,
            client_order_id=coid,
            timeout_s=timeout_s,
        )
        return self._order_result(data, coid, "POST /orders/close_position")
