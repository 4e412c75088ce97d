"""The WebSocket channels with state behind them: candles from the trades, ticker_batch batched, the user
snapshot's positions, futures_balance_summary after a fill, status when a product's status changes."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import aiohttp

from engine.sim.orders import OrderSpec
from tests.sim.conftest import Served, mint
from tests.sim.test_ws import next_message

FUTURE = "BIP-20DEC30-CDE"


async def _subscribe(
    ws: aiohttp.ClientWebSocketResponse, channel: str, products: list[str], **extra: Any
) -> Any:
    await ws.send_json({"type": "subscribe", "channel": channel, "product_ids": products, **extra})
    assert (await next_message(ws))["channel"] == "subscriptions"
    return await next_message(ws)


async def test_candles_channel_sends_the_five_minute_candle_of_each_trade(served: Served) -> None:
    sim = served.sim
    async with served.http.ws_connect(served.base_url + "/ws") as ws:
        await _subscribe(ws, "candles", ["BTC-USD"])
        sim.engine.submit(
            "c-1", "BTC-USD", "BUY", OrderSpec.parse({"market_market_ioc": {"base_size": "0.001"}})
        )
        message = await next_message(ws)
        while message["channel"] != "candles":
            message = await next_message(ws)
        candle = message["events"][0]["candles"][0]
        fill = sim.engine.fills[-1]
        assert candle["product_id"] == "BTC-USD"
        assert int(candle["start"]) == int(fill.trade_time) // 300 * 300
        assert D(candle["low"]) <= fill.price <= D(candle["high"])
        assert D(candle["close"]) == fill.price
        assert D(candle["volume"]) >= fill.size


async def test_ticker_batch_sends_one_message_for_many_changes(served: Served) -> None:
    sim = served.sim
    async with served.http.ws_connect(served.base_url + "/ws") as ws:
        await _subscribe(ws, "ticker_batch", ["BTC-USD", "ETH-USD"])
        for i in range(5):  # five moves of each product, none of which is sent on its own
            sim.set_mid("BTC-USD", D(61000 + i))
            sim.set_mid("ETH-USD", D(3100 + i))
        sim.hub.flush_ticker_batch()
        message = await next_message(ws)
        assert message["channel"] == "ticker_batch"
        tickers = message["events"][0]["tickers"]
        assert [t["product_id"] for t in tickers] == ["BTC-USD", "ETH-USD"]
        assert D(tickers[0]["price"]) == sim.markets["BTC-USD"].last_price
        sim.hub.flush_ticker_batch()  # nothing changed since: nothing sent
        sim.set_mid("ETH-USD", D(3200))
        sim.hub.flush_ticker_batch()
        after = await next_message(ws)
        assert [t["product_id"] for t in after["events"][0]["tickers"]] == ["ETH-USD"]
        assert after["sequence_num"] == message["sequence_num"] + 1


async def test_user_snapshot_carries_positions_and_fcm_summary_follows_fills(served: Served) -> None:
    sim = served.sim
    sim.engine.submit("f-1", FUTURE, "BUY", OrderSpec.parse({"market_market_ioc": {"base_size": "3"}}))
    async with served.http.ws_connect(served.base_url + "/ws/user") as ws:
        snapshot = await _subscribe(ws, "user", [], jwt=mint(served.key, None))
        positions = snapshot["events"][0]["positions"]["expiring_futures_positions"]
        assert [(p["product_id"], p["side"], p["number_of_contracts"]) for p in positions] == [
            (FUTURE, "LONG", "3")
        ]
        first = await _subscribe(ws, "futures_balance_summary", [], jwt=mint(served.key, None))
        margin_before = D(first["events"][0]["fcm_balance_summary"]["initial_margin"])
        sim.engine.submit("f-2", FUTURE, "BUY", OrderSpec.parse({"market_market_ioc": {"base_size": "2"}}))
        message = await next_message(ws)
        while message["channel"] != "futures_balance_summary":
            message = await next_message(ws)
        assert message["events"][0]["type"] == "update"
        assert D(message["events"][0]["fcm_balance_summary"]["initial_margin"]) > margin_before


async def test_status_channel_reports_a_product_going_offline(served: Served) -> None:
    async with served.http.ws_connect(served.base_url + "/ws") as ws:
        snapshot = await _subscribe(ws, "status", ["ETH-USD"])
        assert snapshot["events"][0]["products"][0]["status"] == "online"
        async with served.http.post(
            served.base_url + "/sim/market", json={"status": {"ETH-USD": "offline"}}
        ) as r:
            assert r.status == 200
        update = await next_message(ws)
        assert update["events"][0]["type"] == "update"
        assert [(p["id"], p["status"]) for p in update["events"][0]["products"]] == [("ETH-USD", "offline")]
