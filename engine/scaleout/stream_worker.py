"""A stream worker: one process taking signals off the shared Redis stream and placing them through
`engine.Client`, under the rate budget it shares with every other worker on the key.

    python -m engine.scaleout.stream_worker --redis-url redis://10.0.0.5:6379/0 --key-file key.json \\
        --base-url https://api.coinbase.com --consumer "$(hostname)-1" --expected-workers 4

It is the smallest complete wiring of the scale-out parts (`RedisRateLimiter` + `StreamConsumer` +
`ClientExecutor`), with no risk controls: ops run `engine worker`, which puts the trading core in front.
SIGTERM or SIGINT stops intake, settles what is in flight and exits 0, printing one JSON line of counters.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

import orjson

from engine.auth import CdpKey
from engine.ratelimit import BucketLimit, RateLimits
from engine.ratelimit.redis_limiter import RedisRateLimiter
from engine.redis_conn import RedisSettings, connect
from engine.rest import Client
from engine.signals.execution import ClientExecutor
from engine.signals.stream import StreamConsumer

__all__ = ["main", "run"]

log = logging.getLogger("engine.scaleout.stream_worker")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine.scaleout.stream_worker", description=__doc__.split("\n")[0]
    )
    p.add_argument("--redis-url", required=True)
    p.add_argument("--namespace", default="engine", help="key prefix shared by every worker of one engine")
    p.add_argument("--key-file", required=True, help="CDP key file (portal JSON: name, privateKey)")
    p.add_argument("--base-url", default=None, help="Coinbase (default) or the simulator")
    p.add_argument(
        "--consumer", required=True, help="this worker's name in the group; stable across restarts"
    )
    p.add_argument("--group", default="workers")
    p.add_argument(
        "--rate", type=float, default=30.0, help="private requests/s for the key, all workers together"
    )
    p.add_argument("--burst", type=float, default=1.0, help="requests the key may send at once")
    p.add_argument("--public-rate", type=float, default=10.0)
    p.add_argument("--expected-workers", type=int, default=1, help="divides the budget when Redis is away")
    p.add_argument("--fallback-fraction", type=float, default=0.7)
    p.add_argument("--concurrency", type=int, default=8, help="signals in flight in this worker")
    p.add_argument("--block-ms", type=int, default=1000)
    p.add_argument("--min-idle-ms", type=int, default=30_000, help="idle time before a peer's entry is taken")
    p.add_argument("--prefix", default="eng", help="client_order_id prefix")
    p.add_argument("--redis-timeout", type=float, default=0.5)
    p.add_argument("--log-level", default="WARNING")
    return p


async def run(args: argparse.Namespace) -> dict[str, int | bool]:
    settings = RedisSettings(url=args.redis_url, timeout_s=args.redis_timeout, namespace=args.namespace)
    limiter_redis = connect(settings)
    stream_redis = connect(settings, extra_timeout_s=args.block_ms / 1000)
    limits = RateLimits(
        private=BucketLimit(args.rate, args.burst), public=BucketLimit(args.public_rate, args.burst)
    )
    limiter = RedisRateLimiter(
        limiter_redis,
        limits,
        namespace=args.namespace,
        expected_workers=args.expected_workers,
        fallback_fraction=args.fallback_fraction,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Client(CdpKey.from_json_file(args.key_file), args.base_url, limiter=limiter) as client:
            executor = ClientExecutor(client, prefix=args.prefix)
            consumer = StreamConsumer(
                stream_redis,
                executor,
                consumer=args.consumer,
                recover=executor.recover,
                namespace=args.namespace,
                group=args.group,
                concurrency=args.concurrency,
                block_ms=args.block_ms,
                min_idle_ms=args.min_idle_ms,
            )
            running = asyncio.create_task(consumer.run())
            print(f"stream worker {args.consumer} ready", flush=True)
            await stop.wait()
            consumer.stop()
            await running
    finally:
        await limiter_redis.aclose()
        await stream_redis.aclose()
    return {
        "executed": consumer.executed,
        "resumed": consumer.resumed,
        "recovered": consumer.recovered,
        "duplicates": consumer.duplicates,
        "retried": consumer.retried,
        "reclaimed": consumer.reclaimed,
        "stream_redis_errors": consumer.redis_errors,
        "limiter_fallback_entered": limiter.fallback_entered,
        "limiter_fallback_recovered": limiter.fallback_recovered,
        "limiter_redis_calls": limiter.redis_calls,
        "rate_limited": limiter.stats().rate_limited,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(created).3f %(levelname)s %(name)s %(message)s",
    )
    try:
        import uvloop
    except ImportError:
        counters = asyncio.run(run(args))
    else:
        counters = uvloop.run(run(args))
    print(orjson.dumps(counters).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
