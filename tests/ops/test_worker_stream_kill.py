"""`engine worker` on Redis-stream intake, SIGKILLed while its orders wait for the exchange's answer: a peer
worker takes the dead worker's pending signals over (XAUTOCLAIM), looks each order up by its client_order_id,
finds it on the exchange and places nothing; every signal is one order on the exchange."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from engine.signals.model import signal_client_order_id
from tests.ops.conftest import RunningSim
from tests.ops.worker_process import WorkerProcess, eventually, metric, post_signal, resting_buy, worker_toml
from tests.scaleout.redis_server import RedisServer
from tests.support.keys import new_es256_key, new_webhook_secret


def stream_worker_toml(base_url: str, redis_url: str, consumer: str) -> str:
    """A worker taking signals from the shared stream, with a journal of its own."""
    signals = f"""redis_url = "{redis_url}"
redis_namespace = "kill"
consumer = "{consumer}"
reclaim_idle_s = 1.0"""
    return worker_toml(base_url, signals=signals, journal=f"{consumer}.sqlite")


async def test_a_peer_takes_over_a_killed_workers_signals_and_places_nothing_twice(
    running_sim: RunningSim, redis_server: RedisServer, tmp_path: Path
) -> None:
    sim = running_sim.sim
    key = new_es256_key()
    sim.register_cdp_key(key.name, key.public_key_pem, {"view", "trade"})
    key.write_portal_file(tmp_path / "cdp_api_key.json")
    webhook_secret = new_webhook_secret()
    configs: dict[str, Path] = {}
    for name in ("a", "b"):
        configs[name] = tmp_path / f"{name}.toml"
        configs[name].write_text(stream_worker_toml(running_sim.base_url, redis_server.url, name))
    mid = sim.markets["BTC-USD"].mid
    in_flight = [f"kill-{i}" for i in range(3)]
    coids = [signal_client_order_id(s) for s in in_flight]

    first = await WorkerProcess.start(configs["a"], webhook_secret)
    try:
        # the exchange takes each order but holds its answer back: the signals stay pending for worker a
        sim.faults.update({"slow_response_rate": 1.0, "slow_response_s": 5.0})
        async with aiohttp.ClientSession() as session:
            for signal_id in in_flight:
                body = resting_buy(signal_id, mid)
                assert await post_signal(session, first.webhook_url, webhook_secret, body) == 202

            async def on_the_exchange() -> bool:
                return set(coids) <= running_sim.ledger().keys()

            await eventually(on_the_exchange)
    finally:
        await first.kill()  # SIGKILL: no drain, no acknowledgement of the stream entries
        sim.faults.clear()

    second = await WorkerProcess.start(configs["b"], webhook_secret)
    try:
        async with aiohttp.ClientSession() as session:

            async def taken_over() -> bool:
                reclaimed = await metric(session, second.ops_url, "engine_signal_stream_reclaimed_total")
                return reclaimed >= len(in_flight)

            await eventually(taken_over)
            body = resting_buy("after", mid)
            assert await post_signal(session, second.webhook_url, webhook_secret, body) == 202

            async def placed() -> bool:
                acked = await metric(session, second.ops_url, 'engine_orders_total{outcome="acknowledged"}')
                return acked == 1  # the new signal; the taken-over ones were found, not placed

            await eventually(placed)
        code = await second.stop()
    finally:
        await second.kill()
    assert code == 0, "\n".join(second.logs.raw[-20:])
    found = [m for m in second.logs.messages() if "was already placed as order" in m]
    assert sorted(m.split()[1] for m in found) == sorted(in_flight)  # each looked up, and found

    ledger = running_sim.ledger()
    assert sorted(ledger) == sorted([*coids, signal_client_order_id("after")])
    for coid in coids:
        assert len(ledger[coid]) == 1, coid  # found and left alone by the peer, never placed again
