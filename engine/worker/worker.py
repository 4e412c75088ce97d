"""The headless worker: signals in through the webhook, risk-checked, journalled, placed; stopped cleanly.

Life of a worker:

- `start()`: read the key (environment, file or keyring), open the REST client (measuring the clock offset),
  open the journal and the audit log, load the risk view, then open intake (the webhook) and `/healthz` +
  `/metrics`.
- each accepted signal: `client_order_id` derived from the signal id, the risk gate, the journal's intent
  record (so a crash leaves a trace to reconcile), the order, its outcome journalled. A signal never becomes
  two orders: the replay guard refuses a second delivery, the journal refuses a second intent, and Coinbase
  answers a repeated `client_order_id` with the first order.
- SIGHUP: `reload_credentials()` reads the key again and swaps it in only if it loads and passes a read-only
  call and the permission check; otherwise the old key stays and the failure is logged and counted. The
  swap is a new REST client on the same rate limiter: orders started after it use the new key, orders in
  flight finish on the old client, which is closed when the last of them is done.
- SIGTERM / SIGINT: `stop()` closes intake, drains the queue and what is in flight (up to `drain_timeout_s`),
  cancels the engine's open orders if configured, flushes the journal, and returns; the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from engine.auth import CdpKey
from engine.errors import (
    AuthError,
    ConfigError,
    EngineError,
    ExchangeError,
    KeyFormatError,
    OrderRejected,
    OutcomeUnknown,
)
from engine.ops.config import Config
from engine.ops.credentials import key_label, read_credentials
from engine.ops.http import Health, OpsServer
from engine.ops.logs import register_secret
from engine.ops.metrics import EngineMetrics, LatencySamples
from engine.ratelimit import BucketLimit, LocalRateLimiter, RateLimits
from engine.rest.client import ORDERS, Client
from engine.rest.retry import RetryPolicy
from engine.risk import AuditLog, OrderRefused, OrderTerms, ProductLimits, RiskGate
from engine.risk import RiskConfig as GateConfig
from engine.signals.auth import SignalAuthenticator
from engine.signals.execution import order_request
from engine.signals.intake import SignalQueue
from engine.signals.model import Signal
from engine.signals.replay import LocalReplayGuard
from engine.signals.webhook import SignalWebhook
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.worker.view import ExchangeRiskView

__all__ = ["Worker", "WorkerStats", "gate_config"]

log = logging.getLogger("engine.worker")
_CANCEL_BATCH = 100


@dataclass
class WorkerStats:
    """What a run did, for the demo's summary and for tests."""

    signal_to_ack: LatencySamples = field(default_factory=LatencySamples)
    order_request: LatencySamples = field(default_factory=LatencySamples)
    cancelled_on_exit: list[str] = field(default_factory=list)
    duplicates: int = 0


def gate_config(config: Config) -> GateConfig:
    """The risk gate's configuration from the worker's `[risk]` table."""
    risk = config.risk

    def limits(caps: Any) -> ProductLimits:
        return ProductLimits(
            max_order_size=caps.max_order_size,
            max_order_notional=caps.max_order_notional,
            max_position=caps.max_position,
            max_allocation=caps.max_allocation,
            max_open_orders=caps.max_open_orders,
        )

    return GateConfig(
        default_limits=limits(risk.default),
        products={product_id: limits(caps) for product_id, caps in risk.per_product.items()},
        max_open_orders=risk.max_open_orders,
        price_band=risk.price_band,
        max_orders=risk.max_orders_per_window,
        rate_window=risk.order_window_s,
        breaker_failures=risk.breaker_failures,
        breaker_window=risk.breaker_window_s,
        breaker_pause=risk.breaker_pause_s,
        daily_loss_limit=risk.daily_loss_limit,
    )


class _TimedSink:
    """The webhook's sink: notes each signal's arrival time, then queues it."""

    def __init__(self, queue: SignalQueue, arrivals: dict[str, float]) -> None:
        self._queue = queue
        self._arrivals = arrivals

    async def submit(self, signal: Signal) -> str:
        self._arrivals[signal.id] = time.perf_counter()
        try:
            return await self._queue.submit(signal)
        except BaseException:
            self._arrivals.pop(signal.id, None)
            raise


class Worker:
    """One worker's engine. `dry_run` overrides `[worker].dry_run`; `environ` the process environment."""

    def __init__(
        self,
        config: Config,
        *,
        environ: Mapping[str, str] | None = None,
        dry_run: bool | None = None,
        metrics: EngineMetrics | None = None,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.config = config
        self.dry_run = config.worker.dry_run if dry_run is None else dry_run
        self._environ = environ
        self.metrics = metrics or EngineMetrics()
        self.stats = WorkerStats()
        self.poll_interval_s = poll_interval_s
        self.status = "starting"
        self.webhook_url = ""
        self.ops_url = ""
        self._key: CdpKey | None = None
        self._client: Client | None = None
        self._limiter: LocalRateLimiter | None = None
        self._rotations = 0
        self._client_users: dict[int, int] = {}  # id(client) -> signals using it right now
        self._released = asyncio.Condition()
        self._journal: OrderJournal | None = None
        self._audit: AuditLog | None = None
        self._gate: RiskGate | None = None
        self._view: ExchangeRiskView | None = None
        self._queue = SignalQueue(config.signals.queue_size)
        self._arrivals: dict[str, float] = {}
        self._webhook: SignalWebhook | None = None
        self._webhook_runner: web.AppRunner | None = None
        self._ops: OpsServer | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._poller: asyncio.Task[None] | None = None
        self._busy = 0
        self._idle = asyncio.Condition()
        self._stop_requested = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    # -- start ------------------------------------------------------------------------------------------

    async def start(self) -> None:
        config = self.config
        if config.signals.redis_url is not None:
            raise ConfigError("signals.redis_url: the worker takes signals through the webhook only, for now")
        secret = (self._env().get(config.signals.secret_env) or "").strip()
        if config.signals.webhook and not secret:
            raise ConfigError(
                f"signals.secret_env: the environment variable {config.signals.secret_env} (the webhook's "
                "HMAC secret, at least 16 bytes) is not set"
            )
        register_secret(secret)
        credentials = await asyncio.to_thread(read_credentials, config.credentials, self._environ)
        for warning in credentials.warnings:
            log.warning("%s", warning)
        key = self._key = credentials.signing_key()
        # one limiter for the worker's life, shared by the client of every key it rotates to
        self._limiter = LocalRateLimiter(
            RateLimits(
                private=BucketLimit(config.limits.private_rps, config.limits.private_rps),
                public=BucketLimit(config.limits.public_rps, config.limits.public_rps),
            )
        )
        client = self._client = self._new_client(key)
        await client.open()
        self.metrics.clock_offset.set(client.clock_offset_s)
        self._journal = await asyncio.to_thread(OrderJournal, config.journal.path, config.journal.durability)
        self._audit = AuditLog(config.journal.audit_log)
        self._gate = RiskGate(gate_config(config), self._audit)
        products = config.risk.products or tuple(config.risk.per_product)
        self._view = ExchangeRiskView(client, products, client_order_prefix=config.worker.client_order_prefix)
        self._view.on_fill = self.metrics.fills.inc
        await self._view.start()
        self._bind_metrics()

        for _ in range(config.worker.concurrency):
            self._consumers.append(asyncio.create_task(self._consume()))
        self._poller = asyncio.create_task(self._poll())
        if config.signals.webhook:
            authenticator = SignalAuthenticator([secret], window_s=config.signals.window_s)
            guard = LocalReplayGuard()
            self._webhook = SignalWebhook(authenticator, guard, _TimedSink(self._queue, self._arrivals))
            self._webhook_runner, self.webhook_url = await _serve(
                self._webhook.app, config.signals.host, config.signals.port
            )
        if config.metrics.enabled:
            self._ops = OpsServer(
                self.metrics, self.health, host=config.metrics.host, port=config.metrics.port
            )
            await self._ops.start()
            self.ops_url = self._ops.url
        self.status = "ok"
        self.metrics.up.set(1)
        log.info(
            "worker started: key %s from %s, %s, webhook %s, ops %s%s",
            key_label(credentials.name),
            credentials.origin,
            config.exchange.base_url,
            self.webhook_url or "off",
            self.ops_url or "off",
            " (dry run)" if self.dry_run else "",
        )

    def _new_client(self, key: CdpKey) -> Client:
        return Client(
            key,
            self.config.exchange.base_url,
            timeout_s=self.config.exchange.request_timeout_s,
            limiter=self._limiter,
            retry=RetryPolicy(max_attempts=self.config.limits.max_retries + 1),
        )

    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def _bind_metrics(self) -> None:
        limiter, journal = self._limiter, self._journal
        assert limiter is not None
        assert journal is not None
        self.metrics.observe_counter(
            "rate_limited", "429s from the exchange", lambda: limiter.stats().rate_limited
        )
        self.metrics.observe_counter(
            "limiter_wait_seconds", "Time requests waited on the client-side rate limiter",
            lambda: limiter.stats().wait_total_s,
        )  # fmt: skip
        self.metrics.observe_gauge(
            "premint_pool_depth", "Order tokens minted ahead and ready", self._pool_depth
        )
        self.metrics.observe_gauge(
            "journal_pending", "Order outcomes not yet written to disk", lambda: journal.pending
        )

    def _pool_depth(self) -> float:
        key, client = self._key, self._client
        if key is None or client is None:
            return 0.0
        return float(key.pooled("POST", ORDERS, client.transport.host))

    def _sample_signing(self) -> None:
        """Time one order token from the live key: the signing latency an order pays (pooled or minted)."""
        key, client = self._key, self._client
        if key is None or client is None:
            return
        started = time.perf_counter()
        key.rest_jwt("POST", ORDERS, client.transport.host)
        self.metrics.signing.observe(time.perf_counter() - started)

    def health(self) -> Health:
        gate = self._gate
        killed = gate is not None and gate.kill_switch.engaged
        checks: dict[str, Any] = {
            "key_loaded": self._key is not None,
            "key_rotations": self._rotations,
            "queue_depth": self._queue.depth,
            "in_flight": self._busy,
            "kill_switch": killed,
            "dry_run": self.dry_run,
        }
        ok = self.status == "ok" and not killed and self._key is not None
        return Health(ok, "degraded" if killed else self.status, checks)

    # -- signals to orders ------------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            signal = await self._queue.get()
            self._busy += 1
            self.metrics.in_flight.set(self._busy)
            try:
                await self.execute(signal)
            except Exception:
                log.exception("signal %s: unexpected error", signal.id)
            finally:
                self._busy -= 1
                self.metrics.in_flight.set(self._busy)
                self._queue.task_done()
                self.metrics.queue_depth.set(self._queue.depth)
                async with self._idle:
                    self._idle.notify_all()

    async def execute(self, signal: Signal) -> None:
        """Risk-check, journal and place one signal's order; every outcome is logged and counted."""
        client = self._client
        assert client is not None
        self._client_users[id(client)] = self._client_users.get(id(client), 0) + 1
        try:
            await self._execute(signal, client)
        finally:
            self._client_users[id(client)] -= 1
            async with self._released:
                self._released.notify_all()

    async def _execute(self, signal: Signal, client: Client) -> None:
        gate, view, journal = self._gate, self._view, self._journal
        assert gate is not None
        assert view is not None
        assert journal is not None
        arrived = self._arrivals.pop(signal.id, time.perf_counter())
        request = order_request(signal, self.config.worker.client_order_prefix)
        coid = request.client_order_id
        if not self.config.risk.allows_product(signal.product_id):
            self.metrics.refusals.labels(rule="product").inc()
            log.warning("signal %s refused: %s is not in [risk].products", signal.id, signal.product_id)
            return
        terms = OrderTerms.of(request)
        try:
            gate.check(terms, view)
        except OrderRefused as refused:
            self.metrics.refusals.labels(rule=refused.rule.value).inc()
            log.info("signal %s refused by %s: %s", signal.id, refused.rule.value, refused.detail)
            return
        if self.dry_run:
            self.metrics.orders.labels(outcome="dry_run").inc()
            log.info(
                "dry run: would place %s %s %s as %s",
                signal.side.value,
                signal.product_id,
                terms.base_size,
                coid,
            )
            return
        try:
            journal.record_intent(coid, request.product_id, str(request.side), request.body.decode())
        except sqlite3.IntegrityError:
            # journalled before (a resent signal after a restart): its order exists or is being reconciled
            self.stats.duplicates += 1
            self.metrics.orders.labels(outcome="duplicate").inc()
            log.warning("signal %s: order %s already journalled; not placing it again", signal.id, coid)
            return
        self._reserve(view, coid, terms)
        sent = time.perf_counter()
        try:
            result = await client.submit_order(request)
        except OrderRejected as exc:
            journal.record_outcome(coid, OrderState.REJECTED, failure_reason=exc.failure_reason)
            self.metrics.orders.labels(outcome="rejected").inc()
            gate.record_success()  # the exchange answered: not a reason to trip the breaker
            log.warning("signal %s: order %s rejected: %s", signal.id, coid, exc.failure_reason)
            return
        except OutcomeUnknown:
            self.metrics.orders.labels(outcome="unknown").inc()
            log.error(
                "signal %s: order %s outcome unknown; left in the journal to reconcile", signal.id, coid
            )
            return
        except (ExchangeError, OSError, TimeoutError, EngineError) as exc:
            journal.record_outcome(coid, OrderState.UNKNOWN, failure_reason=type(exc).__name__)
            gate.record_failure(exc)
            self.metrics.orders.labels(outcome="failed").inc()
            hint = f" ({exc.hint})" if isinstance(exc, AuthError) else ""
            log.error("signal %s: order %s failed: %s%s", signal.id, coid, type(exc).__name__, hint)
            return
        finally:
            view.release(coid)
        acked = time.perf_counter()
        journal.record_outcome(coid, OrderState.OPEN, order_id=result.order_id)
        gate.record_success()
        view.order_placed(result.order_id, request.product_id)
        self.metrics.orders.labels(outcome="acknowledged").inc()
        self.metrics.order_request.observe(acked - sent)
        self.metrics.signal_to_ack.observe(acked - arrived)
        self.stats.order_request.add(acked - sent)
        self.stats.signal_to_ack.add(acked - arrived)
        log.info("signal %s: order %s acknowledged as %s", signal.id, coid, result.order_id)

    @staticmethod
    def _reserve(view: ExchangeRiskView, coid: str, terms: OrderTerms) -> None:
        pair = view.currencies(terms.product_id)
        if pair is None:
            return
        base, quote = pair
        if terms.is_buy:
            bid, ask = view.best_bid_ask(terms.product_id)
            amount = terms.notional(bid, ask)
            if amount is not None:
                view.reserve(coid, quote, amount)
        elif terms.base_size is not None:
            view.reserve(coid, base, terms.base_size)

    async def _poll(self) -> None:
        view = self._view
        assert view is not None
        while True:
            await asyncio.sleep(self.poll_interval_s)
            client = view.client
            try:
                await view.refresh()
            except (EngineError, OSError, TimeoutError) as exc:
                log.warning("risk view refresh failed: %s", type(exc).__name__)
            self.metrics.open_orders.set(view.open_order_count())
            self._sample_signing()
            self.metrics.clock_offset.set(client.clock_offset_s)
            self.metrics.queue_depth.set(self._queue.depth)

    # -- rotation ---------------------------------------------------------------------------------------

    async def reload_credentials(self) -> bool:
        """Read the key again; swap it in only if it loads, makes a read-only call and has the permissions."""
        async with self._reload_lock:
            key, client = self._key, self._client
            assert key is not None
            assert client is not None
            candidate: CdpKey | None = None
            try:
                credentials = await asyncio.to_thread(
                    read_credentials, self.config.credentials, self._environ
                )
                candidate = credentials.signing_key()
            except (ConfigError, KeyFormatError) as exc:
                return self._keep_old_key(f"the new key did not load: {exc}")
            try:
                await self._probe(candidate, client)
            except (ExchangeError, OSError, TimeoutError, EngineError) as exc:
                candidate.close()
                detail = f"{exc.diagnosis.value}: {exc.hint}" if isinstance(exc, AuthError) else str(exc)
                return self._keep_old_key(f"the new key failed its check ({type(exc).__name__}: {detail})")
            fresh = self._new_client(candidate)
            try:
                await fresh.open()
            except BaseException:
                await fresh.close()
                candidate.close()
                raise
            self._key, self._client = candidate, fresh
            if self._view is not None:
                self._view.client = fresh
            self._rotations += 1
            self._retire(client, key)
            previous = key_label(key.name)
            self.metrics.key_reloads.labels(result="rotated").inc()
            log.info(
                "credentials rotated: %s -> %s (from %s)",
                previous,
                key_label(candidate.name),
                credentials.origin,
            )
            return True

    def _retire(self, client: Client, key: CdpKey) -> None:
        """Close the previous client and key once no signal is using them."""

        async def retire() -> None:
            async with self._released:
                await self._released.wait_for(lambda: self._client_users.get(id(client), 0) == 0)
            self._client_users.pop(id(client), None)
            await client.close()
            key.close()

        task = asyncio.create_task(retire())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _keep_old_key(self, reason: str) -> bool:
        self.metrics.key_reloads.labels(result="kept_old_key").inc()
        log.error("credential reload refused, keeping the current key: %s", reason)
        return False

    async def _probe(self, candidate: CdpKey, client: Client) -> None:
        """A read-only call and the permission check with the candidate key, on a client of its own."""
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
        """Stop intake, drain, cancel open orders if configured, flush the journal, release everything."""
        self.status = "draining"
        self.metrics.up.set(0)
        if self._webhook_runner is not None:
            await self._webhook_runner.cleanup()  # no new signals; requests in progress finish first
            self._webhook_runner = None
        drained = await self._drain(self.config.worker.drain_timeout_s)
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers.clear()
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        for task in list(self._background):
            await asyncio.gather(task, return_exceptions=True)
        if self.config.worker.cancel_open_orders_on_exit and not self.dry_run:
            await self._cancel_open_orders()
        if self._journal is not None:
            await asyncio.to_thread(self._journal.close)  # flushes queued outcomes first
            self._journal = None
        if self._audit is not None:
            self._audit.close()
            self._audit = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._key is not None:
            self._key.close()
        self.status = "stopped"
        if self._ops is not None:
            await self._ops.stop()
            self._ops = None
        log.info("worker stopped%s", "" if drained else " (drain timed out; unsent signals were dropped)")

    async def _drain(self, timeout_s: float) -> bool:
        async with self._idle:
            try:
                await asyncio.wait_for(
                    self._idle.wait_for(lambda: self._queue.depth == 0 and self._busy == 0), timeout_s
                )
            except TimeoutError:
                log.error("drain timed out with %d queued and %d in flight", self._queue.depth, self._busy)
                return False
        return True

    async def _cancel_open_orders(self) -> None:
        view, client = self._view, self._client
        if view is None or client is None:
            return
        try:
            order_ids = await view.list_own_open_orders()
        except (EngineError, OSError, TimeoutError) as exc:
            log.error("could not list open orders to cancel them: %s", type(exc).__name__)
            return
        for start in range(0, len(order_ids), _CANCEL_BATCH):
            batch = order_ids[start : start + _CANCEL_BATCH]
            try:
                results = await client.cancel_orders(batch)
            except (EngineError, OSError, TimeoutError) as exc:
                log.error("cancelling %d open orders failed: %s", len(batch), type(exc).__name__)
                continue
            for result in results:
                if result.success:
                    self.stats.cancelled_on_exit.append(result.order_id)
                    self.metrics.cancels.labels(reason="shutdown").inc()
                else:
                    log.warning("order %s not cancelled: %s", result.order_id, result.failure_reason)
        log.info("cancelled %d open orders on exit", len(self.stats.cancelled_on_exit))


async def _serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
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
