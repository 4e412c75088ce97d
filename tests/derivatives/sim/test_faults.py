"""The simulator's faults on the gateway's surface: latency, 5xx, drop-after-accept (the order stands, the
reply is lost), dropped sockets; and the ledger listing perpetual orders beside spot ones."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from engine.sim.faults import Faults
from tests.derivatives.sim.conftest import serve_gateway

BTC = "BTC_USDC-PERPETUAL"


async def test_latency_holds_replies_on_both_transports() -> None:
    async with serve_gateway(faults=Faults(latency_ms=20)) as gateway:
        socket = await gateway.trading()
        assert (await socket.call("public/test", {}))["version"]
        await gateway.rpc("public/get_time")
        assert gateway.sim.derivatives.injected["latency"] >= 3  # auth, test, get_time


async def test_a_5xx_over_http_is_a_json_rpc_error() -> None:
    async with serve_gateway(faults=Faults(error_5xx_rate=1.0)) as gateway:
        status, body = await gateway.post("public/get_time")
        assert status == 503
        assert body["error"]["code"] == 13028


async def test_drop_after_accept_on_the_socket_keeps_the_order() -> None:
    async with serve_gateway() as gateway:
        socket = await gateway.trading()
        gateway.sim.faults.drop_after_accept_rate = 1.0
        with pytest.raises(ConnectionError):
            await socket.request(
                "private/buy",
                {"instrument_name": BTC, "amount": 0.01, "type": "market", "label": "lost-reply"},
            )
        gateway.sim.faults.drop_after_accept_rate = 0.0
        other = await gateway.trading()
        orders = await other.call(
            "private/get_order_state_by_label", {"currency": "USDC", "label": "lost-reply"}
        )
        assert [o["order_state"] for o in orders] == ["filled"]
        assert gateway.sim.derivatives.injected["drop_after_accept"] == 1


async def test_drop_after_accept_over_http_keeps_the_order() -> None:
    async with serve_gateway() as gateway:
        token = await gateway.token()
        gateway.sim.faults.drop_after_accept_rate = 1.0
        with pytest.raises(aiohttp.ClientError):
            await gateway.post(
                "private/buy",
                {"instrument_name": BTC, "amount": 0.01, "type": "market", "label": "lost-http"},
                token,
            )
        gateway.sim.faults.drop_after_accept_rate = 0.0
        orders = await gateway.rpc(
            "private/get_order_state_by_label", {"currency": "USDC", "label": "lost-http"}, token
        )
        assert len(orders) == 1


async def test_a_dropped_socket_and_the_ledger() -> None:
    async with serve_gateway() as gateway:
        socket = await gateway.trading()
        await socket.call("private/subscribe", {"channels": ["user.orders.any.any.raw"]})
        await socket.call("private/buy", {"instrument_name": BTC, "amount": 0.01, "type": "market"})
        token = await gateway.token()
        gateway.sim.faults.ws_drop_rate = 1.0  # the next notification to a subscriber drops its socket
        await gateway.rpc("private/buy", {"instrument_name": BTC, "amount": 0.01, "type": "market"}, token)
        await asyncio.wait_for(socket.closed.wait(), 10)
        gateway.sim.faults.ws_drop_rate = 0.0
        assert gateway.sim.derivatives.injected["ws_drop"] >= 1
        async with gateway.http.get(gateway.base_url + "/sim/ledger") as response:
            ledger = await response.json()
        perpetual = [e for e in ledger["orders"] if e["source"] == "derivatives"]
        assert len(perpetual) == 2
        assert {e["product_id"] for e in perpetual} == {BTC}


async def test_a_socket_dropped_with_a_reply_in_flight() -> None:
    async with serve_gateway(faults=Faults(latency_ms=200)) as gateway:
        socket = await gateway.trading()
        gateway.sim.faults.latency_ms = 0
        await socket.call("private/enable_cancel_on_disconnect", {})
        gateway.sim.faults.latency_ms = 200
        await socket.send_raw(
            '{"jsonrpc":"2.0","id":42,"method":"private/buy","params":'
            '{"instrument_name":"BTC_USDC-PERPETUAL","amount":0.01,"price":1000,"label":"in-flight"}}'
        )
        assert gateway.sim.derivatives.drop_sockets(gateway.key.name) == 1
        await asyncio.wait_for(socket.closed.wait(), 10)
        assert 42 not in socket.replies
        gateway.sim.faults.latency_ms = 0
        other = await gateway.trading()
        orders = await other.call(
            "private/get_order_state_by_label", {"currency": "USDC", "label": "in-flight"}
        )
        assert orders == []  # the socket went before the held request ran


async def test_ws_drop_loses_a_reply_not_the_order() -> None:
    async with serve_gateway() as gateway:
        socket = await gateway.trading()
        gateway.sim.faults.ws_drop_rate = 1.0
        with pytest.raises(ConnectionError):
            await socket.request(
                "private/buy",
                {"instrument_name": BTC, "amount": 0.01, "type": "market", "label": "reply-lost"},
            )
        gateway.sim.faults.ws_drop_rate = 0.0
        other = await gateway.trading()
        orders = await other.call(
            "private/get_order_state_by_label", {"currency": "USDC", "label": "reply-lost"}
        )
        assert len(orders) == 1
