"""/healthz and /metrics: status codes, content, isolation between registries, no secret on either page."""

from __future__ import annotations

import aiohttp

from engine.ops.http import Health, OpsServer
from engine.ops.metrics import EngineMetrics, LatencySamples
from tests.support.leaks import observe


async def test_healthz_and_metrics_pages() -> None:
    metrics = EngineMetrics()
    metrics.orders.labels(outcome="acknowledged").inc(3)
    metrics.refusals.labels(rule="order_size").inc()
    metrics.observe_counter("rate_limited", "429s", lambda: 2)
    metrics.observe_gauge("premint_pool_depth", "Tokens minted ahead", lambda: 7)
    metrics.observe_counter("websocket_gaps", "Sequence gaps", lambda: 1)
    metrics.observe_gauge("broken_source", "A source that raises", lambda: 1 / 0)
    health = Health(ok=True, status="ok", checks={"key": True})
    server = OpsServer(metrics, lambda: health, host="127.0.0.1", port=0)
    await server.start()
    try:
        assert server.port != 0
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/healthz") as response:
                assert response.status == 200
                body = await response.json()
                assert body == {"ok": True, "status": "ok", "checks": {"key": True}}
            health = Health(ok=False, status="draining")
            async with session.get(f"{server.url}/healthz") as response:
                assert response.status == 503
                assert (await response.json())["status"] == "draining"
            async with session.get(f"{server.url}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                page = await response.text()
    finally:
        await server.stop()
    observe(page, "/metrics")
    assert 'engine_orders_total{outcome="acknowledged"} 3.0' in page
    assert 'engine_risk_refusals_total{rule="order_size"} 1.0' in page
    assert "engine_rate_limited_total 2.0" in page
    assert "engine_premint_pool_depth 7.0" in page
    assert "engine_websocket_gaps_total 1.0" in page
    assert "engine_broken_source NaN" in page


def test_each_worker_has_its_own_registry() -> None:
    first, second = EngineMetrics(), EngineMetrics()
    first.fills.inc()
    assert first.value("engine_fills_total") == 1
    assert second.value("engine_fills_total") == 0
    first.refusals.labels(rule="price_band").inc(2)
    assert first.labelled("engine_risk_refusals_total", "rule") == {"price_band": 2.0}


def test_latency_percentiles_nearest_rank() -> None:
    samples = LatencySamples()
    assert samples.percentiles() == {}
    for ms in range(1, 101):
        samples.add(ms / 1000)
    assert len(samples) == 100
    assert samples.percentiles((0.5, 0.99, 1.0)) == {0.5: 0.05, 0.99: 0.099, 1.0: 0.1}
    small = LatencySamples(capacity=10, seed=1)
    for ms in range(1000):
        small.add(ms)
    assert len(small) == 1000
    assert len(small.percentiles((0.5,))) == 1
