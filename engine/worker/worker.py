"""The headless worker: signals in (webhook and/or a Redis stream), through the trading core, stopped cleanly.

Life of a worker:

- `start()`: read the key (environment, file or keyring), build the rate limiter (local, or shared through
  Redis with the other workers on the key), open the REST client (measuring the clock offset) and start an
  `engine.trading.Engine` on it, trading on the venue `[exchange].venue` names (Advanced Trade with a CDP
  key, or Coinbase Exchange with an HMAC key and passphrase). The Engine opens the journal and the audit
  log, reconciles the journal with the exchange (an intent journalled before a crash is looked up by
  `client_order_id`, never re-sent blindly), loads balances and follows the market and the user channel over
  WebSocket: its portfolio, open orders and quotes are what the risk gate sees. Then intake opens (see
  `engine.worker.intake`) and `/healthz` + `/metrics`.
- each signal: `engine.worker.execution.SignalExecutor`: `client_order_id` derived from the signal id, then
  `Engine.submit` (risk gate, journal intent, order, tracking). A signal never becomes two orders.
- SIGHUP: `reload_credentials()` reads the key again and swaps it in (`Engine.replace_key`: same session,
  limiter and connections) only if it loads and passes a read-only call and the permission check; otherwise
  the old key stays and the failure is logged and counted.
- SIGTERM / SIGINT: `stop()` closes intake, drains what was taken (up to `drain_timeout_s`), cancels the
  Engine's open orders if configured, stops the Engine (flushing the journal), and returns; exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from engine.auth import CdpKey, ExchangeKey
from engine.clock import SYSTEM_CLOCK, Clock
from engine.errors import AuthError, ConfigError, EngineError, ExchangeError, KeyFormatError
from engine.net.retry import RetryPolicy
from engine.ops.config import Config
from engine.ops.credentials import (
    Credentials,
    ExchangeCredentials,
    key_label,
    read_credentials,
    read_exchange_credentials,
)
from engine.ops.http import Health, OpsServer
from engine.ops.logs import register_secret
from engine.ops.metrics import EngineMetrics
from engine.ratelimit import BucketLimit, LocalRateLimiter, RateLimiter, RateLimits
from engine.ratelimit.redis_limiter import RedisRateLimiter
from engine.redis_conn import RedisSettings, connect
from engine.signals.auth import SignalAuthenticator
from engine.signals.intake import SignalSink
from engine.signals.model import Signal
from engine.signals.replay import LocalReplayGuard, RedisReplayGuard, ReplayGuard
from engine.signals.webhook import SignalWebhook
from engine.trading.engine import Engine, EngineConfig
from engine.trading.journal import Durability
from engine.trading.tracked import TrackedOrder
from engine.venues.advanced.client import ORDERS, Client
from engine.venues.exchange import exchange_venue
from engine.worker.execution import SignalExecutor, WorkerStats
from engine.worker.intake import Intake, QueueIntake, StreamIntake

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["Worker", "WorkerStats", "engine_config"]

log = logging.getLogger("engine.worker")
_ZERO = Decimal(0)
_MARKET_CHANNELS = ("level2", "ticker")  # the risk gate's quotes: the live book, the ticker until it is ready
_READY_TIMEOUT_S = 10.0
_STREAM_BLOCK_MS = 500


def engine_config(config: Config) -> EngineConfig:
    """The trading core's configuration from the worker's config."""
    return EngineConfig(
        journal_path=config.journal.path,
        durability=Durability.FSYNC if config.journal.durability == "full" else Durability.OS,
        audit_path=config.journal.audit_log,
        worker=config.worker.client_order_prefix,
        products=config.risk.allowed_products or tuple(config.risk.products),
        market_channels=_MARKET_CHANNELS,
        risk=config.risk,  # [risk] decodes into the engine's own RiskConfig
        busy_poll=config.worker.busy_poll,
    )


def _key_id(key: CdpKey | ExchangeKey) -> str:
    return key.name if isinstance(key, CdpKey) else key.key


def _close(key: CdpKey | ExchangeKey) -> None:
    """Wipe a CDP key's secret now; an Exchange key's is wiped when it is dropped."""
    if isinstance(key, CdpKey):
        key.close()


class _TimedSink:
    """The webhook's sink: notes each signal's arrival (for the signal-to-ack latency), then passes it on."""

    def __init__(self, sink: SignalSink, executor: SignalExecutor) -> None:
        self._sink = sink
        self._executor = executor

    async def submit(self, signal: Signal) -> str:
        self._executor.arrived(signal)
        try:
            return await self._sink.submit(signal)
        except BaseException:
            self._executor.arrivals.pop(signal.id, None)
            raise


class Worker:
    """One worker. `dry_run` overrides `[worker].dry_run`; `environ` the process environment; `clock` times
    its engine, rate limiter and webhook (engine.clock)."""

    def __init__(
        self,
        config: Config,
        *,
        environ: Mapping[str, str] | None = None,
        dry_run: bool | None = None,
        metrics: EngineMetrics | None = None,
        sample_interval_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        self.clock = clock
        self.dry_run = config.worker.dry_run if dry_run is None else dry_run
        self._environ = environ
        self.metrics = metrics or EngineMetrics()
        self.stats = WorkerStats()
        self.sample_interval_s = sample_interval_s
        self.status = "starting"
        self.webhook_url = ""
        self.ops_url = ""
        self.engine: Engine | None = None
        self.executor: SignalExecutor | None = None
        self.intake: Intake | None = None
        self._key: CdpKey | ExchangeKey | None = None
        self._client: Client | None = None
        self._limiter: RateLimiter | None = None
        self._redis: list[aioredis.Redis] = []
        self._rotations = 0
        self._fills_seen: dict[str, Decimal] = {}  # client_order_id -> filled size counted so far
        self._webhook_runner: web.AppRunner | None = None
        self._ops: OpsServer | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._stop_requested = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    # -- start ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        secret = (self._env().get(config.signals.secret_env) or "").strip()
        if config.signals.webhook and not secret:
            raise ConfigError(
                f"signals.secret_env: the environment variable {config.signals.secret_env} (the webhook's "
                "HMAC secret, at least 16 bytes) is not set"
            )
        register_secret(secret)
        for url in (config.limits.redis_url, config.signals.redis_url):
            password = urlsplit(url).password if url else None
            if password:
                register_secret(password)
        credentials = await asyncio.to_thread(self._read_credentials)
        for warning in credentials.warnings:
            log.warning("%s", warning)
        key = self._key = credentials.signing_key()
        try:
            await self._start(key, secret)
        except BaseException as exc:
            await self.stop()
            if isinstance(exc, AuthError):  # a deleted, unknown or restricted key: the operator's to fix
                detail = exc.hint or str(exc)
                raise ConfigError(
                    f"credentials: the exchange refused key {key_label(credentials.name)} "
                    f"({exc.diagnosis.value}, HTTP {exc.status}): {detail}"
                ) from exc
            raise
        self.status = "ok"
        self.metrics.up.set(1)
        log.info(
            "worker started: key %s from %s, %s %s, intake %s, limiter %s, webhook %s, ops %s%s",
            key_label(credentials.name),
            credentials.origin,
            config.exchange.venue,
            config.exchange.base_url,
            "redis stream" if config.signals.redis_url else "local queue",
            "redis" if config.limits.redis_url else "local",
            self.webhook_url or "off",
            self.ops_url or "off",
            " (dry run)" if self.dry_run else "",
        )

    def _read_credentials(self) -> Credentials | ExchangeCredentials:
        """The key for the configured venue (synchronous I/O: run it in a thread)."""
        if self.config.exchange.venue == "exchange":
            return read_exchange_credentials(self.config.credentials, self._environ)
        return read_credentials(self.config.credentials, self._environ)

    async def _start(self, key: CdpKey | ExchangeKey, secret: str) -> None:
        config = self.config
        # one limiter and one client for the worker's life: a key rotation swaps the key inside the client
        self._limiter = self._new_limiter()
        client = self._client = Client(
            key,
            config.exchange.base_url,
            timeout_s=config.exchange.request_timeout_s,
            limiter=self._limiter,
            retry=RetryPolicy(max_attempts=config.limits.max_retries + 1),
        )
        await client.open()
        self.metrics.clock_offset.set(client.clock_offset_s)
        trading = engine_config(config)
        if isinstance(key, ExchangeKey):
            venue = exchange_venue(key, client=client, products=trading.products)
            engine = Engine(config=trading, venue=venue, clock=self.clock)
        else:
            engine = Engine(key, trading, client=client, clock=self.clock)
        await engine.start()  # reconciles the journal with the exchange before anything is placed
        self.engine = engine
        self._log_reconciliation(engine)
        engine.on_order(self._count_fills)
        try:
            await engine.wait_ready(_READY_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "market data not ready after %.0f s; the risk gate refuses until it is", _READY_TIMEOUT_S
            )
        executor = self.executor = SignalExecutor(
            engine,
            prefix=config.worker.client_order_prefix,
            allows_product=config.risk.allows_product,
            dry_run=self.dry_run,
            metrics=self.metrics,
            stats=self.stats,
        )
        intake = self.intake = self._new_intake(executor)
        self._bind_metrics(engine)
        intake.start()
        self._sampler = asyncio.create_task(self._sample())
        if config.signals.webhook:
            authenticator = SignalAuthenticator([secret], window_s=config.signals.window_s, clock=self.clock)
            webhook = SignalWebhook(authenticator, self._replay_guard(), _TimedSink(intake.sink, executor))
            self._webhook_runner, self.webhook_url = await _serve(
                webhook.runner(handle_signals=False), config.signals.host, config.signals.port
            )
        if config.metrics.enabled:
            self._ops = OpsServer(
                self.metrics, self.health, host=config.metrics.host, port=config.metrics.port
            )
            await self._ops.start()
            self.ops_url = self._ops.url

    def _new_limiter(self) -> RateLimiter:
        limits = self.config.limits
        on_exchange = self.config.exchange.venue == "exchange"
        published = RateLimits.exchange() if on_exchange else RateLimits.advanced_trade()
        private = limits.private_rps or published.private.rate
        public = limits.public_rps or published.public.rate
        rate_limits = RateLimits(
            private=BucketLimit(private, limits.burst or private),
            public=BucketLimit(public, limits.burst or public),
            fills=published.fills,  # Exchange counts /fills apart
        )
        if limits.redis_url is None:
            return LocalRateLimiter(rate_limits, clock=self.clock)
        settings = RedisSettings(limits.redis_url, limits.redis_timeout_s, limits.redis_namespace)
        redis = connect(settings)
        self._redis.append(redis)
        return RedisRateLimiter(
            redis,
            rate_limits,
            namespace=limits.redis_namespace,
            expected_workers=limits.expected_workers,
            fallback_fraction=limits.fallback_fraction,
            clock=self.clock,
        )

    def _new_intake(self, executor: SignalExecutor) -> Intake:
        signals, worker = self.config.signals, self.config.worker
        if signals.redis_url is None:
            return QueueIntake(
                executor,
                queue_size=signals.queue_size,
                concurrency=worker.concurrency,
                metrics=self.metrics,
                prefix=worker.client_order_prefix,
            )
        settings = RedisSettings(signals.redis_url, signals.redis_timeout_s, signals.redis_namespace)
        redis = connect(settings, extra_timeout_s=_STREAM_BLOCK_MS / 1000)
        self._redis.append(redis)
        return StreamIntake(
            redis,
            executor,
            executor.recover,
            namespace=signals.redis_namespace,
            group=signals.redis_group,
            consumer=signals.consumer or socket.gethostname(),
            concurrency=worker.concurrency,
            min_idle_ms=round(signals.reclaim_idle_s * 1000),
            max_attempts=signals.max_attempts,
            block_ms=_STREAM_BLOCK_MS,
        )

    def _replay_guard(self) -> ReplayGuard:
        """Seen signal ids: in Redis when signals go through the stream (shared by every worker's webhook)."""
        signals = self.config.signals
        if signals.redis_url is None:
            return LocalReplayGuard(clock=self.clock)
        redis = connect(RedisSettings(signals.redis_url, signals.redis_timeout_s, signals.redis_namespace))
        self._redis.append(redis)
        return RedisReplayGuard(redis, namespace=f"{{{signals.redis_namespace}}}")

    @staticmethod
    def _log_reconciliation(engine: Engine) -> None:
        report = engine.reconcile_report
        if report is None:
            return
        if report.resolved or report.refreshed or report.unknown_open_orders:
            log.warning(
                "reconciled the journal: %d unresolved orders looked up (%d never placed), %d refreshed, "
                "%d open orders on the exchange not in the journal",
                len(report.resolved),
                len(report.not_placed),
                len(report.refreshed),
                len(report.unknown_open_orders),
            )
        else:
            log.info("reconciled the journal: nothing to resolve")

    def _count_fills(self, order: TrackedOrder) -> None:
        """Count each increase of an order's filled size (user channel or REST refresh) as a fill."""
        seen = self._fills_seen.get(order.client_order_id, _ZERO)
        if order.filled_size > seen:
            self.metrics.fills.inc()
        if order.state.is_terminal:
            self._fills_seen.pop(order.client_order_id, None)
        elif order.filled_size > seen:
            self._fills_seen[order.client_order_id] = order.filled_size

    @property
    def limiter(self) -> RateLimiter | None:
        """What every request of this worker waits on: local, or in Redis shared by the key's workers."""
        return self._limiter

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _bind_metrics(self, engine: Engine) -> None:
        limiter, metrics, intake = self._limiter, self.metrics, self.intake
        assert limiter is not None
        metrics.observe_counter(
            "rate_limited", "429s from the exchange", lambda: limiter.stats().rate_limited
        )
        metrics.observe_counter(
            "limiter_wait_seconds", "Time requests waited on the client-side rate limiter",
            lambda: limiter.stats().wait_total_s,
        )  # fmt: skip
        metrics.observe_gauge("premint_pool_depth", "Order tokens minted ahead and ready", self._pool_depth)
        metrics.observe_gauge(
            "journal_pending", "Order outcomes not yet written to disk",
            lambda: engine.journal.pending if engine.journal is not None else 0,
        )  # fmt: skip
        metrics.observe_counter(
            "websocket_gaps", "Sequence gaps on the market and user WebSocket channels",
            lambda: sum(s.stats.gaps for s in engine.sockets),
        )  # fmt: skip
        metrics.observe_counter(
            "websocket_disconnects", "WebSocket connections lost (each is reconnected and resynced)",
            lambda: sum(s.stats.disconnects for s in engine.sockets),
        )  # fmt: skip
        metrics.observe_gauge(
            "kill_switch", "1 while the kill switch refuses every order",
            lambda: float(engine.risk.kill_switch.engaged),
        )  # fmt: skip
        if isinstance(limiter, RedisRateLimiter):
            metrics.observe_gauge(
                "limiter_fallback_active", "1 while Redis is away and this worker spends its local share",
                lambda: float(limiter.fallback_active),
            )  # fmt: skip
            metrics.observe_counter(
                "limiter_fallbacks", "Times the limiter fell back to its local share",
                lambda: limiter.fallback_entered,
            )  # fmt: skip
            metrics.observe_counter(
                "limiter_fallback_recoveries", "Times the limiter went back to the shared budget in Redis",
                lambda: limiter.fallback_recovered,
            )  # fmt: skip
            metrics.observe_counter(
                "limiter_redis_errors", "Limiter calls to Redis that failed", lambda: limiter.redis_errors
            )
        if isinstance(intake, StreamIntake):
            consumer = intake.consumer
            metrics.observe_counter(
                "signal_stream_reclaimed", "Signals taken over from a dead worker", lambda: consumer.reclaimed
            )
            metrics.observe_counter(
                "signal_stream_duplicates", "Stream entries for a signal already settled or claimed",
                lambda: consumer.duplicates,
            )  # fmt: skip
            metrics.observe_counter(
                "signal_stream_redis_errors", "Signal stream calls to Redis that failed",
                lambda: consumer.redis_errors,
            )  # fmt: skip

    def _pool_depth(self) -> float:
        key, client = self._key, self._client
        if not isinstance(key, CdpKey) or client is None:  # an Exchange key signs per request: no pool
            return 0.0
        return float(key.pooled("POST", ORDERS, client.transport.host))

    async def _sample(self) -> None:
        """Once a second: the gauges that are sampled rather than counted."""
        while True:
            await asyncio.sleep(self.sample_interval_s)
            key, client, engine, intake = self._key, self._client, self.engine, self.intake
            if key is None or client is None or engine is None or intake is None:
                continue
            started = time.perf_counter()
            if isinstance(key, CdpKey):  # the signing latency an order pays
                key.rest_jwt("POST", ORDERS, client.transport.host)
            else:
                key.headers("POST", "/orders", b"")
            self.metrics.signing.observe(time.perf_counter() - started)
            self.metrics.clock_offset.set(client.clock_offset_s)
            self.metrics.open_orders.set(len(engine.open_orders()))
            self.metrics.queue_depth.set(intake.depth)

    def health(self) -> Health:
        engine, intake = self.engine, self.intake
        killed = engine is not None and engine.risk.kill_switch.engaged
        checks: dict[str, Any] = {
            "key_loaded": self._key is not None,
            "key_rotations": self._rotations,
            "queue_depth": intake.depth if intake is not None else 0,
            "in_flight": intake.in_flight if intake is not None else 0,
            "kill_switch": killed,
            "dry_run": self.dry_run,
        }
        if isinstance(self._limiter, RedisRateLimiter):
            checks["limiter_fallback"] = self._limiter.fallback_active
        ok = self.status == "ok" and not killed and self._key is not None
        return Health(ok, "degraded" if killed else self.status, checks)

    # -- rotation ---------------------------------------------------------------------------------------

    async def reload_credentials(self) -> bool:
        """Read the key again; swap it in only if it loads, makes a read-only call and has the permissions."""
        async with self._reload_lock:
            key, engine = self._key, self.engine
            assert key is not None
            assert engine is not None
            try:
                credentials = await asyncio.to_thread(self._read_credentials)
                candidate: CdpKey | ExchangeKey = credentials.signing_key()
            except (ConfigError, KeyFormatError) as exc:
                return self._keep_old_key(f"the new key did not load: {exc}")
            try:
                await self._probe(candidate, engine.client)
            except (ExchangeError, OSError, TimeoutError, EngineError) as exc:
                _close(candidate)
                detail = f"{exc.diagnosis.value}: {exc.hint}" if isinstance(exc, AuthError) else str(exc)
                return self._keep_old_key(f"the new key failed its check ({type(exc).__name__}: {detail})")
            engine.replace_key(candidate)
            self._key = candidate
            _close(key)  # nothing signs with it any more: the client reads its key at each signature
            self._rotations += 1
            self.metrics.key_reloads.labels(result="rotated").inc()
            log.info(
                "credentials rotated: %s -> %s (from %s)",
                key_label(_key_id(key)),
                key_label(_key_id(candidate)),
                credentials.origin,
            )
            return True

    def _keep_old_key(self, reason: str) -> bool:
        self.metrics.key_reloads.labels(result="kept_old_key").inc()
        log.error("credential reload refused, keeping the current key: %s", reason)
        return False

    async def _probe(self, candidate: CdpKey | ExchangeKey, client: Client) -> None:
        """A read-only call and the permission check with the candidate key, on a client of its own (an
        Exchange key has no permission call: its accounts answering is the check)."""
        candidate.clock_offset = client.clock_offset_s
        probe = Client(
            candidate,
            self.config.exchange.base_url,
            timeout_s=self.config.exchange.request_timeout_s,
            retry=RetryPolicy.never(),
            sync_clock=False,
            premint_depth=0,
        )
        async with probe:
            if isinstance(candidate, ExchangeKey):
                await probe.exchange.accounts()
                return
            await probe.accounts(limit=1)
            permissions = await probe.key_permissions()
        if not permissions.can_view:
            raise ConfigError("the new key lacks the view permission")
        if not self.dry_run and not permissions.can_trade:
            raise ConfigError("the new key lacks the trade permission this worker needs")

    # -- running and stopping ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    def _on_sighup(self) -> None:
        log.info("SIGHUP: reloading credentials")
        task = asyncio.create_task(self.reload_credentials())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def request_stop(self) -> None:
        if not self._stop_requested.is_set():
            log.info("stop requested: closing intake, draining")
            self._stop_requested.set()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT (or `request_stop()`), then stop cleanly."""
        await self.start()
        try:
            self.install_signal_handlers()
            await self._stop_requested.wait()
        finally:
            await self.stop()

    async def stop(self) -> None:
        """Stop intake, drain, cancel open orders if configured, stop the Engine (flushing the journal),
        release everything. Safe on a worker that did not finish starting."""
        self.status = "draining"
        self.metrics.up.set(0)
        if self._webhook_runner is not None:
            await self._webhook_runner.cleanup()  # no new signals; requests in progress finish first
            self._webhook_runner = None
        drained = True
        if self.intake is not None:
            drained = await self.intake.drain(self.config.worker.drain_timeout_s)
        if self._sampler is not None:
            self._sampler.cancel()
            await asyncio.gather(self._sampler, return_exceptions=True)
            self._sampler = None
        for task in list(self._background):
            await asyncio.gather(task, return_exceptions=True)
        engine = self.engine
        if engine is not None:
            if self.config.worker.cancel_open_orders_on_exit and not self.dry_run:
                await self._cancel_open_orders(engine)
            await engine.stop()
            self.engine = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._key is not None:
            _close(self._key)
        for redis in self._redis:
            await redis.aclose()
        self._redis.clear()
        self.status = "stopped"
        if self._ops is not None:
            await self._ops.stop()
            self._ops = None
        log.info("worker stopped%s", "" if drained else " (drain timed out)")

    async def _cancel_open_orders(self, engine: Engine) -> None:
        try:
            cancelled = await engine.cancel_all()
        except (EngineError, OSError, TimeoutError) as exc:
            log.error("cancelling open orders on exit failed: %s", type(exc).__name__)
            return
        self.stats.cancelled_on_exit += cancelled
        self.metrics.cancels.labels(reason="shutdown").inc(cancelled)
        log.info("cancelled %d open orders on exit", cancelled)


async def _serve(runner: web.AppRunner, host: str, port: int) -> tuple[web.AppRunner, str]:
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = port
    server = site._server  # aiohttp keeps the listening socket here; needed to report an ephemeral port
    with contextlib.suppress(AttributeError, IndexError):
        bound = int(server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    return runner, f"http://{host}:{bound}"
