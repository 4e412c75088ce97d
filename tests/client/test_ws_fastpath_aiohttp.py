"""What engine.net.ws_fastpath uses of aiohttp below `ClientWebSocketResponse.receive`, checked for real.

The fast path subclasses the parser's queue (`WebSocketDataQueue`) so that the parser hands data messages to
a callback, builds a new `WebSocketReader` over it, and installs both with the protocol's `set_parser`. None
of that is public API. These checks make a change in a new aiohttp fail here, by name, instead of as a
session that silently stops seeing replies; `route_data_frames` itself falls back to the plain receive loop
when the response does not look as tested. When one fails after an aiohttp upgrade: read the new
aiohttp/_websocket/reader_py.py and client.py `_ws_connect`, adapt engine/net/ws_fastpath.py, run
tests/derivatives/, then raise the pin in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import inspect

import aiohttp
import pytest
from aiohttp import web
from aiohttp.client_proto import ResponseHandler

from engine.net import ws_fastpath
from engine.net.ws_fastpath import route_data_frames

VERSION = aiohttp.__version__
MAX_MSG = 1024


def _fail(internal: str, expected: str, found: object) -> None:
    pytest.fail(
        f"aiohttp {VERSION} changed {internal}, which engine/net/ws_fastpath.py relies on: expected "
        f"{expected}, found {found}. Adapt the fast path (and keep aiohttp pinned below this version).",
        pytrace=False,
    )


def test_the_parser_and_its_queue_are_where_the_fast_path_looks() -> None:
    if ws_fastpath.WebSocketDataQueue is None or ws_fastpath.WebSocketReader is None:
        _fail("aiohttp._websocket.reader", "WebSocketDataQueue and WebSocketReader", None)
    from aiohttp.client import WebSocketDataQueue as used_by_ws_connect
    from aiohttp.http import WebSocketReader as parser_of_ws_connect

    if ws_fastpath.WebSocketDataQueue is not used_by_ws_connect:
        _fail(
            "the queue ws_connect builds", "aiohttp._websocket.reader.WebSocketDataQueue", used_by_ws_connect
        )
    if ws_fastpath.WebSocketReader is not parser_of_ws_connect:
        _fail(
            "the parser ws_connect builds", "aiohttp._websocket.reader.WebSocketReader", parser_of_ws_connect
        )
    parameters = inspect.signature(ResponseHandler.set_parser).parameters
    if list(parameters)[:3] != ["self", "parser", "payload"] or "data_received_cb" not in parameters:
        _fail("ResponseHandler.set_parser", "(parser, payload, data_received_cb=)", list(parameters))


async def test_the_parser_calls_an_overridden_feed_data_for_every_message() -> None:
    """The compiled parser dispatches to a Python subclass's `feed_data` (a cpdef method), TEXT decoded."""
    seen: list[str | bytes] = []
    queue_class = ws_fastpath._DataFrameQueue
    assert queue_class is not None
    protocol = ResponseHandler(asyncio.get_running_loop())
    queue = queue_class(protocol, 2**16, loop=asyncio.get_running_loop(), on_frame=seen.append)
    assert ws_fastpath.WebSocketReader is not None
    parser = ws_fastpath.WebSocketReader(queue, MAX_MSG, compress=False, decode_text=True)
    # unmasked server frames: TEXT "hi", BINARY b"\x01", PING "p"
    parser.feed_data(b"\x81\x02hi\x82\x01\x01\x89\x01p")
    if seen != ["hi", b"\x01"]:
        _fail("WebSocketReader -> WebSocketDataQueue.feed_data", "['hi', b'\\x01'] routed", seen)
    ping = await queue.read()  # control messages still queue for receive()
    if ping[0] is not aiohttp.WSMsgType.PING or ping[1] != b"p":
        _fail("WebSocketDataQueue.read", "the PING queued as before", ping)


async def _serve(handler: object) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/ws", handler)  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/ws"


async def test_a_real_connection_routes_data_and_keeps_ping_close_and_the_size_limit() -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        async for message in ws:
            if message.data == "ping me":
                await ws.ping(b"x")
                pong = await ws.receive(timeout=5)  # autoping is off on this side's receive: we see it
                await ws.send_str(f"pong {pong.type.name} {bytes(pong.data)!r}")
            elif message.data == "big":
                await ws.send_str("x" * (MAX_MSG + 1))
            elif message.data == "bye":
                await ws.close(code=4001)
            else:
                await ws.send_str(f"echo {message.data}")
        return ws

    runner, url = await _serve(handler)
    routed: list[str | bytes] = []
    arrived = asyncio.Event()

    def on_frame(data: str | bytes) -> None:
        routed.append(data)
        arrived.set()

    try:
        async with asyncio.timeout(10), aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url, autoping=True, max_msg_size=MAX_MSG)
            assert route_data_frames(ws, on_frame, max_msg_size=MAX_MSG), "the fast path was not installed"
            receiving = asyncio.ensure_future(ws.receive())
            await ws.send_str("one")
            await arrived.wait()
            assert routed == ["echo one"]
            assert not receiving.done()
            arrived.clear()
            await ws.send_str("ping me")  # the server pings; receive() answers it (autoping) as before
            await arrived.wait()
            assert routed[-1] == "pong PONG b'x'"
            await ws.send_str("bye")
            closed = await receiving
            assert closed.type is aiohttp.WSMsgType.CLOSE
            assert closed.data == 4001

            ws = await session.ws_connect(url, autoping=True, max_msg_size=MAX_MSG)
            assert route_data_frames(ws, on_frame, max_msg_size=MAX_MSG)
            await ws.send_str("big")  # over the limit the new parser was given: the connection ends
            ended = await ws.receive()
            assert ended.type is aiohttp.WSMsgType.ERROR
            assert routed[-1] != "x" * (MAX_MSG + 1)
    finally:
        await runner.cleanup()


async def test_nothing_changes_when_frames_already_arrived() -> None:
    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("early")
        await ws.receive()
        return ws

    runner, url = await _serve(handler)
    try:
        async with asyncio.timeout(10), aiohttp.ClientSession() as session:
            ws = await session.ws_connect(url)
            while not ws._reader._buffer:  # the early frame reached the queue
                await asyncio.sleep(0.01)
            assert not route_data_frames(ws, lambda data: None, max_msg_size=MAX_MSG)
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.TEXT
            assert message.data == "early"
            await ws.close()
    finally:
        await runner.cleanup()
