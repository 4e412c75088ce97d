"""Funding on its accelerated schedule, and request credits that end the session when exhausted."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from engine.sim.derivatives.config import Credits
from tests.derivatives.sim.conftest import serve_gateway

BTC = "BTC_USDC-PERPETUAL"


async def test_funding_accrues_on_the_schedule_and_is_paid_from_collateral() -> None:
    async with serve_gateway(tick_interval_s=0.02, funding_interval_s=0.05) as gateway:
        gw = gateway.sim.derivatives
        socket = await gateway.trading()
        await socket.call("private/buy", {"instrument_name": BTC, "amount": 1, "type": "market"})
        balance_after_fill = gw.pool.balance
        start = gw.now_ms()
        while len(gw.funding.between(BTC, start, gw.now_ms() + 1)) < 3:
            await asyncio.sleep(0.02)
        end = gw.now_ms()
        history = await socket.call(
            "public/get_funding_rate_history",
            {
                "instrument_name": BTC,
                "start_timestamp": start,
                "end_timestamp": end,
            },
        )
        assert len(history) >= 3
        assert {"timestamp", "index_price", "prev_index_price", "interest_1h", "interest_8h"} <= set(
            history[0]
        )
        value = await socket.call(
            "public/get_funding_rate_value",
            {
                "instrument_name": BTC,
                "start_timestamp": start,
                "end_timestamp": end,
            },
        )
        assert Decimal(str(value)) == sum(Decimal(str(p["interest_1h"])) for p in history)
        assert any(p["interest_1h"] != 0 for p in history)
        paid = gw.funding.paid[BTC]
        assert paid != 0
        assert gw.pool.balance == balance_after_fill + paid  # nothing else moved the collateral


async def test_exhausting_matching_credits_ends_the_socket() -> None:
    credits = Credits(matching_cost=10, matching_pool=30, matching_refill_per_s=1)
    async with serve_gateway(credits=credits) as gateway:
        socket = await gateway.trading()
        book = gateway.sim.derivatives.instruments[BTC].market.book
        params = {"instrument_name": BTC, "amount": 0.01, "price": float((book.best_bid() or 0) - 1000)}
        for _ in range(3):
            await socket.call("private/buy", params)
        refused = await socket.request("private/buy", params)
        assert refused["error"]["code"] == 10028
        assert refused["error"]["data"]["retry_after_ms"] > 0
        await asyncio.wait_for(socket.closed.wait(), 10)
        assert len([o for o in gateway.sim.derivatives.desk.orders.values() if o.is_live]) == 3


async def test_exhausting_credits_over_http_closes_the_connection() -> None:
    credits = Credits(non_matching_cost=10, non_matching_pool=20, non_matching_refill_per_s=1)
    async with serve_gateway(credits=credits) as gateway:
        for _ in range(2):
            await gateway.rpc("public/get_time")
        host, port = gateway.host.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = b'{"jsonrpc":"2.0","method":"public/get_time","params":{}}'
        writer.write(
            b"POST /api/v2/public/get_time HTTP/1.1\r\nHost: "
            + gateway.host.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        await writer.drain()
        # a keep-alive request, yet the server answers and then closes: read to the end of the stream
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert b'"code":10028' in answer
