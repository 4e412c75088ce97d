"""The trading session against a peer that misbehaves: bad frames never crash it or hang a caller, a drop
fails what was in flight as outcome-unknown and never re-sends it, the session comes back by itself."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp import web

from engine.auth import CdpKey
from engine.errors import ExchangeError, RequestLost, RequestTimeout
from engine.net.retry import RetryPolicy
from engine.venues.derivatives import connection
from engine.venues.derivatives.connection import SessionConfig
from engine.venues.derivatives.session import TradingSession
from tests.derivatives.client.hostile_peer import HostilePeer, hostile_peer
from tests.support.keys import new_ed25519_key

ORDER = {
    "order_id": "BTC-1",
    "instrument_name": "BTC_USDC-PERPETUAL",
    "direction": "buy",
    "order_state": "open",
    "order_type": "limit",
    "amount": 0.001,
    "price": 50000,
    "label": "",
}
FAST = SessionConfig(
    call_timeout_s=2.0,
    heartbeat_interval_s=None,
    reconnect=RetryPolicy(max_attempts=20, base_delay_s=0.01, max_delay_s=0.05, budget_s=20.0),
    max_message_bytes=256 * 1024,
)


@pytest.fixture(autouse=True, params=["routed", "receive loop"])
def frame_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every case on both frame paths: replies routed from the socket's data callback (engine.net.ws_fastpath)
    and the plain `receive()` loop the session falls back to on an aiohttp the fast path does not know."""
    if request.param == "receive loop":
        monkeypatch.setattr(connection, "route_data_frames", lambda *_args, **_kwargs: False)
    return str(request.param)


def _session(peer: HostilePeer, config: SessionConfig = FAST) -> TradingSession:
    key = new_ed25519_key()
    return TradingSession(CdpKey(key.name, key.private_key), peer.url, config=config)


async def test_junk_frames_and_unknown_ids_are_dropped_and_the_caller_gets_its_reply(frame_path: str) -> None:
    async def respond(ws: web.WebSocketResponse, request: dict[str, Any]) -> None:
        await ws.send_str("this is not json")
        await ws.send_str("[1, 2, 3]")
        await ws.send_str('{"jsonrpc": "2.0", "id": "not-a-number", "result": 1}')
        await ws.send_str('{"jsonrpc": "2.0", "id": 987654, "result": {"order": {}}}')  # nobody asked
        await ws.send_str('{"jsonrpc": "2.0", "method": "subscription", "params": {"channel": "nobody"}}')
        await ws.send_str('{"jsonrpc": "2.0"}')
        await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"order": ORDER}}))

    async with hostile_peer(respond) as peer, _session(peer) as session:
        result = await session.buy("BTC_USDC-PERPETUAL", Decimal("0.001"), price=Decimal(50000))
        assert result.order.order_id == "BTC-1"
        assert session.stats.malformed_frames == 4
        assert session.stats.unknown_ids == 1
        assert session.stats.routed_frames is (frame_path == "routed")
        assert session.connected
        assert session.stats.disconnects == 0


async def test_an_oversized_message_drops_the_connection_not_the_session() -> None:
    async def respond(ws: web.WebSocketResponse, request: dict[str, Any]) -> None:
        if request["params"].get("label") == "big":
            big = "x" * 600_000
            await ws.send_str(f'{{"jsonrpc":"2.0","id":{request["id"]},"result":"{big}"}}')
        else:
            await ws.send_bytes(
                orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"order": ORDER}})
            )

    async with hostile_peer(respond) as peer, _session(peer) as session:
        with pytest.raises(RequestLost) as lost:
            await session.buy("BTC_USDC-PERPETUAL", Decimal("0.001"), price=Decimal(50000), label="big")
        assert lost.value.label == "big"
        # It reconnects (and authenticates again) by itself; the next order goes out on the new socket.
        result = await session.buy("BTC_USDC-PERPETUAL", Decimal("0.001"), price=Decimal(50000), label="next")
        assert result.order.order_id == "BTC-1"
        assert peer.connections == 2
        assert peer.methods().count("public/auth") == 2
        assert [r["params"].get("label") for r in peer.received if r["method"] == "private/buy"] == [
            "big",
            "next",
        ]


async def test_requests_in_flight_when_the_socket_drops_fail_as_lost_and_are_never_resent() -> None:
    arrived = asyncio.Event()

    async def respond(ws: web.WebSocketResponse, request: dict[str, Any]) -> None:
        if request["method"] == "private/get_open_orders":
            await peer.reply(ws, request, [])
        elif sum(1 for r in peer.received if r["method"] in ("private/buy", "private/get_positions")) == 9:
            arrived.set()  # all nine are in; none is answered

    async with hostile_peer(respond) as peer, _session(peer) as session:
        orders = [
            asyncio.ensure_future(
                session.buy("BTC_USDC-PERPETUAL", Decimal("0.001"), price=Decimal(50000), label=f"o{i}")
            )
            for i in range(8)
        ]
        positions = asyncio.ensure_future(session.get_positions())
        await arrived.wait()
        await peer.sockets[-1].close()  # the network drops the connection
        outcomes = await asyncio.gather(*orders, positions, return_exceptions=True)
        assert all(isinstance(outcome, RequestLost) for outcome in outcomes)
        assert sorted(o.label for o in outcomes[:8]) == sorted(f"o{i}" for i in range(8))  # type: ignore[union-attr]
        assert session.stats.lost_in_flight == 9
        while not session.connected:
            await asyncio.sleep(0.01)
        await session.get_open_orders()  # the new connection works...
        assert peer.methods().count("private/buy") == 8  # ...and nothing was sent again on it


async def test_a_result_that_does_not_decode_is_never_taken_for_a_lost_order() -> None:
    async def respond(ws: web.WebSocketResponse, request: dict[str, Any]) -> None:
        await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"order": 5}}))

    async with hostile_peer(respond) as peer, _session(peer) as session:
        with pytest.raises(RequestLost, match="look the order up"):
            await session.sell("BTC_USDC-PERPETUAL", Decimal("0.001"), price=Decimal(50000), label="s1")
        with pytest.raises(ExchangeError, match="could not be read"):
            await session.get_position("BTC_USDC-PERPETUAL")
        assert session.connected


async def test_no_reply_in_time_is_lost_for_an_order_and_a_timeout_for_a_read() -> None:
    async def respond(ws: web.WebSocketResponse, request: dict[str, Any]) -> None:
        return  # silence

    config = SessionConfig(call_timeout_s=0.2, heartbeat_interval_s=None)
    async with hostile_peer(respond) as peer, _session(peer, config) as session:
        with pytest.raises(RequestLost):
            await session.buy("BTC_USDC-PERPETUAL", Decimal("0.001"), price=Decimal(50000))
        with pytest.raises(RequestTimeout):
            await session.get_positions()
        assert session.connected


async def test_each_request_expires_at_its_own_deadline_whatever_else_is_in_flight() -> None:
    """A short timeout sent after a long one still expires on time, the long one stays in flight, and a
    request sent after the long one was cancelled expires too."""

    async def respond(ws: web.WebSocketResponse, request: dict[str, Any]) -> None:
        return  # silence

    config = SessionConfig(call_timeout_s=0.2, heartbeat_interval_s=None)
    async with hostile_peer(respond) as peer, _session(peer, config) as session:
        long = asyncio.ensure_future(session.request("public/get_time", {}, timeout_s=60.0))
        with pytest.raises(RequestTimeout, match=r"within 0\.2s"):
            await session.request("public/get_time", {})
        with pytest.raises(RequestLost, match=r"within 0\.3s"):
            await session.request("private/buy", {"instrument_name": "BTC_USDC-PERPETUAL"}, timeout_s=0.3)
        assert not long.done()
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long
        with pytest.raises(RequestTimeout, match=r"within 0\.2s"):
            await session.request("public/get_time", {})
        assert session.connected


async def test_heartbeat_test_requests_are_answered_and_reauth_runs_on_the_same_socket() -> None:
    async def respond(ws: web.WebSocketResponse, request: dict[str, Any]) -> None:
        await peer.reply(ws, request, [])

    config = SessionConfig(heartbeat_interval_s=10, reconnect=FAST.reconnect)
    async with hostile_peer(respond, expires_in=0.25) as peer, _session(peer, config) as session:
        assert {"public/set_heartbeat", "private/enable_cancel_on_disconnect"} <= set(peer.methods())
        heartbeat = next(r for r in peer.received if r["method"] == "public/set_heartbeat")
        assert heartbeat["params"] == {"interval": 10}
        await peer.sockets[-1].send_str(
            '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
        )
        while "public/test" not in peer.methods() or session.stats.reauths < 2:
            await asyncio.sleep(0.02)
        assert peer.connections == 1  # re-authenticated in band, twice, on the one socket
        auths = [r for r in peer.received if r["method"] == "public/auth"]
        assert len(auths) >= 3
        assert all(a["params"]["grant_type"] == "coinbase_cdp" for a in auths)
        assert len({a["params"]["token"] for a in auths}) == len(auths)  # a fresh JWT every time
        assert await session.get_open_orders() == ()
