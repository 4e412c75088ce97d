"""Signal intake on a Redis stream, against a real redis-server and the simulator through a real
`engine.Client`: every signal becomes exactly one order, duplicates are acknowledged unrun, a dead worker's
pending entries are resumed by looking the order up first, unsettled signals are retried, then failed."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import redis.asyncio as aioredis

from engine.redis_conn import RedisSettings, connect
from engine.signals.execution import ClientExecutor, OutcomeStatus, SignalOutcome
from engine.signals.model import Signal, parse_signal
from engine.signals.stream import SignalStream, StreamConsumer, stream_keys
from tests.scaleout.redis_server import RedisServer
from tests.signals.conftest import SimVenue

NS = "t"


def market_signal(n: int) -> Signal:
    return parse_signal(
        orjson.dumps(
            {
                "id": f"sig-{n}",
                "product_id": "BTC-USD",
                "side": "BUY",
                "order_type": "market",
                "quote_size": "5",
            }
        )
    )


def consumer(
    client: aioredis.Redis, venue: SimVenue, name: str, **kwargs: object
) -> tuple[StreamConsumer, ClientExecutor]:
    executor = ClientExecutor(venue.client)
    options: dict[str, object] = {"block_ms": 100, "min_idle_ms": 200, "reclaim_every_s": 0.1} | kwargs
    return (
        StreamConsumer(
            client,
            executor,
            consumer=name,
            recover=executor.recover,
            namespace=NS,
            **options,  # type: ignore[arg-type]
        ),
        executor,
    )


async def run_until(consumers: list[StreamConsumer], done: Callable[[], Awaitable[bool]]) -> None:
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        async with asyncio.timeout(20):
            while not await done():
                await asyncio.sleep(0.02)
    finally:
        for c in consumers:
            c.stop()
        await asyncio.gather(*tasks)


async def pending(client: aioredis.Redis) -> int:
    summary = await client.xpending(stream_keys(NS)[0], "workers")
    return int(summary["pending"])


async def outcome_of(client: aioredis.Redis, signal: Signal) -> SignalOutcome | None:
    raw = await client.hget(stream_keys(NS)[1] + signal.id, "outcome")
    return None if raw is None else SignalOutcome.from_json(raw)


async def test_two_workers_place_each_signal_once(
    redis_settings: RedisSettings, redis_client: aioredis.Redis, venue: SimVenue
) -> None:
    stream = SignalStream(redis_client, namespace=NS)
    workers = [consumer(connect(redis_settings, extra_timeout_s=0.2), venue, f"w{i}")[0] for i in range(2)]
    await workers[0].ensure_group()
    signals = [market_signal(n) for n in range(30)]
    for s in signals:
        await stream.submit(s)

    async def all_settled() -> bool:
        return sum(w.executed for w in workers) >= len(signals) and await pending(redis_client) == 0

    await run_until(workers, all_settled)
    for s in signals:
        assert len(venue.orders_for(s.client_order_id())) == 1
        outcome = await outcome_of(redis_client, s)
        assert outcome is not None
        assert outcome.status is OutcomeStatus.PLACED
    assert len(venue.sim.ledger.entries()) == len(signals)
    assert all(w.executed > 0 for w in workers)  # both took a share


async def test_a_duplicate_entry_is_acknowledged_unrun(redis_client: aioredis.Redis, venue: SimVenue) -> None:
    stream = SignalStream(redis_client, namespace=NS)
    worker, _ = consumer(redis_client, venue, "w")
    await worker.ensure_group()
    s = market_signal(1)
    await stream.submit(s)
    await stream.submit(s)

    async def settled() -> bool:
        return worker.executed + worker.duplicates == 2 and await pending(redis_client) == 0

    await run_until([worker], settled)
    assert worker.executed == 1
    assert worker.duplicates == 1
    assert len(venue.orders_for(s.client_order_id())) == 1


async def test_dead_workers_entries_are_resumed_without_replacing(
    redis_client: aioredis.Redis, venue: SimVenue
) -> None:
    stream = SignalStream(redis_client, namespace=NS)
    survivor, _ = consumer(redis_client, venue, "survivor")
    await survivor.ensure_group()
    placed, unplaced = market_signal(1), market_signal(2)
    await stream.submit(placed)
    await stream.submit(unplaced)
    # A worker reads both entries, claims both, places the first order, and dies before recording anything.
    entries = await redis_client.xreadgroup("workers", "dead", {stream.key: ">"}, count=10)
    assert len(entries[0][1]) == 2
    for s in (placed, unplaced):
        verdict = await survivor._claim(keys=[stream_keys(NS)[1] + s.id], args=["dead", 60_000, 0])
        assert verdict[0] == b"new"
    await ClientExecutor(venue.client)(placed)
    assert len(venue.sim.ledger.entries()) == 1

    async def settled() -> bool:
        return survivor.reclaimed == 2 and await pending(redis_client) == 0

    await run_until([survivor], settled)
    assert survivor.reclaimed == 2
    assert survivor.recovered == 1  # found on the exchange, not placed again
    assert survivor.executed == 1  # the one the dead worker never sent
    for s in (placed, unplaced):
        assert len(venue.orders_for(s.client_order_id())) == 1
    assert len(venue.sim.ledger.entries()) == 2


async def test_unsettled_signal_is_retried_after_idle(redis_client: aioredis.Redis, venue: SimVenue) -> None:
    stream = SignalStream(redis_client, namespace=NS)
    worker, _ = consumer(redis_client, venue, "w")
    await worker.ensure_group()
    venue.sim.faults.update({"error_5xx_rate": 1.0})
    s = market_signal(1)
    await stream.submit(s)
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(20):
            while worker.retried == 0:
                await asyncio.sleep(0.02)
            assert len(venue.sim.ledger.entries()) == 0
            venue.sim.faults.clear()
            while await pending(redis_client):
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await task
    assert len(venue.orders_for(s.client_order_id())) == 1
    outcome = await outcome_of(redis_client, s)
    assert outcome is not None
    assert outcome.status is OutcomeStatus.PLACED


async def test_retry_budget_spent_is_recorded_as_failed(
    redis_client: aioredis.Redis, venue: SimVenue
) -> None:
    stream = SignalStream(redis_client, namespace=NS)
    worker, _ = consumer(redis_client, venue, "w", max_attempts=2)
    await worker.ensure_group()
    venue.sim.faults.update({"error_5xx_rate": 1.0})
    s = market_signal(1)
    await stream.submit(s)

    async def settled() -> bool:
        return worker.failed == 1 and await pending(redis_client) == 0

    await run_until([worker], settled)
    outcome = await outcome_of(redis_client, s)
    assert outcome is not None
    assert outcome.status is OutcomeStatus.FAILED
    assert venue.sim.ledger.entries() == []


async def test_an_invalid_entry_is_settled_as_failed_under_its_id(
    redis_client: aioredis.Redis, venue: SimVenue
) -> None:
    first_worker, _ = consumer(redis_client, venue, "w1")
    await first_worker.ensure_group()
    settled_first = market_signal(1)
    await SignalStream(redis_client, namespace=NS).submit(settled_first)

    async def first_settled() -> bool:
        return await outcome_of(redis_client, settled_first) is not None

    await run_until([first_worker], first_settled)
    key = stream_keys(NS)[0]
    await redis_client.xadd(key, {b"signal": b'{"id": "x"}'})
    gtd = {"id": "off-calendar", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit", "size": "1",
           "limit_price": "1", "time_in_force": "GTD", "end_time": "0001-01-01T00:00:00+14:00"}  # fmt: skip
    await redis_client.xadd(key, {b"signal": orjson.dumps(gtd)})
    await redis_client.xadd(key, {b"signal": b"not json"})
    # an invalid entry under a settled signal's id: acknowledged, the outcome left as it was
    await redis_client.xadd(key, {b"signal": b'{"id": "sig-1", "size": "1E+999999"}'})
    worker, _ = consumer(redis_client, venue, "w2")

    async def settled() -> bool:
        return await pending(redis_client) == 0 and worker.invalid == 4

    await run_until([worker], settled)
    for signal_id, field in (("x", "product_id"), ("off-calendar", "end_time")):
        raw = await redis_client.hget(stream_keys(NS)[1] + signal_id, "outcome")
        assert raw is not None
        outcome = SignalOutcome.from_json(raw)
        assert outcome.status is OutcomeStatus.FAILED
        assert outcome.reason.startswith(f"invalid: {field}:"), outcome.reason
    first = await outcome_of(redis_client, settled_first)
    assert first is not None
    assert first.status is OutcomeStatus.PLACED


async def test_survives_a_redis_restart(
    redis_server: RedisServer, redis_settings: RedisSettings, venue: SimVenue
) -> None:
    client = connect(redis_settings, extra_timeout_s=0.2)
    try:
        worker, _ = consumer(client, venue, "w")
        stream = SignalStream(client, namespace=NS)
        await worker.ensure_group()
        task = asyncio.create_task(worker.run())
        try:
            async with asyncio.timeout(20):
                await stream.submit(market_signal(1))
                while worker.executed < 1:
                    await asyncio.sleep(0.02)
                redis_server.restart()  # persistence off: the stream and its group are gone
                while True:  # the producer retries until Redis takes it, as the webhook's sender would on 503
                    try:
                        await stream.submit(market_signal(2))
                        break
                    except Exception:
                        await asyncio.sleep(0.05)
                while worker.executed < 2:
                    await asyncio.sleep(0.02)
        finally:
            worker.stop()
            await task
    finally:
        await client.aclose()
    assert worker.redis_errors + worker.groups_recreated >= 1
    assert len(venue.sim.ledger.entries()) == 2
