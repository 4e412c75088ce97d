"""Requests written straight onto aiohttp's pooled connections: the REST transport's order path.

`ClientSession.request` serves every use of HTTP: cookies, redirects, proxies, middlewares, traces, payload
types, a request and a response object per call. On our machine that generality costs 100-150 µs before an
order's first byte is written when a tick finds the caches cold, most of the tick-to-wire budget; the lane
takes about 20 µs (BENCHMARKS.md). The engine's requests need none of it: fixed headers and an exact body.

`RequestLane` keeps what aiohttp does well, its connection pool (keep-alive, limits, TLS, DNS cache) and its
C response parser, and does the rest itself: the request head is formatted exactly as aiohttp formats it
(the tests compare the bytes), head and body go out in one write, and only then is the response awaited.
What it raises matches `session.request`: aiohttp's connection and payload errors, `ConnectionTimeoutError`
when no connection came in time, `TimeoutError` when the response did not. An idempotent request that finds
its pooled connection dead is sent once more, as aiohttp does; anything else is the caller's to retry.

It uses aiohttp below the session: `ClientRequest` as a connection key, `BaseConnector.connect`,
`Connection.release`/`close` and the response protocol's `set_response_params`/`read`. pyproject.toml pins
aiohttp to the minor versions it is tested with; tests/client/test_lane_aiohttp.py names any of these that a
new aiohttp changes, and tests/client/test_lane.py compares the bytes on the wire with `session.request`'s.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp.client_reqrep import RequestInfo
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

if TYPE_CHECKING:
    from aiohttp.connector import Connection

__all__ = ["RequestLane"]

# aiohttp's own header check (http_writer._safe_header): a control character in a header would let a value
# end its line and start another (header injection); CR and LF are the ones that matter.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BODYLESS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))  # no Content-Length when there is no body
_POSTLIKE = frozenset(("POST", "PUT", "PATCH"))  # aiohttp labels an empty body of these octet-stream
_IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"))


class RequestLane:
    """HTTP/1.1 requests to one origin over a session's connector, with the session's `static_headers`."""

    __slots__ = ("_connect_timeout", "_connector", "_origin", "_static", "_template")

    def __init__(
        self, session: aiohttp.ClientSession, origin: URL, static_headers: Mapping[str, str]
    ) -> None:
        loop = asyncio.get_running_loop()
        # What the connector needs to find or open a connection, built once: the same connection key as the
        # session's own requests to this origin (ssl=True, its default), so both share one pool.
        self._template = aiohttp.ClientRequest("GET", origin, loop=loop, session=session, ssl=True)
        self._connector = session.connector
        self._origin = origin
        host = origin.host_port_subcomponent
        lines = [f"Host: {host}\r\n"]
        for name, value in static_headers.items():
            _check(name, value)
            lines.append(f"{name}: {value}\r\n")
        self._static = "".join(lines)
        self._connect_timeout = aiohttp.ClientTimeout(connect=session.timeout.connect)

    def head(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> str:
        """Request line and headers in aiohttp's order: Host, the static ones, the request's own, length."""
        if _FORBIDDEN.search(target) is not None or " " in target:
            raise ValueError(f"request target {target!r} has a space or a control character")
        parts = [method, " ", target, " HTTP/1.1\r\n", self._static]
        for name, value in headers.items():
            if _FORBIDDEN.search(value) is not None:
                raise ValueError(f"header {name} has a control character (header injection?)")
            parts += (name, ": ", value, "\r\n")
        if body is not None:
            parts += ("Content-Length: ", str(len(body)), "\r\n\r\n")
        elif method in _BODYLESS:
            parts.append("\r\n")
        elif method in _POSTLIKE:
            parts.append("Content-Length: 0\r\nContent-Type: application/octet-stream\r\n\r\n")
        else:
            parts.append("Content-Length: 0\r\n\r\n")
        return "".join(parts)

    async def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
    ) -> tuple[int, bytes, CIMultiDictProxy[str]]:
        """(status, body, headers) of one request; `target` is path and query, `timeout_s` bounds it all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        wire = self.head(method, target, headers, body).encode()
        if body:
            wire += body
        retry_dead_connection = method in _IDEMPOTENT
        while True:
            connection = await self._connection()
            try:
                return await self._exchange(connection, wire, deadline)
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                if not retry_dead_connection:
                    raise
                retry_dead_connection = False  # a pooled connection died under us: once more, as aiohttp

    async def _connection(self) -> Connection:
        try:
            connector = self._connector
            assert connector is not None
            return await connector.connect(self._template, [], self._connect_timeout)
        except TimeoutError as exc:
            raise aiohttp.ConnectionTimeoutError(f"Connection timeout to host {self._origin}") from exc

    async def _exchange(
        self, connection: Connection, wire: bytes, deadline: float
    ) -> tuple[int, bytes, CIMultiDictProxy[str]]:
        protocol = connection.protocol
        try:
            transport = protocol.transport if protocol is not None else None
            if protocol is None or transport is None or transport.is_closing():
                raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")
            transport.write(wire)
            # Only now the parser: nothing can arrive before this returns (data is delivered on a later turn
            # of the loop), and aiohttp hands the parser anything the connection buffered before.
            protocol.set_response_params(auto_decompress=True)
            async with asyncio.timeout_at(deadline):
                while True:
                    try:
                        message, payload = await protocol.read()
                    except HttpProcessingError as exc:
                        raise aiohttp.ClientResponseError(
                            self._request_info(wire),
                            (),
                            status=exc.code,
                            message=exc.message,
                            headers=exc.headers,
                        ) from exc
                    if not 100 <= message.code <= 199 or message.code == 101:
                        break  # 1xx interim responses are skipped, as aiohttp does
                data = await payload.read()
        except BaseException:
            connection.close()  # a half-read or unanswered exchange leaves the connection unusable
            raise
        connection.release()  # back to the pool, unless the response said to close it
        return message.code, data, message.headers

    def _request_info(self, wire: bytes) -> RequestInfo:
        method, target, _ = wire.split(b" ", 2)
        url = self._origin.join(URL(target.decode(), encoded=True))
        return RequestInfo(url, method.decode(), CIMultiDictProxy(CIMultiDict()), url)


def _check(name: str, value: str) -> None:
    if _FORBIDDEN.search(name) is not None or _FORBIDDEN.search(value) is not None:
        raise ValueError(f"header {name!r} has a control character")
