"""The request and response the simulator's handlers see: plain objects holding only what a handler reads.

They are built by the simulator's own HTTP/1.1 lane (`server.py`) with no per-request machinery beyond what a
handler uses, or adapted from an aiohttp request for connections that aiohttp serves (`from_aiohttp`,
`to_aiohttp`), so a handler behaves the same whichever way its request arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from multidict import MultiMapping
from yarl import URL

if TYPE_CHECKING:
    from engine.sim.auth import CdpKey, ExchangeKey


class SimRequest:
    """One request: method, target, headers, body, and what the gateway learned about its caller.

    `raw_path` is the request target as sent (path and query); `path` and `match_info` are decoded, and
    `query`/`query_string` are decoded on first use, exactly as aiohttp decodes them (through yarl).
    """

    __slots__ = (
        "_query",
        "_query_string",
        "_raw_query",
        "body",
        "cdp_key",
        "exchange_key",
        "headers",
        "host",
        "match_info",
        "method",
        "path",
        "raw_path",
        "remote",
        "transport",
    )

    def __init__(
        self,
        method: str,
        raw_path: str,
        path: str,
        raw_query: str,
        headers: Mapping[str, str],
        host: str,
        remote: str | None,
        match_info: Mapping[str, str],
        body: bytes,
        transport: asyncio.Transport | None,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.path = path
        self._raw_query = raw_query
        self._query: MultiMapping[str] | None = None
        self._query_string: str | None = None
        self.headers = headers
        self.host = host
        self.remote = remote
        self.match_info = match_info
        self.body = body
        self.transport = transport
        self.cdp_key: CdpKey | None = None  # set by the gateway once a JWT is verified
        self.exchange_key: ExchangeKey | None = None  # set by the gateway once an HMAC signature is verified

    async def read(self) -> bytes:
        return self.body

    def _url(self) -> URL:
        return URL.build(path="/", query_string=self._raw_query, encoded=True)

    @property
    def query(self) -> MultiMapping[str]:
        if self._query is None:
            self._query = self._url().query
        return self._query

    @property
    def query_string(self) -> str:
        if self._query_string is None:
            self._query_string = self._url().query_string if self._raw_query else ""
        return self._query_string


class SimResponse:
    """Status, content type, body bytes, and any further headers (in the order they were set)."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(self, body: bytes, status: int = 200, content_type: str = "application/json") -> None:
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers: dict[str, str] = {}


Handler = Callable[[SimRequest], Coroutine[Any, Any, SimResponse]]


async def from_aiohttp(request: web.Request, read_timeout_s: float | None = None) -> SimRequest:
    """The same request as aiohttp parsed it (for connections handed to aiohttp: upgrades, odd framing).

    A body that has not arrived within `read_timeout_s` (a chunked body that never ends) is answered 408
    and the connection closed, as the simulator's own lane answers a request that stops arriving; a client
    that goes away mid-body is no error of the simulator's, and is not logged as one.
    """
    try:
        async with asyncio.timeout(read_timeout_s):
            body = await request.read()
    except TimeoutError:
        raise web.HTTPRequestTimeout(headers={"Connection": "close"}) from None
    except ConnectionResetError:  # the client went away mid-body: nobody to answer, nothing of ours failed
        raise web.HTTPBadRequest(headers={"Connection": "close"}) from None
    sim_request = SimRequest(
        request.method,
        request.raw_path,
        request.path,
        request.raw_path.partition("?")[2],
        request.headers,
        request.host,
        request.remote,
        dict(request.match_info),
        body,
        request.transport,
    )
    sim_request._query = request.query
    sim_request._query_string = request.query_string
    return sim_request


def to_aiohttp(response: SimResponse) -> web.Response:
    out = web.Response(body=response.body, status=response.status, content_type=response.content_type)
    for name, value in response.headers.items():
        out.headers[name] = value
    return out


def aiohttp_handler(
    handler: Handler, read_timeout_s: float | None = None
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`handler` as an aiohttp route handler."""

    async def adapted(request: web.Request) -> web.StreamResponse:
        return to_aiohttp(await handler(await from_aiohttp(request, read_timeout_s)))

    return adapted
