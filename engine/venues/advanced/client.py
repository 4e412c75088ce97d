"""`Client`: the typed async REST client for Advanced Trade (CDP keys) and Coinbase Exchange (HMAC keys).

    async with Client(CdpKey.from_json_file("key.json")) as client:
        config = LimitGtc(base_size="0.001", limit_price="50000")
        order = await client.create_order("BTC-USD", Side.BUY, config)

One aiohttp session per client, many requests in flight at once. Which API it speaks follows from the key:
a CDP key talks Advanced Trade (`client.*`, `client.futures.*`), an Exchange key the Exchange API
(`client.exchange.*`). The base URL alone points it at Coinbase or at the simulator.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from engine._signer import CdpKey
from engine.errors import ConfigError, EngineError, OrderRejected
from engine.net.clock import ClockSync
from engine.net.paths import path_segment
from engine.net.pipeline import Confirmed, Pipeline
from engine.net.retry import Idempotency, RetryPolicy
from engine.net.transport import USER_AGENT, ApiKey, PoolConfig, Timeouts, Transport
from engine.net.wire import Amount, decimal_str, new_client_order_id
from engine.ratelimit import EndpointClass, LimiterStats, LocalRateLimiter, Priority, RateLimiter, RateLimits
from engine.venues.advanced.futures import FuturesApi
from engine.venues.advanced.orders import MarginType, OrderConfiguration, OrderRequest, Side
from engine.venues.advanced.types import (
    Account,
    BestBidAsk,
    CancelResult,
    CreateOrderResult,
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

__all__ = ["ADVANCED_TRADE_URL", "EXCHANGE_URL", "Client"]

log = logging.getLogger("engine.venues.advanced.client")

ADVANCED_TRADE_URL = "https://api.coinbase.com"
EXCHANGE_URL = "https://api.exchange.coinbase.com"
BROKERAGE = "/api/v3/brokerage"
ORDERS = f"{BROKERAGE}/orders"
BATCH_CANCEL = f"{BROKERAGE}/orders/batch_cancel"
# Minted ahead in the signer so an order's token is ready before the order is.
HOT_ROUTES: tuple[tuple[str, str], ...] = (("POST", ORDERS), ("POST", BATCH_CANCEL))


def query_string(params: dict[str, Any]) -> str:
    """Query string with repeated keys for lists (`order_ids=a&order_ids=b`), Nones dropped."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            pairs.extend((name, str(v)) for v in value)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return urlencode(pairs)


def _listify(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


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

    async def accounts(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Account]:
        data = await self._get(f"{BROKERAGE}/accounts", {"limit": limit, "cursor": cursor})
        return Page.parse(data, "accounts", Account.parse)

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
    ) -> list[Product]:
        params = {"product_type": product_type, "product_ids": product_ids, "limit": limit, "offset": offset}
        data = await self._get(f"{BROKERAGE}/products", params)
        return [Product.parse(p) for p in data.get("products") or ()]

    async def product(self, product_id: str) -> Product:
        path = f"{BROKERAGE}/products/{path_segment(product_id, 'product_id')}"
        return Product.parse(await self._get(path))

    async def best_bid_ask(self, product_ids: str | Sequence[str]) -> list[BestBidAsk]:
        data = await self._get(f"{BROKERAGE}/best_bid_ask", {"product_ids": _listify(product_ids)})
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
            raise OrderRejected(
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
        timeout_s: float | None = None,
    ) -> PreviewResult:
        self._advanced_trade()
        order = OrderRequest(
            product_id=product_id, side=Side(side), configuration=configuration, leverage=leverage,
            margin_type=margin_type,
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
        ids = _listify(order_ids) or []
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

    async def edit_order(
        self,
        order_id: str,
        *,
        size: Amount | None = None,
        price: Amount | None = None,
        timeout_s: float | None = None,
    ) -> EditResult:
        """Change a resting GTC limit order's size and/or price. Not retried once it may have been sent."""
        self._advanced_trade()
        body: dict[str, str] = {"order_id": order_id}
        if size is not None:
            body["size"] = decimal_str(size, "size")
        if price is not None:
            body["price"] = decimal_str(price, "price")
        data = await self._pipeline.call(
            "POST",
            f"{ORDERS}/edit",
            body=orjson.dumps(body),
            idempotency=Idempotency.UNSAFE,
            timeout_s=timeout_s,
        )
        return EditResult.parse(data)

    async def get_order(self, order_id: str, *, timeout_s: float | None = None) -> Order:
        path = f"{ORDERS}/historical/{path_segment(order_id, 'order_id')}"
        data = await self._get(path, timeout_s=timeout_s)
        return Order.parse(data.get("order", data))

    async def list_orders(
        self,
        *,
        product_ids: str | Sequence[str] | None = None,
        order_status: str | Sequence[str] | None = None,
        order_ids: str | Sequence[str] | None = None,
        client_order_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        timeout_s: float | None = None,
    ) -> Page[Order]:
        params = {
            "product_ids": _listify(product_ids),
            "order_status": _listify(order_status),
            "order_ids": _listify(order_ids),
            "client_order_id": client_order_id,
            "limit": limit,
            "cursor": cursor,
        }
        data = await self._get(f"{ORDERS}/historical/batch", params, timeout_s=timeout_s)
        return Page.parse(data, "orders", Order.parse)

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
        product_ids: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Fill]:
        params = {
            "order_ids": _listify(order_ids),
            "product_ids": _listify(product_ids),
            "limit": limit,
            "cursor": cursor,
        }
        data = await self._get(f"{ORDERS}/historical/fills", params)
        return Page.parse(data, "fills", Fill.parse)

    async def close_position(
        self,
        product_id: str,
        *,
        size: Amount | None = None,
        client_order_id: str | None = None,
        timeout_s: float | None = None,
    ) -> CreateOrderResult:
        """Close a futures position with a market order; keyed by client_order_id like any order."""
        self._advanced_trade()
        coid = client_order_id or new_client_order_id()
        body: dict[str, str] = {"client_order_id": coid, "product_id": product_id}
        if size is not None:
            body["size"] = decimal_str(size, "size")

        async def confirm() -> Order | None:
            return await self.find_order(coid, timeout_s=timeout_s)

        data = await self._pipeline.call(
            "POST",
            f"{ORDERS}/close_position",
            body=orjson.dumps(body),
            idempotency=Idempotency.KEYED,
            confirm=confirm,
            client_order_id=coid,
            timeout_s=timeout_s,
        )
        return self._order_result(data, coid, "POST /orders/close_position")
