"""Session behaviour on the trading socket: cancel-on-disconnect, heartbeats with test_request, logout,
re-auth on the same socket, and the streams socket serving subscriptions only."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.derivatives.sim.conftest import Gateway, Socket, serve_gateway

BTC = "BTC_USDC-PERPETUAL"


async def _rest(socket: Socket, gateway: Gateway, label: str) -> str:
    """A buy far below the market: it rests."""
    book = gateway.sim.derivatives.instruments[BTC].market.book
    price = float((book.best_bid() or Decimal(1000)) - 1000)
    placed = await socket.call(
        "private/buy", {"instrument_name": BTC, "amount": 0.01, "price": price, "label": label}
    )
    return str(placed["order"]["order_id"])


async def test_cancel_on_disconnect_cancels_that_connections_orders(gateway: Gateway) -> None:
    keeper = await gateway.trading()
    leaver = await gateway.trading()
    assert await leaver.call("private/enable_cancel_on_disconnect", {}) == "ok"
    assert await leaver.call("private/get_cancel_on_disconnect", {}) == {
        "scope": "connection",
        "enabled": True,
    }
    kept = await _rest(keeper, gateway, "kept")
    gone = await _rest(leaver, gateway, "gone")
    await keeper.call("private/subscribe", {"channels": ["user.orders.future.USDC.raw"]})
    await leaver.close()
    cancelled = await keeper.notification(
        "user.orders.", lambda d: d["order_id"] == gone and d["order_state"] == "cancelled"
    )
    assert cancelled["cancel_reason"] == "cancel_on_disconnect"
    assert (await keeper.call("private/get_order_state", {"order_id": kept}))["order_state"] == "open"


async def test_logout_closes_without_a_reply_and_does_not_cancel(gateway: Gateway) -> None:
    socket = await gateway.trading()
    await socket.call("private/enable_cancel_on_disconnect", {})
    order_id = await _rest(socket, gateway, "stays")
    await socket.send_raw('{"jsonrpc":"2.0","id":99,"method":"private/logout","params":{}}')
    await asyncio.wait_for(socket.closed.wait(), 10)
    assert socket.ws.close_code == 1000
    assert 99 not in socket.replies
    other = await gateway.trading()
    assert (await other.call("private/get_order_state", {"order_id": order_id}))["order_state"] == "open"


async def test_account_scope_turns_cod_on_for_new_connections(gateway: Gateway) -> None:
    first = await gateway.trading()
    await first.call("private/enable_cancel_on_disconnect", {"scope": "account"})
    second = await gateway.trading()
    assert (await second.call("private/get_cancel_on_disconnect", {}))["enabled"] is True


async def test_heartbeat_test_requests_and_a_silent_client_is_dropped() -> None:
    async with serve_gateway(heartbeat_min_interval_s=0.05) as gateway:
        socket = await gateway.trading()
        refused = await socket.request("public/set_heartbeat", {"interval": 0.01})
        assert refused["error"]["code"] == -32602
        await socket.call("private/enable_cancel_on_disconnect", {})
        order_id = await _rest(socket, gateway, "hb")
        assert await socket.call("public/set_heartbeat", {"interval": 0.1}) == "ok"
        while len([h for h in socket.heartbeats if h["params"]["type"] == "test_request"]) < 3:
            await asyncio.sleep(0.05)
        assert not socket.closed.is_set()  # every test_request answered with public/test
        socket.answer_test_requests = False
        await asyncio.wait_for(socket.closed.wait(), 10)
        other = await gateway.trading()
        state = await other.call("private/get_order_state", {"order_id": order_id})
        assert state["order_state"] == "cancelled"
        assert state["cancel_reason"] == "cancel_on_disconnect"


async def test_reauth_on_the_same_socket(gateway: Gateway) -> None:
    socket = await gateway.trading()
    again = await socket.call("public/auth", {"grant_type": "coinbase_cdp", "token": gateway.jwt()})
    assert again["access_token"]
    assert await socket.call("private/get_positions", {}) == []


async def test_private_calls_need_auth_on_the_socket(gateway: Gateway) -> None:
    socket = await gateway.socket()
    reply = await socket.request("private/get_positions", {})
    assert reply["error"]["code"] == 13009
    token = await gateway.token()
    assert await socket.call("private/get_positions", {"access_token": token}) == []


async def test_streams_socket_serves_subscriptions_only(gateway: Gateway) -> None:
    socket = await gateway.streams()
    assert (await socket.request("public/get_index_price", {"index_name": "btc_usdc"}))["error"][
        "code"
    ] == -32601
    assert (await socket.request("public/auth", {"grant_type": "coinbase_cdp", "token": "x"}))["error"][
        "code"
    ] == -32601
    assert (await socket.request("private/subscribe", {"channels": ["user.portfolio.usdc"]}))["error"][
        "code"
    ] == -32601
    accepted = await socket.call(
        "public/subscribe",
        {
            "channels": [
                f"book.{BTC}.100ms",
                f"book.{BTC}.raw",
                f"ticker.{BTC}.100ms",
                "user.orders.any.any.raw",
            ]
        },
    )
    assert accepted == [f"book.{BTC}.100ms", f"ticker.{BTC}.100ms"]
    assert (await socket.call("public/test", {}))["version"]
