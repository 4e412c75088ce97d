"""The simulator: wires the market, matching engine, accounts, auth, limits, faults and WebSocket into one
set of routes, and serves it (`Simulator.serve`): REST and admin requests on the simulator's own HTTP lane,
WebSocket upgrades and anything the lane does not serve on an aiohttp application with the same routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import uuid
from collections import deque
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from aiohttp import web

from engine.sim.accounts import Accounts
from engine.sim.admin import AdminApi
from engine.sim.auth import SCOPES, CdpKey, ExchangeKey, KeyRing
from engine.sim.candles import CandleBook
from engine.sim.clock import SimClock
from engine.sim.config import SimConfig
from engine.sim.converts import Converts
from engine.sim.derivatives import http as derivatives_http
from engine.sim.derivatives import sockets as derivatives_sockets
from engine.sim.derivatives.gateway import DerivativesGateway
from engine.sim.faults import FaultDice, Faults
from engine.sim.futures import FuturesPositions
from engine.sim.gateway import guard
from engine.sim.ledger import Ledger
from engine.sim.market import Market, Trade
from engine.sim.matching import MatchingEngine
from engine.sim.messages import Handler, aiohttp_handler
from engine.sim.orders import Fill, Order
from engine.sim.payments import linked_methods
from engine.sim.portfolios import Portfolios
from engine.sim.ratelimit import RateLimiter
from engine.sim.rest_advanced import AdvancedTradeApi
from engine.sim.rest_exchange import ExchangeApi
from engine.sim.server import AIOHTTP_LOG, MAX_BODY, HttpLane, Router, refusing_handlers
from engine.sim.trading_status import ONLINE
from engine.sim.ws import MarketDataHub

log = logging.getLogger(__name__)

_RECENT_TRADES = 50


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Simulator:
    """An in-process Coinbase: Advanced Trade + Exchange REST, WebSocket, admin endpoints.

    Deterministic under `config.seed`: each concern draws from its own `random.Random`, so the price walk does
    not shift when a test places one more order.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config = config or SimConfig()
        self.faults: Faults = config.faults
        seeds = random.Random(config.seed)
        ids_rng = random.Random(seeds.getrandbits(64))
        self.clock = SimClock(config.clock_offset, self.faults)
        self.dice = FaultDice(self.faults, seeds.getrandbits(64))
        now = self.clock.now()
        self.accounts = Accounts(portfolio_uuid=_uuid(ids_rng))
        currencies = dict(config.starting_balances)
        for spec in config.products:
            for currency in (spec.base_currency, spec.quote_currency):
                if currency:
                    currencies.setdefault(currency, Decimal(0))
        for currency, balance in currencies.items():
            self.accounts.open(_uuid(ids_rng), currency, Decimal(balance), now)
        self.asset_ids = {currency: _uuid(ids_rng) for currency in currencies}
        self.markets = {
            spec.product_id: Market(spec, random.Random(seeds.getrandbits(64)), config.book_depth)
            for spec in config.products
        }
        self.ledger = Ledger()
        self.portfolios = Portfolios(self.accounts, self.clock.now)
        self.product_status = {product_id: ONLINE for product_id in self.markets}
        self.engine = MatchingEngine(
            self.markets,
            self.accounts,
            FuturesPositions(),
            self.ledger,
            config.fees,
            self.clock,
            random.Random(seeds.getrandbits(64)),
            user_id=_uuid(ids_rng),
            statuses=self.product_status,
            wallets=self.portfolios.wallet,
        )
        self.candles = CandleBook()
        self.converts = Converts(
            self.portfolios.account,
            self.portfolios.wallet,
            self.usd_price,
            lambda: self.engine.fees.taker_fee_rate,
            self.clock.now,
            self.engine.new_id,
        )
        self.payment_methods = linked_methods([_uuid(ids_rng), _uuid(ids_rng)], "USD", now)
        self.keys = KeyRing(
            self.clock, config.jwt_nbf_leeway_s, config.jwt_max_lifetime_s, config.hmac_window_s
        )
        self.limiter = RateLimiter(config.rate_limits, config.timestamps_per_key)
        self.hub = MarketDataHub(self)
        self.advanced = AdvancedTradeApi(self)
        self.exchange = ExchangeApi(self)
        self.admin = AdminApi(self)
        self.derivatives = DerivativesGateway(
            config.derivatives,
            keys=self.keys,
            clock=self.clock,
            dice=self.dice,
            ledger=self.ledger,
            seed=seeds.getrandbits(64),
        )
        self.auth_failures: dict[str, int] = {}
        self.injected: dict[str, int] = {
            "latency": 0,
            "error_5xx": 0,
            "error_200": 0,
            "storm_429": 0,
            "drop_after_accept": 0,
            "slow_response": 0,
        }
        self.market_paused = False
        self.intraday_margin_setting = "INTRADAY_MARGIN_SETTING_STANDARD"
        # Coinbase allows one pending futures→spot sweep at a time; it settles at the daily cutoff, which a
        # session of the simulator never reaches, so a scheduled sweep stays pending until cancelled.
        self.pending_sweep: dict[str, Any] | None = None
        self._recent_trades: dict[str, deque[Trade]] = {
            pid: deque(maxlen=_RECENT_TRADES) for pid in self.markets
        }
        self.engine.trade_listeners.append(self._on_trade)
        self.engine.order_listeners.append(self._on_order)

    # ---- keys -----------------------------------------------------------------------------------------
    def register_cdp_key(
        self,
        name: str,
        public_key_pem: str,
        permissions: set[str] | frozenset[str] = frozenset({"view", "trade"}),
        allowed_ips: list[str] | None = None,
    ) -> CdpKey:
        """Register a CDP key by its name and SPKI public key PEM (P-256 or Ed25519)."""
        return self.keys.register_cdp_key(name, public_key_pem, permissions, allowed_ips)

    def register_exchange_key(
        self,
        key: str,
        secret_b64: str,
        passphrase: str,
        permissions: set[str] | frozenset[str] = frozenset({"view", "trade"}),
        allowed_ips: list[str] | None = None,
    ) -> ExchangeKey:
        return self.keys.register_exchange_key(key, secret_b64, passphrase, permissions, allowed_ips)

    # ---- observation ----------------------------------------------------------------------------------
    def rate_limited_count(self, key_name: str) -> int:
        """429s served to a key (CDP key name, Exchange key, or "ip:ADDR" for public endpoints)."""
        stats = self.limiter.stats.get(key_name)
        return stats.rate_limited if stats is not None else 0

    def request_count(self, key_name: str) -> int:
        stats = self.limiter.stats.get(key_name)
        return stats.requests if stats is not None else 0

    def request_timestamps(self, key_name: str) -> list[float]:
        stats = self.limiter.stats.get(key_name)
        return list(stats.timestamps) if stats is not None else []

    def recent_trades(self, product_id: str) -> deque[Trade]:
        return self._recent_trades[product_id]

    def usd_price(self, currency: str) -> Decimal | None:
        """What one unit of `currency` is worth in USD now (its -USD market's mid), or None."""
        if currency in ("USD", "USDC"):
            return Decimal(1)
        market = self.markets.get(f"{currency}-USD")
        return market.mid if market is not None else None

    # ---- the market -----------------------------------------------------------------------------------
    def tick(self) -> None:
        """One market step for every product: walk, refresh book, match resting orders, publish."""
        now = self.clock.now()
        for product_id, market in self.markets.items():
            trade = market.step(now)
            if trade is not None:
                self._on_trade(trade)
            self.engine.on_tick(product_id)
            self.publish_book(product_id)
            self.hub.publish_tickers(product_id)
        if self.config.derivatives.enabled:
            self.derivatives.tick()

    def set_mid(self, product_id: str, price: Decimal) -> None:
        """Move a product's mid (and its book) now, then let resting orders react: for tests and demos."""
        market = self.markets[product_id]
        market.set_mid(price)
        market.last_price = market.mid
        self.engine.on_tick(product_id)
        self.publish_book(product_id)
        self.hub.publish_tickers(product_id)

    def set_product_status(self, product_id: str, status: str) -> None:
        """Take a product offline, to cancel-only, limit-only, post-only, or back online: new orders are
        refused as Coinbase refuses them (engine.sim.trading_status), and the status channel says so."""
        self.product_status[product_id] = status
        self.hub.publish_status(product_id)

    def publish_book(self, product_id: str) -> None:
        changes = self.markets[product_id].book.drain_changes()
        if changes:
            self.hub.publish_l2(product_id, changes)
        self.exchange.feed.publish_book(product_id, changes)

    def _on_trade(self, trade: Trade) -> None:
        self._recent_trades[trade.product_id].append(trade)
        self.candles.on_trade(trade)
        self.hub.publish_candle(trade.product_id)
        self.hub.publish_trade(trade)
        self.exchange.on_trade(trade)

    def _on_order(self, order: Order, fill: Fill | None) -> None:
        self.hub.publish_order(order, fill)

    async def _run_market(self) -> None:
        interval = self.config.tick_interval_s
        while True:
            await asyncio.sleep(interval)
            if not self.market_paused:
                self.tick()

    async def _run_heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_s)
            self.engine.expire_due()
            self.hub.heartbeat()
            self.exchange.feed.heartbeat()

    # ---- serving --------------------------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, Handler]]:
        """Every REST and admin route, its handler wrapped in what stands before it (gateway, loopback)."""
        routes: list[tuple[str, str, Handler]] = []
        for method, path, handler, access in self.advanced.routes():
            routes.append((method, path, guard(self, handler, access, "advanced")))
        for method, path, handler, access, bucket in self.exchange.routes():
            routes.append((method, path, guard(self, handler, access, "exchange", bucket)))
        for method, path, handler in self.admin.routes():
            routes.append((method, path, self.admin.wrap(handler)))
        if self.config.derivatives.enabled:
            routes.extend(derivatives_http.routes(self.derivatives))
        return routes

    def build_router(self) -> Router:
        """The routes as the HTTP lane looks them up."""
        router = Router()
        for method, path, handler in self.routes():
            router.add(method, path, handler)
        return router

    def build_app(self) -> web.Application:
        """The same routes as an aiohttp application, plus the WebSocket: it serves what the lane hands on."""
        app = web.Application(client_max_size=MAX_BODY)
        router = app.router
        for method, path, handler in self.routes():
            router.add_route(method, path, aiohttp_handler(handler, self.config.request_timeout_s))
        router.add_get("/ws", self.hub.handle)
        router.add_get("/ws/user", self.hub.handle)
        router.add_get("/", self.exchange.feed.handle)  # the Exchange feed, as ws-feed.exchange.coinbase.com
        if self.config.derivatives.enabled:
            router.add_get("/ws/api/v2", derivatives_sockets.trading_socket(self.derivatives))
            router.add_get("/streams/ws/api/v2", derivatives_sockets.streams_socket(self.derivatives))
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        await self.hub.close_all()
        await self.exchange.feed.close_all()
        await self.derivatives.close_all()

    @contextlib.asynccontextmanager
    async def serve(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> AsyncIterator[str]:
        """Serve until the block exits; yields the base URL ("http(s)://HOST:PORT")."""
        keepalive_s = self.config.keepalive_timeout_s
        # aiohttp's keep-alive timer is also what closes a connection it serves whose next head never ends
        runner = web.AppRunner(
            self.build_app(),
            access_log=None,
            handle_signals=False,
            keepalive_timeout=keepalive_s,
            logger=AIOHTTP_LOG,
        )
        await runner.setup()
        assert runner.server is not None
        lane = HttpLane(
            self.build_router(), refusing_handlers(runner.server, keepalive_timeout_s=keepalive_s)
        )
        server = await asyncio.get_running_loop().create_server(
            lane, host, port, ssl=ssl_context, backlog=1024
        )
        tasks = [
            asyncio.create_task(self._run_heartbeats()),
            asyncio.create_task(self._close_idle_connections(lane, keepalive_s)),
            asyncio.create_task(self._close_stalled_requests(lane, self.config.request_timeout_s)),
        ]
        if self.config.tick_interval_s > 0:
            tasks.append(asyncio.create_task(self._run_market()))
        try:
            bound_port = server.sockets[0].getsockname()[1] if server.sockets else port
            scheme = "https" if ssl_context is not None else "http"
            yield f"{scheme}://{host}:{bound_port}"
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            server.close()
            await lane.shutdown()
            await runner.cleanup()

    @staticmethod
    async def _close_idle_connections(lane: HttpLane, idle_s: float) -> None:
        while True:
            await asyncio.sleep(max(min(60.0, idle_s / 4), 0.01))
            lane.close_idle(idle_s)

    @staticmethod
    async def _close_stalled_requests(lane: HttpLane, timeout_s: float) -> None:
        """One sweep for every connection, not a timer per request: a request arriving whole costs nothing."""
        while True:
            await asyncio.sleep(max(min(1.0, timeout_s / 4), 0.01))
            lane.close_stalled(timeout_s)


__all__ = ["SCOPES", "Simulator"]
