"""Signal intake on a Redis stream: any worker takes any signal, each signal executed once.

Producers (`SignalStream.submit`, e.g. the webhook) `XADD` a signal with an approximate `MAXLEN` cap. Workers
(`StreamConsumer`) read through one consumer group with `XREADGROUP ... BLOCK`, so each entry is delivered to
one of them; delivery is at least once, and execution is made once by three locks in depth:

1. a *claim* per signal id, taken in one Lua script before executing (`{ns}:signal:<id>`, a hash: owner,
   attempts, state, outcome). A second entry for a claimed signal is acknowledged as a duplicate, unrun;
2. the outcome is recorded in that hash and the entry `XACK`ed in ONE script, so an entry is acknowledged only
   once its outcome is durable, and an outcome never goes unacknowledged;
3. the order's `client_order_id` is derived from the signal id, so Coinbase itself returns the existing order
   should an order be sent twice.

A worker that dies leaves its entries pending. Every `reclaim_every_s` each worker runs `XAUTOCLAIM` for
entries idle longer than `min_idle_ms` and *resumes* them: the claim is taken over, the order is looked up
by its `client_order_id` (the dead worker may have placed it) and only placed if it is not there. After
`max_attempts` the signal is recorded as failed and acknowledged, for an operator to look at.

Keys share the hash tag `{namespace}`, so the scripts also run on a Redis Cluster. Ops note: pending entries
trimmed by `MAXLEN` are lost, so size `maxlen` well above the backlog you ever expect, and turn on AOF
(`appendonly yes`) if signals must survive a Redis restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from engine.redis_conn import ProbeBackoff, RedisError, ResponseError
from engine.signals.execution import Executor, OutcomeStatus, Recoverer, SignalOutcome
from engine.signals.intake import IntakeFull
from engine.signals.model import (
    InvalidSignal,
    Signal,
    declared_signal_id,
    parse_signal,
    signal_client_order_id,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["SignalStream", "StreamConsumer", "stream_keys"]

log = logging.getLogger("engine.signals.stream")

_FIELD = b"signal"
_DAY_MS = 24 * 3600 * 1000

# KEYS[1] the signal's claim hash. ARGV: consumer, ttl ms, resuming (0/1).
# Returns {verdict, detail}: done (detail = outcome json), duplicate (owner), new, resume (attempt number).
_CLAIM = """
if redis.call('HGET', KEYS[1], 'state') == 'done' then
  return {'done', redis.call('HGET', KEYS[1], 'outcome')}
end
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'state', 'claimed', 'attempts', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'new', '1'}
end
if ARGV[3] == '0' then
  return {'duplicate', owner}
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return {'resume', tostring(attempts)}
"""

# KEYS[1] the claim hash, KEYS[2] the stream. ARGV: group, entry id, outcome json, ttl ms, consumer.
_RECORD = """
redis.call('HSET', KEYS[1], 'state', 'done', 'outcome', ARGV[3], 'owner', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
"""


def stream_keys(namespace: str) -> tuple[str, str]:
    """(stream key, claim key prefix) for a namespace."""
    return f"{{{namespace}}}:signals", f"{{{namespace}}}:signal:"


class SignalStream:
    """The producer side: a `SignalSink` that appends accepted signals to the stream."""

    __slots__ = ("_redis", "key", "maxlen", "published")

    def __init__(self, redis: aioredis.Redis, *, namespace: str = "engine", maxlen: int = 100_000) -> None:
        self._redis = redis
        self.key = stream_keys(namespace)[0]
        self.maxlen = maxlen
        self.published = 0

    async def submit(self, signal: Signal) -> str:
        try:
            entry_id = await self._redis.xadd(
                self.key, {_FIELD: signal.to_json()}, maxlen=self.maxlen, approximate=True
            )
        except RedisError as exc:
            raise IntakeFull(f"the signal stream is unreachable ({type(exc).__name__})") from None
        self.published += 1
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class StreamConsumer:
    """One worker's reader of the signal stream. `await consumer.run()` until `consumer.stop()`.

    `execute` settles a signal (see `engine.signals.execution`); `recover`, when given, looks a resumed
    signal's order up before it is placed again. The Redis client's socket timeout must exceed `block_ms`
    (`engine.redis_conn.connect(settings, extra_timeout_s=block_ms / 1000)`).

    Counters, as plain attributes: executed, resumed, recovered, duplicates, failed, retried, invalid,
    reclaimed, redis_errors, groups_recreated.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        execute: Executor,
        *,
        consumer: str,
        recover: Recoverer | None = None,
        namespace: str = "engine",
        group: str = "workers",
        concurrency: int = 8,
        block_ms: int = 1000,
        min_idle_ms: int = 30_000,
        reclaim_every_s: float | None = None,
        max_attempts: int = 5,
        claim_ttl_ms: int = 7 * _DAY_MS,
    ) -> None:
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts must be at least 1")
        self._redis = redis
        self._execute = execute
        self._recover = recover
        self.consumer = consumer
        self.group = group
        self.stream, self._claim_prefix = stream_keys(namespace)
        self.concurrency = concurrency
        self.block_ms = block_ms
        self.min_idle_ms = min_idle_ms
        self.reclaim_every_s = reclaim_every_s if reclaim_every_s is not None else min_idle_ms / 2000
        self.max_attempts = max_attempts
        self.claim_ttl_ms = claim_ttl_ms
        self._claim = redis.register_script(_CLAIM)
        self._record = redis.register_script(_RECORD)
        self._tasks: dict[asyncio.Task[None], Any] = {}  # in flight -> its entry id
        self._stopping = asyncio.Event()
        self._backoff = ProbeBackoff(0.05, 1.0)
        self._reclaim_cursor = "0-0"
        self.executed = 0
        self.resumed = 0
        self.recovered = 0
        self.duplicates = 0
        self.failed = 0
        self.retried = 0
        self.invalid = 0
        self.reclaimed = 0
        self.redis_errors = 0
        self.groups_recreated = 0

    def __repr__(self) -> str:
        return f"StreamConsumer(stream={self.stream!r}, group={self.group!r}, consumer={self.consumer!r})"

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; a new group starts at the beginning."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def stop(self) -> None:
        """Stop taking entries; `run` returns once the signals in flight are settled."""
        self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        own_pending_checked = False
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            while not self._stopping.is_set():
                try:
                    if not own_pending_checked:
                        await self.ensure_group()
                        # Entries this consumer name took before a restart: finish them first.
                        await self._dispatch(await self._read("0"), resuming=True)
                        own_pending_checked = True
                    if loop.time() >= next_reclaim:
                        await self.reclaim()
                        next_reclaim = loop.time() + self.reclaim_every_s
                    await self._dispatch(await self._read(">"), resuming=False)
                    self._backoff.reset()
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    log.warning(
                        "signal stream group %s missing (Redis restarted empty?): recreating", self.group
                    )
                    own_pending_checked = False
                    self.groups_recreated += 1
                except RedisError as exc:
                    await self._redis_down(exc)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _heartbeat(self) -> None:
        """Keep the entries this worker is executing from looking idle (they may wait long for the rate
        limiter), so peers reclaim only a dead worker's entries: `XCLAIM` to itself with `JUSTID` resets
        their idle time without delivering them again."""
        while True:
            await asyncio.sleep(self.min_idle_ms / 3000)
            entry_ids = list(self._tasks.values())
            if not entry_ids:
                continue
            try:
                await self._redis.xclaim(self.stream, self.group, self.consumer, 0, entry_ids, justid=True)
            except RedisError as exc:
                self.redis_errors += 1
                log.warning("could not refresh %d signals in flight (%s)", len(entry_ids), type(exc).__name__)

    async def reclaim(self) -> int:
        """Take over entries idle longer than `min_idle_ms` (a dead or stuck worker's) and resume them."""
        taken = 0
        while not self._stopping.is_set():
            reply: Any = await self._redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                self.min_idle_ms,
                start_id=self._reclaim_cursor,
                count=self.concurrency,
            )
            cursor, entries = reply[0], reply[1]
            self._reclaim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
            live = [(entry_id, fields) for entry_id, fields in entries if fields]
            if len(live) < len(entries):
                log.error(
                    "signal stream: %d pending entries were trimmed before they ran", len(entries) - len(live)
                )
            if live:
                log.warning("reclaimed %d signal(s) idle over %d ms", len(live), self.min_idle_ms)
            taken += len(live)
            self.reclaimed += len(live)
            await self._dispatch(live, resuming=True)
            if self._reclaim_cursor == "0-0":
                break
        return taken

    async def _read(self, start: str) -> list[tuple[Any, dict[bytes, bytes]]]:
        # Block only for as many entries as there are free slots, so nothing read waits unstarted.
        free = self.concurrency - len(self._tasks)
        if free <= 0:
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            return []
        reply: Any = await self._redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: start},
            count=free,
            block=None if start == "0" else self.block_ms,
        )
        if not reply:
            return []
        entries: list[tuple[Any, dict[bytes, bytes]]] = reply[0][1]
        return [(entry_id, fields) for entry_id, fields in entries if fields]

    async def _dispatch(self, entries: list[tuple[Any, dict[bytes, bytes]]], *, resuming: bool) -> None:
        for entry_id, fields in entries:
            task = asyncio.create_task(self._settle(entry_id, fields, resuming))
            self._tasks[task] = entry_id
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("signal task failed unexpectedly", exc_info=task.exception())

    async def _settle(self, entry_id: Any, fields: dict[bytes, bytes], resuming: bool) -> None:
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        try:
            signal = parse_signal(fields.get(_FIELD, b""))
        except InvalidSignal as exc:
            # Only a producer bypassing validation (or an older version's) can put this here; it can never
            # run, so it is settled as failed under its id when it has one, and dropped loudly otherwise.
            self.invalid += 1
            log.error("signal stream entry %s is not a valid signal (%s): dropped", entry, exc)
            await self._settle_invalid(entry, declared_signal_id(fields.get(_FIELD, b"")), exc)
            return
        claim_key = self._claim_prefix + signal.id
        try:
            verdict, detail = await self._claim(
                keys=[claim_key], args=[self.consumer, self.claim_ttl_ms, 1 if resuming else 0]
            )
        except RedisError as exc:
            self.redis_errors += 1
            log.warning("could not claim signal %s (%s); it stays pending", signal.id, type(exc).__name__)
            return
        verdict = verdict.decode() if isinstance(verdict, bytes) else str(verdict)
        if verdict in ("done", "duplicate"):
            self.duplicates += 1
            log.info("signal %s (entry %s) already %s: acknowledged unrun", signal.id, entry, verdict)
            await self._ack(entry)
            return
        attempt = int(detail)
        try:
            outcome = await self._run(signal, resuming=verdict == "resume", attempt=attempt)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the executor's "not settled": leave it pending for a later attempt
            self.retried += 1
            log.warning(
                "signal %s attempt %d not settled (%s: %s); it will be retried after %d ms idle",
                signal.id,
                attempt,
                type(exc).__name__,
                exc,
                self.min_idle_ms,
            )
            return
        await self._record_outcome(claim_key, entry, outcome)

    async def _settle_invalid(self, entry: str, signal_id: str | None, error: InvalidSignal) -> None:
        """Record an invalid entry as failed under the id it declares, unless that id is settled or claimed
        already (an invalid entry never overwrites a real signal's outcome)."""
        if signal_id is None:
            await self._ack(entry)
            return
        claim_key = self._claim_prefix + signal_id
        try:
            verdict, _ = await self._claim(keys=[claim_key], args=[self.consumer, self.claim_ttl_ms, 0])
        except RedisError as exc:
            self.redis_errors += 1
            log.warning("could not claim signal %s (%s); it stays pending", signal_id, type(exc).__name__)
            return
        if (verdict.decode() if isinstance(verdict, bytes) else str(verdict)) != "new":
            await self._ack(entry)
            return
        coid = signal_client_order_id(signal_id)
        failed = SignalOutcome(signal_id, OutcomeStatus.FAILED, coid, reason=f"invalid: {error}")
        await self._record_outcome(claim_key, entry, failed)

    async def _run(self, signal: Signal, *, resuming: bool, attempt: int) -> SignalOutcome:
        if resuming:
            self.resumed += 1
            if attempt > self.max_attempts:
                self.failed += 1
                log.error(
                    "signal %s not settled after %d attempts: recorded as failed", signal.id, attempt - 1
                )
                return SignalOutcome(
                    signal.id, OutcomeStatus.FAILED, signal.client_order_id(), reason="retry budget spent"
                )
            if self._recover is not None:
                found = await self._recover(signal)
                if found is not None:
                    self.recovered += 1
                    return found
        outcome = await self._execute(signal)
        self.executed += 1
        return outcome

    async def _record_outcome(self, claim_key: str, entry: str, outcome: SignalOutcome) -> None:
        last: RedisError | None = None
        for _ in range(3):
            try:
                await self._record(
                    keys=[claim_key, self.stream],
                    args=[self.group, entry, outcome.to_json(), self.claim_ttl_ms, self.consumer],
                )
                return
            except RedisError as exc:
                self.redis_errors += 1
                await asyncio.sleep(self._backoff.next_delay())
                last = exc
        # Unrecorded, the entry stays pending; its resumption will find the order by its client_order_id.
        log.error(
            "could not record the outcome of signal %s (%s); it stays pending", outcome.signal_id, repr(last)
        )

    async def _ack(self, entry: str) -> None:
        with contextlib.suppress(RedisError):
            await self._redis.xack(self.stream, self.group, entry)

    async def _redis_down(self, exc: RedisError) -> None:
        self.redis_errors += 1
        delay = self._backoff.next_delay()
        log.warning("signal stream unreachable (%s): retrying in %.2f s", type(exc).__name__, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
