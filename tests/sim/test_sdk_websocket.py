"""The official SDK's WSClient and WSUserClient, unchanged, subscribe to every Advanced Trade channel on the
simulator; each channel answers with messages the SDK's WebsocketResponse parses. The channel list comes
from the SDK itself (coinbase/websocket/channels.py), so a channel it gains and the simulator lacks fails."""

from __future__ import annotations

import asyncio
import inspect
import json
from decimal import Decimal as D
from typing import Any

import coinbase.websocket.channels as sdk_channels
from coinbase.websocket import WSClient, WSUserClient
from coinbase.websocket.types.websocket_response import WebsocketResponse

from engine.sim.orders import OrderSpec
from tests.sim.conftest import Served

AUTH = {"user", "futures_balance_summary"}
# the channel name Coinbase stamps on each channel's messages (level2 arrives as l2_data)
ARRIVES_AS = {"level2": "l2_data"}


def sdk_channel_names() -> set[str]:
    return {
        name
        for name, fn in inspect.getmembers(sdk_channels, inspect.isfunction)
        if not name.endswith(("_async", "_unsubscribe")) and "self" in inspect.signature(fn).parameters
    }


async def test_the_official_sdk_websocket_clients_get_every_channel(served: Served) -> None:
    channels = sdk_channel_names()
    assert channels == {
        "heartbeats", "candles", "market_trades", "status", "ticker", "ticker_batch", "level2", "user",
        "futures_balance_summary",
    }  # fmt: skip
    sim = served.sim
    sim.engine.submit("w-1", "BTC-USD", "BUY", OrderSpec.parse({"market_market_ioc": {"base_size": "0.01"}}))
    seen: dict[str, list[Any]] = {}
    everything = asyncio.Event()
    wanted = {ARRIVES_AS.get(c, c) for c in channels}

    def on_message(raw: str) -> None:
        message = json.loads(raw)
        parsed = WebsocketResponse(json.loads(raw))  # the SDK's parser (it empties what it parses)
        seen.setdefault(parsed.channel, []).append(message)
        if wanted <= set(seen):
            everything.set()

    pem = served.key.forms["pkcs8_pem"]
    ws_base = served.base_url.replace("http://", "ws://")
    public = WSClient(
        api_key=served.key.name, api_secret=pem, base_url=ws_base + "/ws", on_message=on_message
    )
    private = WSUserClient(
        api_key=served.key.name, api_secret=pem, base_url=ws_base + "/ws/user", on_message=on_message
    )
    await public.open_async()
    await private.open_async()
    try:
        await public.subscribe_async(["BTC-USD"], sorted(channels - AUTH))
        await private.subscribe_async([], sorted(AUTH))
        sim.hub.heartbeat()
        sim.engine.submit(
            "w-2", "BTC-USD", "BUY", OrderSpec.parse({"market_market_ioc": {"base_size": "0.01"}})
        )
        await asyncio.wait_for(everything.wait(), timeout=20)
    finally:
        await public.close_async()
        await private.close_async()
    assert wanted <= set(seen)
    candle = seen["candles"][-1]["events"][0]["candles"][0]
    assert D(candle["close"]) == sim.engine.fills[-1].price
