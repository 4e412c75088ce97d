"""Data frames of a client WebSocket handed to a callback as they are parsed, below `receive()`.

`ClientWebSocketResponse.receive` serves every use of a WebSocket: each message is queued by the parser,
wakes the task awaiting `receive()`, goes through its checks, and only then reaches the code that wanted it;
a JSON-RPC session then resolves the caller's future, a second wake. For a reply that is one loop turn and
a pass through `receive` per order. `route_data_frames` makes the parser hand each TEXT and BINARY message
to a callback from the connection's `data_received`, on the turn its bytes arrive; everything else (close,
ping, pong, errors, end of stream) still goes through the queue to `receive()`, which keeps answering pings
and closing as it does. The callback runs inside `data_received`: it must be quick and must not block.

It uses aiohttp below the session: the parser's queue (`WebSocketDataQueue`, whose `feed_data` the parser
calls for every message, overridable in a subclass) and `WebSocketReader`, the protocol's `set_parser`, and
the response's `_conn`, `_reader`, `_parser` and `_loop`. pyproject.toml pins aiohttp to the minor versions
this is tested with; tests/client/test_ws_fastpath_aiohttp.py names any of these that a new aiohttp changes.
When the installed aiohttp does not look like the tested one, nothing is changed and `route_data_frames`
returns False: the caller keeps reading data frames from `receive()`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

__all__ = ["DataFrameCallback", "route_data_frames"]

log = logging.getLogger("engine.net")

DataFrameCallback = Callable[[str | bytes], None]

_TEXT = aiohttp.WSMsgType.TEXT
_BINARY = aiohttp.WSMsgType.BINARY

try:
    from aiohttp._websocket import reader as _reader_module
except ImportError:  # an aiohttp that moved it: the plain receive loop
    _reader_module = None  # type: ignore[assignment]

# The compiled classes when aiohttp has them, as `receive()` uses them; typed loosely, they are internals.
WebSocketDataQueue: type[Any] | None = getattr(_reader_module, "WebSocketDataQueue", None)
WebSocketReader: type[Any] | None = getattr(_reader_module, "WebSocketReader", None)


def _queue_class() -> type[Any] | None:
    if WebSocketDataQueue is None:
        return None

    class DataFrameQueue(WebSocketDataQueue):  # type: ignore[misc, valid-type]
        """The parser's queue: data messages go to the callback, the others are queued as before."""

        def __init__(
            self,
            protocol: Any,
            limit: int,
            *,
            loop: asyncio.AbstractEventLoop,
            on_frame: DataFrameCallback,
        ) -> None:
            super().__init__(protocol, limit, loop=loop)
            self.on_frame = on_frame

        def feed_data(self, data: Any, size: int) -> None:
            kind = data[0]
            if kind is _TEXT or kind is _BINARY:
                try:
                    self.on_frame(data[1])
                except Exception:  # raised into data_received, it would end the connection
                    log.exception("a WebSocket frame callback failed")
                return
            super().feed_data(data, size)

    return DataFrameQueue


_DataFrameQueue = _queue_class()


def route_data_frames(
    ws: aiohttp.ClientWebSocketResponse, on_frame: DataFrameCallback, *, max_msg_size: int
) -> bool:
    """Hand `ws`'s data frames to `on_frame` from now on; False (nothing changed) when it cannot.

    Call it right after `ws_connect` returned, before anything was sent: the parser is replaced by one that
    starts at a frame boundary, and it is only replaced when nothing has been received yet. `max_msg_size`
    is the limit `ws_connect` was given (the new parser enforces it: a larger message ends the connection).
    The text of TEXT frames is decoded (and checked as UTF-8) as `receive()` would.
    """
    if _DataFrameQueue is None or WebSocketReader is None:
        return False
    try:
        connection: Any = ws._conn
        protocol: Any = connection.protocol if connection is not None else None
        queue: Any = ws._reader
        parser = ws._parser
        loop = ws._loop
        if (
            protocol is None
            or ws.closed
            or ws.compress
            or protocol._payload is not queue
            or protocol._payload_parser is not parser
            or queue._buffer
            or queue.is_eof()
        ):
            return False  # not the state ws_connect leaves, or frames already arrived
        limit = queue._limit // 2  # the queue keeps twice the limit it is built with
        data_received_cb = protocol._data_received_cb
        routed = _DataFrameQueue(protocol, limit, loop=loop, on_frame=on_frame)
        parser = WebSocketReader(routed, max_msg_size, compress=False, decode_text=True)
    except (AttributeError, TypeError):  # an aiohttp whose internals differ: nothing was changed
        return False
    ws._reader = routed
    ws._parser = parser
    protocol.set_parser(parser, routed, data_received_cb=data_received_cb)
    return True
