"""The gateway's two WebSockets. The trading socket (`/ws/api/v2`) serves every RPC method and the `user.*`
channels after `public/auth`; the streams socket (`/streams/ws/api/v2`) serves market-data subscriptions
only, with no auth. One frame is one request; whatever is wrong with a frame is answered with the
gateway's JSON-RPC error on the same socket, which stays open (credit exhaustion aside: that ends it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from engine.sim.derivatives.connections import Connection
from engine.sim.derivatives.dispatcher import STREAMS, TRADING, Caller, SessionEnded
from engine.sim.derivatives.gateway import DerivativesGateway, DropAfterAccept
from engine.sim.derivatives.rpc import (
    INTERNAL_ERROR,
    RpcError,
    decode,
    error_frame,
    request_id_of,
    result_frame,
)

log = logging.getLogger(__name__)

# aiohttp closes a socket on a frame above its limit; ours is higher, so a frame over the gateway's 32 KB
# is read and refused with -32600, the socket kept
_READ_LIMIT = 1 << 20


def _now_us() -> int:
    return time.time_ns() // 1000


def handle_frame(gw: DerivativesGateway, connection: Connection, data: bytes | str) -> None:
    us_in = _now_us()
    try:
        request = decode(data, require_id=True)
    except RpcError as error:
        connection.send(error_frame(request_id_of(data) if len(data) <= _READ_LIMIT else None, error))
        return
    key = connection.key
    token = request.params.get("access_token")
    if key is None and isinstance(token, str) and connection.kind == TRADING:
        # Deribit's boilerplate lets a private call carry its token; the gateway's guides use the socket's
        # auth (what the official SDK does). Both work here.
        with contextlib.suppress(RpcError):
            key = gw.key_named(gw.tokens.verify(token, gw.clock.now()).key_name)
    caller = Caller(connection.kind, connection.remote, key, connection)
    try:
        result = gw.table.dispatch(request, caller)
    except SessionEnded as error:
        connection.send(error_frame(request.id, error))
        connection.close_after_pending(1008, b"too_many_requests")
        return
    except RpcError as error:
        connection.send(error_frame(request.id, error))
        return
    except DropAfterAccept:
        connection.abort()
        return
    except Exception:
        log.exception("derivatives gateway: %s failed", request.method[:64])
        connection.send(error_frame(request.id, RpcError(INTERNAL_ERROR)))
        return
    if request.method == "private/logout":
        return  # no reply: the socket closes with 1000 "logout"
    if gw.dice.ws_drop():  # the call took effect; its reply is lost with the socket
        gw.injected["ws_drop"] += 1
        connection.abort()
        return
    connection.send(result_frame(request.id, result, us_in, _now_us()))


async def _serve(gw: DerivativesGateway, request: web.Request, kind: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(max_msg_size=_READ_LIMIT, autoping=True)
    await ws.prepare(request)
    connection = Connection(ws, kind, request.remote or "", request.transport)
    gw.opened(connection)
    writer = asyncio.get_running_loop().create_task(connection.write_loop())
    try:
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            connection.heard = True
            delay = gw.dice.delay_s()
            if delay:
                gw.injected["latency"] += 1
                await asyncio.sleep(delay)
            handle_frame(gw, connection, message.data)
            if connection.closing:
                break
    finally:
        gw.closed(connection)
        connection.close_after_pending(1000, b"")
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(writer, 5.0)
    return ws


def trading_socket(gw: DerivativesGateway) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _serve(gw, request, TRADING)

    return handle


def streams_socket(gw: DerivativesGateway) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _serve(gw, request, STREAMS)

    return handle
