"""Where a worker's signals come from, and how many are worked at once: a local queue or a Redis stream.

- `QueueIntake`: the webhook puts accepted signals on a bounded in-process `SignalQueue`; `concurrency` tasks
  take them off and execute them. Every signal taken ends with an outcome, logged and kept in `outcomes`:
  placed, refused or rejected with the reason, or failed with the reason when it could not be settled
  (outcome unknown, exchange unreachable: the order, if any, is the Engine's to resolve) or the executor
  raised something unexpected.
- `StreamIntake`: the webhook (if on) appends to the shared Redis stream, and a `StreamConsumer` reads it
  through the consumer group: any worker can take any signal, an unsettled one is retried, and a dead
  worker's pending signals are reclaimed by a peer, which first looks the order up (`recover`).

Both are stopped with `drain(timeout_s)`: take nothing more, finish what was taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Protocol

from engine.errors import EngineError
from engine.ops.metrics import EngineMetrics
from engine.signals.execution import Executor, OutcomeStatus, Recoverer, SignalOutcome
from engine.signals.intake import SignalQueue, SignalSink
from engine.signals.model import Signal
from engine.signals.stream import SignalStream, StreamConsumer

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["Intake", "QueueIntake", "StreamIntake"]

log = logging.getLogger("engine.worker")


class Intake(Protocol):
    @property
    def sink(self) -> SignalSink:
        """Where the webhook puts the signals it accepts."""
        ...

    @property
    def depth(self) -> int:
        """Signals taken and waiting to be worked."""
        ...

    @property
    def in_flight(self) -> int: ...

    def start(self) -> None: ...

    async def drain(self, timeout_s: float) -> bool:
        """Stop taking signals and finish those taken; False if `timeout_s` ran out first."""
        ...


class QueueIntake:
    """A bounded local queue worked by `concurrency` tasks."""

    def __init__(
        self,
        execute: Executor,
        *,
        queue_size: int,
        concurrency: int,
        metrics: EngineMetrics,
        prefix: str = "eng",
        kept_outcomes: int = 10_000,
    ) -> None:
        self._execute = execute
        self._prefix = prefix
        self._kept_outcomes = kept_outcomes
        self.outcomes: OrderedDict[str, SignalOutcome] = OrderedDict()  # signal id -> outcome, newest last
        self._queue = SignalQueue(queue_size)
        self._concurrency = concurrency
        self._metrics = metrics
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0
        self._idle = asyncio.Condition()

    @property
    def sink(self) -> SignalSink:
        return self._queue

    @property
    def depth(self) -> int:
        return self._queue.depth

    @property
    def in_flight(self) -> int:
        return self._busy

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._concurrency)]

    async def _work(self) -> None:
        while True:
            signal = await self._queue.get()
            self._busy += 1
            self._metrics.in_flight.set(self._busy)
            try:
                try:
                    outcome = await self._execute(signal)
                except asyncio.CancelledError:  # the drain timed out with this one in flight
                    self._record(self._failed(signal, "worker stopped before it was settled"))
                    raise
                except (EngineError, OSError, TimeoutError) as exc:
                    # logged and counted by the executor; the Engine resolves an unknown outcome itself
                    outcome = self._failed(signal, f"not settled: {type(exc).__name__}")
                except Exception as exc:
                    log.exception("signal %s: unexpected error", signal.id)
                    outcome = self._failed(signal, f"unexpected error: {type(exc).__name__}")
                self._record(outcome)
            finally:
                self._busy -= 1
                self._metrics.in_flight.set(self._busy)
                self._queue.task_done()
                self._metrics.queue_depth.set(self._queue.depth)
                async with self._idle:
                    self._idle.notify_all()

    def _failed(self, signal: Signal, reason: str) -> SignalOutcome:
        naming = getattr(self._execute, "client_order_id", None)  # the venue's form (a UUID on Exchange)
        coid = naming(signal) if callable(naming) else signal.client_order_id(self._prefix)
        return SignalOutcome(signal.id, OutcomeStatus.FAILED, coid, reason=reason)

    def _record(self, outcome: SignalOutcome) -> None:
        outcomes = self.outcomes
        outcomes.pop(outcome.signal_id, None)
        outcomes[outcome.signal_id] = outcome
        while len(outcomes) > self._kept_outcomes:
            outcomes.popitem(last=False)
        level = logging.INFO if outcome.status is OutcomeStatus.PLACED else logging.WARNING
        log.log(
            level,
            "signal %s outcome: %s%s",
            outcome.signal_id,
            outcome.status.value,
            f" ({outcome.reason})" if outcome.reason else f" as order {outcome.order_id}",
        )

    async def drain(self, timeout_s: float) -> bool:
        drained = True
        async with self._idle:
            try:
                await asyncio.wait_for(
                    self._idle.wait_for(lambda: self._queue.depth == 0 and self._busy == 0), timeout_s
                )
            except TimeoutError:
                log.error("drain timed out with %d queued and %d in flight", self._queue.depth, self._busy)
                drained = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        return drained


class StreamIntake:
    """The shared Redis stream: this worker is `consumer` in the group."""

    def __init__(
        self,
        redis: aioredis.Redis,
        execute: Executor,
        recover: Recoverer,
        *,
        namespace: str,
        group: str,
        consumer: str,
        concurrency: int,
        min_idle_ms: int,
        max_attempts: int,
        block_ms: int,
    ) -> None:
        self._stream = SignalStream(redis, namespace=namespace)
        self.consumer = StreamConsumer(
            redis,
            execute,
            consumer=consumer,
            recover=recover,
            namespace=namespace,
            group=group,
            concurrency=concurrency,
            block_ms=block_ms,
            min_idle_ms=min_idle_ms,
            max_attempts=max_attempts,
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def sink(self) -> SignalSink:
        return self._stream

    @property
    def depth(self) -> int:
        return 0  # waiting signals stay in Redis until a slot is free

    @property
    def in_flight(self) -> int:
        return self.consumer.in_flight

    def start(self) -> None:
        self._task = asyncio.create_task(self.consumer.run())

    async def drain(self, timeout_s: float) -> bool:
        task = self._task
        if task is None:
            return True
        self.consumer.stop()
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            log.error("drain timed out with %d signals in flight; they stay pending", self.in_flight)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._task = None
        return bool(done)
