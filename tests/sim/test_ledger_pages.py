"""`/sim/ledger` in pages: a long run's ledger read piece by piece is the whole ledger, in order."""

from __future__ import annotations

from typing import Any

from tests.sim.conftest import Served

ORDERS = "/api/v3/brokerage/orders"


def order(client_order_id: str) -> dict[str, object]:
    return {
        "client_order_id": client_order_id,
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "50000.00"}},
    }


async def ledger(served: Served, query: str) -> tuple[int, Any]:
    async with served.http.get(f"{served.base_url}/sim/ledger{query}") as response:
        return response.status, await response.json()


async def test_pages_of_the_ledger_are_the_ledger_in_acceptance_order(served: Served) -> None:
    placed = [f"page-{n}" for n in range(7)]
    for client_order_id in placed:
        assert (await served.call("POST", ORDERS, order(client_order_id)))[0] == 200
    read: list[str] = []
    offset = 0
    while True:
        status, body = await ledger(served, f"?offset={offset}&limit=3")
        assert status == 200
        assert body["total"] == len(placed)
        read += [entry["client_order_id"] for entry in body["orders"]]
        offset += body["count"]
        if body["count"] < 3:
            break
    assert read == placed
    status, whole = await ledger(served, "")
    assert [entry["client_order_id"] for entry in whole["orders"]] == placed
    status, past = await ledger(served, "?offset=100&limit=3")
    assert (status, past["count"], past["total"]) == (200, 0, len(placed))


async def test_a_bad_page_is_a_400_naming_the_parameter(served: Served) -> None:
    for query, name in (("?offset=-1", "offset"), ("?offset=x", "offset"), ("?limit=1e3", "limit")):
        status, body = await ledger(served, query)
        assert status == 400, query
        assert name in body["message"]
