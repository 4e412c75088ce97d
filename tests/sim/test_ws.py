"""The Advanced Trade WebSocket: level2 snapshot + updates rebuild the simulator's own book, sequence numbers
count every message, and the JWT-authenticated user channel reports order updates and fills."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import aiohttp
import orjson

from tests.sim.conftest import Served, mint


async def next_message(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> dict[str, Any]:
    message = await ws.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    parsed: dict[str, Any] = orjson.loads(message.data)
    return parsed


class LocalBook:
    def __init__(self) -> None:
        self.levels: dict[str, dict[D, D]] = {"bid": {}, "offer": {}}
        self.last_seq = -1

    def apply(self, message: dict[str, Any]) -> None:
        assert message["sequence_num"] == self.last_seq + 1, "sequence_num must count every message"
        self.last_seq = message["sequence_num"]
        if message["channel"] != "l2_data":
            return
        for event in message["events"]:
            if event["type"] == "snapshot":
                self.levels = {"bid": {}, "offer": {}}
            for update in event["updates"]:
                side, price, size = update["side"], D(update["price_level"]), D(update["new_quantity"])
                if size == 0:
                    self.levels[side].pop(price, None)
                else:
                    self.levels[side][price] = size

    def as_admin_book(self) -> dict[str, list[list[str]]]:
        bids = sorted(self.levels["bid"].items(), reverse=True)
        asks = sorted(self.levels["offer"].items())
        return {
            "bids": [[format(p, "f"), format(s, "f")] for p, s in bids],
            "asks": [[format(p, "f"), format(s, "f")] for p, s in asks],
        }


async def admin_book(served: Served, product_id: str) -> dict[str, Any]:
    async with served.http.get(f"{served.base_url}/sim/book/{product_id}") as response:
        book: dict[str, Any] = await response.json()
    return {"bids": book["bids"], "asks": book["asks"]}


async def test_level2_snapshot_and_updates_rebuild_the_simulators_book(served: Served) -> None:
    async with served.http.ws_connect(served.base_url + "/ws") as ws:
        await ws.send_json({"type": "subscribe", "channel": "level2", "product_ids": ["BTC-USD"]})
        book = LocalBook()
        ack = await next_message(ws)
        book.apply(ack)
        assert ack["channel"] == "subscriptions"
        assert ack["events"][0]["subscriptions"] == {"level2": ["BTC-USD"]}
        snapshot = await next_message(ws)
        book.apply(snapshot)
        assert snapshot["events"][0]["type"] == "snapshot"
        assert book.as_admin_book() == await admin_book(served, "BTC-USD")
        for _ in range(20):  # the market moves; a market order eats liquidity
            served.sim.tick()
        await served.call(
            "POST",
            "/api/v3/brokerage/orders",
            {
                "client_order_id": "ws-1",
                "product_id": "BTC-USD",
                "side": "BUY",
                "order_configuration": {"market_market_ioc": {"base_size": "1.0"}},
            },
        )
        expected = await admin_book(served, "BTC-USD")
        updates = 0
        for _ in range(200):  # bounded: read until the local book has caught up
            if book.as_admin_book() == expected:
                break
            message = await next_message(ws)
            book.apply(message)
            updates += message["channel"] == "l2_data"
        assert book.as_admin_book() == expected
        assert updates > 0


async def test_user_channel_reports_order_updates_and_fills_after_jwt_auth(served: Served) -> None:
    async with served.http.ws_connect(served.base_url + "/ws/user") as ws:
        await ws.send_json({"type": "subscribe", "channel": "user", "product_ids": [], "jwt": "not-a-token"})
        assert await next_message(ws) == {"type": "error", "message": "authentication failure"}
        await ws.send_json(
            {"type": "subscribe", "channel": "user", "product_ids": [], "jwt": mint(served.key, None)}
        )
        assert (await next_message(ws))["channel"] == "subscriptions"
        snapshot = await next_message(ws)
        assert snapshot["channel"] == "user"
        assert snapshot["events"][0]["type"] == "snapshot"
        status, placed = await served.call(
            "POST",
            "/api/v3/brokerage/orders",
            {
                "client_order_id": "ws-user-1",
                "product_id": "BTC-USD",
                "side": "BUY",
                "order_configuration": {"limit_limit_gtc": {"base_size": "0.1", "limit_price": "59000.00"}},
            },
        )
        assert status == 200
        assert placed["success"]
        opened = await next_message(ws)
        order = opened["events"][0]["orders"][0]
        assert (order["client_order_id"], order["status"], order["leaves_quantity"]) == (
            "ws-user-1",
            "OPEN",
            "0.1",
        )
        served.sim.set_mid("BTC-USD", D("58000"))  # the market crosses the order
        statuses = []
        seqs = [snapshot["sequence_num"], opened["sequence_num"]]
        for _ in range(10):
            message = await next_message(ws)
            seqs.append(message["sequence_num"])
            update = message["events"][0]["orders"][0]
            statuses.append((update["status"], update["cumulative_quantity"], update["number_of_fills"]))
            if update["status"] == "FILLED":
                break
        assert statuses[0] == ("OPEN", "0.1", "1")  # the fill
        assert statuses[-1][0] == "FILLED"
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


async def test_heartbeats_ticker_and_market_trades(served: Served) -> None:
    async with served.http.ws_connect(served.base_url + "/ws") as ws:
        for channel in ("heartbeats", "ticker", "market_trades"):
            await ws.send_json({"type": "subscribe", "channel": channel, "product_ids": ["ETH-USD"]})
        seen: set[str] = set()
        served.sim.hub.heartbeat()
        await served.call(
            "POST",
            "/api/v3/brokerage/orders",
            {
                "client_order_id": "ws-trade",
                "product_id": "ETH-USD",
                "side": "SELL",
                "order_configuration": {"market_market_ioc": {"base_size": "0.5"}},
            },
        )
        served.sim.tick()
        for _ in range(50):
            message = await next_message(ws)
            seen.add(message["channel"])
            if message["channel"] == "market_trades" and message["events"][0]["type"] == "update":
                trade = message["events"][0]["trades"][0]
                assert trade["product_id"] == "ETH-USD"
                assert trade["side"] in ("BUY", "SELL")
            if {"heartbeats", "ticker", "market_trades"} <= seen:
                break
        assert {"heartbeats", "ticker", "market_trades"} <= seen


async def test_ws_faults_gap_and_drop(served: Served) -> None:
    served.sim.faults.ws_gap_rate = 1.0
    async with served.http.ws_connect(served.base_url + "/ws") as ws:
        await ws.send_json({"type": "subscribe", "channel": "heartbeats", "product_ids": []})
        for _ in range(500):  # bounded wait for the server to handle the subscribe (its ack is lost)
            if served.sim.hub.gaps_injected:
                break
            await asyncio.sleep(0.01)
        served.sim.faults.ws_gap_rate = 0.0
        served.sim.hub.heartbeat()
        message = await next_message(ws)
        assert message["sequence_num"] == 1  # message 0 (the ack) was lost: a gap
        served.sim.faults.ws_drop_rate = 1.0
        served.sim.hub.heartbeat()
        closed = await ws.receive(timeout=5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    assert served.sim.hub.gaps_injected >= 1
    assert served.sim.hub.drops_injected == 1
    await asyncio.sleep(0)
