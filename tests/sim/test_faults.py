"""Each injected fault is observable from the client's side and in the simulator's own counters."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.sim.conftest import Served

ORDERS = "/api/v3/brokerage/orders"
ACCOUNTS = "/api/v3/brokerage/accounts"


def order(client_order_id: str) -> dict[str, object]:
    return {
        "client_order_id": client_order_id,
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "50000.00"}},
    }


async def set_faults(served: Served, **faults: float) -> dict[str, float]:
    async with served.http.post(served.base_url + "/sim/faults", json=faults) as response:
        assert response.status == 200
        body: dict[str, float] = await response.json()
        return body


async def test_admin_faults_endpoint_updates_and_rejects_unknown_names(served: Served) -> None:
    applied = await set_faults(served, latency_ms=5, jitter_ms=5)
    assert applied["latency_ms"] == 5
    assert served.sim.faults.jitter_ms == 5
    async with served.http.post(served.base_url + "/sim/faults", json={"no_such_fault": 1}) as response:
        assert response.status == 400
    assert (await served.call("GET", ACCOUNTS))[0] == 200
    assert served.sim.injected["latency"] == 1
    async with served.http.post(served.base_url + "/sim/faults", json={"clear": True}) as response:
        assert (await response.json())["latency_ms"] == 0


async def test_5xx_and_429_storm(served: Served) -> None:
    await set_faults(served, error_5xx_rate=1.0)
    status, body = await served.call("POST", ORDERS, order("fault-5xx"))
    assert status == 503
    assert body["error"] == "UNAVAILABLE"
    assert len(served.sim.ledger) == 0  # a 5xx here never took effect
    await set_faults(served, error_5xx_rate=0.0, storm_429_until=time.time() + 60)
    status, body = await served.call("GET", ACCOUNTS)
    assert status == 429
    assert body["error"] == "rate_limit_exceeded"
    assert served.sim.rate_limited_count(served.key.name) == 1
    await set_faults(served, storm_429_until=0.0)
    assert (await served.call("GET", ACCOUNTS))[0] == 200


async def test_drop_after_accept_loses_the_response_but_not_the_order(served: Served) -> None:
    await set_faults(served, drop_after_accept_rate=1.0)
    with pytest.raises(aiohttp.ClientError):
        await served.call("POST", ORDERS, order("dropped-1"))
    await set_faults(served, drop_after_accept_rate=0.0)
    assert served.sim.injected["drop_after_accept"] == 1
    status, listed = await served.call(
        "GET", "/api/v3/brokerage/orders/historical/batch?client_order_id=dropped-1"
    )
    assert status == 200
    assert [o["client_order_id"] for o in listed["orders"]] == ["dropped-1"]
    status, retried = await served.call("POST", ORDERS, order("dropped-1"))  # the retry is idempotent
    assert retried["success_response"]["order_id"] == listed["orders"][0]["order_id"]
    assert len(served.sim.ledger) == 1


async def test_slow_response_outlasts_a_client_timeout_after_taking_effect(served: Served) -> None:
    await set_faults(served, slow_response_rate=1.0, slow_response_s=1.5)
    headers = served.auth("POST", ORDERS)
    with pytest.raises(asyncio.TimeoutError):
        async with served.http.post(
            served.base_url + ORDERS,
            json=order("slow-1"),
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=0.2),
        ) as response:
            await response.read()
    assert served.sim.ledger.by_client_order_id("slow-1") is not None


async def test_clock_offset_moves_server_time_and_judges_tokens_by_it(served: Served) -> None:
    await set_faults(served, clock_offset_s=-600.0)
    async with served.http.get(served.base_url + "/api/v3/brokerage/time") as response:
        server_time = int((await response.json())["epochSeconds"])
    assert server_time < time.time() - 500
    async with served.http.get(served.base_url + ACCOUNTS, headers=served.auth("GET", ACCOUNTS)) as response:
        assert response.status == 401
        assert response.headers["x-sim-auth-failure"] == "not_yet_valid"
    # a client that measured the offset and minted with the server's clock is accepted
    async with served.http.get(
        served.base_url + ACCOUNTS, headers=served.auth("GET", ACCOUNTS, nbf=server_time)
    ) as response:
        assert response.status == 200
