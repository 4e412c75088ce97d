"""One signal through the trading core: the worker's executor, the same for the webhook queue and the stream.

`SignalExecutor(engine, ...)` is an `engine.signals.execution.Executor` over `engine.trading.Engine`: the
order takes the Engine's whole path (risk gate and audit, journal intent, the venue's submit, tracking on
the user channel), on whichever venue the Engine trades. Its `client_order_id` is derived from the signal
id (a UUID derived from it on Coinbase Exchange), so a signal is one order at most:

- before placing, the executor asks the Engine whether that `client_order_id` was used before, in this run
  (`engine.orders`) or an earlier one (`engine.journalled`), and if so answers with what became of it. An
  intent journalled before a crash was resolved by the Engine's start-up reconciliation (looked up by
  `client_order_id`); one that never reached the exchange is NOT_PLACED and is not sent again blindly;
- `recover` (for a signal the stream hands over again) does the same, then looks the order up on the
  exchange, where a peer worker may have placed it.

The contract of `engine.signals.execution`: a settled signal returns a `SignalOutcome`; an unsettled one
(the outcome is unknown, the exchange unreachable) raises, and the Engine resolves the order in the
background while the stream retries the signal later.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.errors import AuthError, EngineError, ExchangeError, OrderRejected, OutcomeUnknown
from engine.ops.metrics import EngineMetrics, LatencySamples
from engine.risk import OrderRefused
from engine.signals.execution import OutcomeStatus, SignalOutcome
from engine.signals.model import Signal
from engine.trading.engine import Engine
from engine.trading.order_state import OrderState

__all__ = ["SignalExecutor", "WorkerStats"]

log = logging.getLogger("engine.worker")
# the namespace of UUID client order ids derived from signals (uuid5 of the signal's own id)
_SIGNAL_NAMESPACE = uuid.UUID("3b6a2f0e-8c1d-5e7a-9b4c-2d1f6e8a0c5b")


@dataclass
class WorkerStats:
    """What a run did, for the demo's summary and for tests."""

    signal_to_ack: LatencySamples = field(default_factory=LatencySamples)
    order_request: LatencySamples = field(default_factory=LatencySamples)
    cancelled_on_exit: int = 0
    duplicates: int = 0


class SignalExecutor:
    """Signal -> `Engine.submit` -> `SignalOutcome`, every outcome logged and counted."""

    def __init__(
        self,
        engine: Engine,
        *,
        prefix: str,
        allows_product: Callable[[str], bool],
        dry_run: bool,
        metrics: EngineMetrics,
        stats: WorkerStats,
    ) -> None:
        self.engine = engine
        self.prefix = prefix
        self.dry_run = dry_run
        self.metrics = metrics
        self.stats = stats
        self.arrivals: dict[
            str, float
        ] = {}  # signal id -> perf_counter() at intake, when this process saw it
        self._allows_product = allows_product

    def client_order_id(self, signal: Signal) -> str:
        """The one client order id this signal may become on the Engine's venue: the signal's own, or on a
        venue that takes only UUIDs (Coinbase Exchange) a UUID derived from it, as deterministic."""
        coid = signal.client_order_id(self.prefix)
        if self.engine.venue.capabilities.uuid_client_order_ids:
            return str(uuid.uuid5(_SIGNAL_NAMESPACE, coid))
        return coid

    def arrived(self, signal: Signal) -> None:
        self.arrivals[signal.id] = time.perf_counter()

    async def __call__(self, signal: Signal) -> SignalOutcome:
        arrived = self.arrivals.pop(signal.id, None)
        coid = self.client_order_id(signal)
        try:
            request = self.engine.venue.order_request(
                signal.product_id, signal.side.value, signal.configuration, client_order_id=coid
            )
        except ValueError as exc:  # an order this venue does not have (Exchange: no GTD, no bracket)
            self.metrics.orders.labels(outcome="rejected").inc()
            log.warning("signal %s: not an order %s takes: %s", signal.id, self.engine.venue.name, exc)
            return SignalOutcome(signal.id, OutcomeStatus.REJECTED, coid, reason=str(exc))
        if not self._allows_product(signal.product_id):
            self.metrics.refusals.labels(rule="product").inc()
            log.warning("signal %s refused: %s is not in [risk].products", signal.id, signal.product_id)
            return SignalOutcome(signal.id, OutcomeStatus.REFUSED, coid, reason="product")
        earlier = await self._earlier(signal, coid)
        if earlier is not None:
            self.stats.duplicates += 1
            self.metrics.orders.labels(outcome="duplicate").inc()
            log.warning(
                "signal %s: order %s was used before (%s); not placing it again",
                signal.id,
                coid,
                earlier.status.value,
            )
            return earlier
        engine = self.engine
        try:
            if self.dry_run:
                engine.check(request)
                self.metrics.orders.labels(outcome="dry_run").inc()
                log.info("dry run: would place %s %s as %s", signal.side.value, signal.product_id, coid)
                return SignalOutcome(signal.id, OutcomeStatus.REFUSED, coid, reason="dry run")
            sent = time.perf_counter()
            tracked = await engine.submit(request)
        except OrderRefused as refused:
            self.metrics.refusals.labels(rule=refused.rule.value).inc()
            log.info("signal %s refused by %s: %s", signal.id, refused.rule.value, refused.detail)
            return SignalOutcome(signal.id, OutcomeStatus.REFUSED, coid, reason=refused.rule.value)
        except OrderRejected as exc:
            self.metrics.orders.labels(outcome="rejected").inc()
            log.warning("signal %s: order %s rejected: %s", signal.id, coid, exc.failure_reason)
            return SignalOutcome(
                signal.id, OutcomeStatus.REJECTED, coid, reason=exc.failure_reason or "REJECTED"
            )
        except OutcomeUnknown:
            self.metrics.orders.labels(outcome="unknown").inc()
            log.error("signal %s: order %s outcome unknown; the engine looks it up", signal.id, coid)
            raise
        except (ExchangeError, OSError, TimeoutError, EngineError) as exc:
            self.metrics.orders.labels(outcome="failed").inc()
            hint = f" ({exc.hint})" if isinstance(exc, AuthError) else ""
            log.error("signal %s: order %s failed: %s%s", signal.id, coid, type(exc).__name__, hint)
            raise
        acked = time.perf_counter()
        self.metrics.orders.labels(outcome="acknowledged").inc()
        self.metrics.order_request.observe(acked - sent)
        self.stats.order_request.add(acked - sent)
        if arrived is not None:
            self.metrics.signal_to_ack.observe(acked - arrived)
            self.stats.signal_to_ack.add(acked - arrived)
        log.info("signal %s: order %s acknowledged as %s", signal.id, coid, tracked.order_id)
        return SignalOutcome(signal.id, OutcomeStatus.PLACED, coid, tracked.order_id)

    async def recover(self, signal: Signal) -> SignalOutcome | None:
        """For a signal handed over again: what became of its order, here or on the exchange; None if it
        was never placed (then it is executed)."""
        coid = self.client_order_id(signal)
        earlier = await self._earlier(signal, coid)
        if earlier is not None:
            return earlier
        order = await self.engine.venue.find_order(coid)
        if order is None:
            return None
        log.info("signal %s was already placed as order %s; not placing it again", signal.id, order.order_id)
        return SignalOutcome(signal.id, OutcomeStatus.PLACED, coid, order.order_id)

    async def _earlier(self, signal: Signal, coid: str) -> SignalOutcome | None:
        """The outcome of this client_order_id's earlier use by this engine; raises while it is unresolved."""
        tracked = self.engine.order(coid)
        if tracked is not None:
            state, order_id, reason = tracked.state, tracked.order_id, tracked.failure_reason
        else:
            entry = await self.engine.journalled(coid)
            if entry is None:
                return None
            state, order_id, reason = entry.state, entry.order_id, entry.failure_reason
        if state.is_unresolved:
            raise OutcomeUnknown(f"order {coid} is still being looked up", client_order_id=coid)
        if state is OrderState.REJECTED:
            return SignalOutcome(signal.id, OutcomeStatus.REJECTED, coid, order_id, reason or "REJECTED")
        if state is OrderState.NOT_PLACED:
            # journalled, never reached the exchange (a crash in between): a stale decision is not resent
            return SignalOutcome(
                signal.id, OutcomeStatus.FAILED, coid, reason="journalled but never placed; not resent"
            )
        return SignalOutcome(signal.id, OutcomeStatus.PLACED, coid, order_id)
