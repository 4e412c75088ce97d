"""The request lane (engine.net.lane) against a scripted HTTP/1.1 server on loopback.

The lane writes requests itself onto aiohttp's pooled connections, so these tests hold it to what aiohttp
does: the same bytes on the wire as `session.request` for every shape of request the client sends, the same
errors, the same pool, and no request sent twice unless aiohttp would resend it too (idempotent methods on a
dead keep-alive connection).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from yarl import URL

from engine import Client
from engine.auth import CdpKey
from engine.errors import ExchangeUnavailable
from engine.net.lane import RequestLane
from engine.net.retry import RetryPolicy
from engine.sim import Simulator
from engine.venues.advanced.orders import LimitGtc, OrderRequest, Side
from tests.sim.conftest import Tls, quiet_config
from tests.support.keys import new_ed25519_key

STATIC = {"Accept": "application/json", "Accept-Encoding": "identity", "User-Agent": "engine-test"}
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

# (a connection's number, the request's number on it) -> the bytes to answer with; None: close unanswered
Script = Callable[[int, int], "bytes | None"]


@dataclass
class ScriptedServer:
    """Reads whole requests (head plus Content-Length body) and answers each as `script` says."""

    script: Script
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                served += 1
                answer = self.script(number, served)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def running(script: Script) -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer(script)
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    scripted.port = server.sockets[0].getsockname()[1]
    try:
        yield scripted
    finally:
        server.close()


def session() -> aiohttp.ClientSession:
    """A session configured as engine.net.transport configures its own."""
    return aiohttp.ClientSession(
        headers=STATIC,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=5, connect=2),
        trust_env=False,
    )


SHAPES = [
    (
        "POST",
        "/api/v3/brokerage/orders",
        b'{"side":"BUY"}',
        {"Content-Type": "application/json", "Authorization": "Bearer t.k.n"},
    ),
    (
        "GET",
        "/api/v3/brokerage/orders/historical/batch?order_status=OPEN&limit=1%2F2",
        None,
        {"Authorization": "Bearer t"},
    ),
    ("DELETE", "/api/v3/brokerage/portfolios/abc", None, {"Authorization": "Bearer t"}),
    ("POST", "/api/v3/brokerage/empty", None, {"Authorization": "Bearer t"}),
    ("GET", "/api/v3/brokerage/market/products", None, {}),
    (
        "POST",
        "/orders",
        b'{"a":1}',
        {
            "CB-ACCESS-KEY": "k",
            "CB-ACCESS-SIGN": "s+/=",
            "CB-ACCESS-TIMESTAMP": "1700000000",
            "CB-ACCESS-PASSPHRASE": "p",
            "Content-Type": "application/json",
        },
    ),
]


@pytest.mark.parametrize(
    ("method", "target", "body", "headers"), SHAPES, ids=[f"{s[0]} {s[1][:24]}" for s in SHAPES]
)
async def test_the_lane_writes_the_bytes_aiohttp_writes(
    method: str, target: str, body: bytes | None, headers: dict[str, str]
) -> None:
    async with running(lambda _c, _r: OK) as scripted, session() as client:
        origin = URL(f"http://127.0.0.1:{scripted.port}")
        url = URL(f"{origin}{target}", encoded=True)
        async with client.request(method, url, data=body, headers=headers) as response:
            assert response.status == 200
            await response.read()
        lane = RequestLane(client, origin, STATIC)
        status, payload, response_headers = await lane.request(method, target, headers, body, 5.0)
    assert (status, payload, response_headers["Content-Type"]) == (200, b"{}", "application/json")
    by_aiohttp, by_lane = scripted.requests
    assert by_lane == by_aiohttp


async def test_the_lane_shares_the_sessions_pool_and_keeps_connections_alive() -> None:
    async with running(lambda _c, _r: OK) as scripted, session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), STATIC)
        for _ in range(3):
            assert (await lane.request("GET", "/a", {}, None, 5.0))[0] == 200
        async with client.get(f"http://127.0.0.1:{scripted.port}/b") as response:
            await response.read()
        assert (await lane.request("POST", "/c", {}, b"{}", 5.0))[0] == 200
    assert scripted.connections == 1
    assert len(scripted.requests) == 5


async def test_a_header_that_would_inject_a_line_is_refused_before_anything_is_written() -> None:
    async with running(lambda _c, _r: OK) as scripted, session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), STATIC)
        with pytest.raises(ValueError, match="CB-ACCESS-PASSPHRASE has a control character") as refused:
            await lane.request("GET", "/a", {"CB-ACCESS-PASSPHRASE": "pass\r\nX-Evil: 1"}, None, 5.0)
        assert "pass" not in str(refused.value)  # the value may be a secret: never echoed
        with pytest.raises(ValueError, match="request target"):
            await lane.request("GET", "/a b", {}, None, 5.0)
        with pytest.raises(ValueError, match="control character"):
            RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), {"User-Agent": "x\ny"})
        assert (await lane.request("GET", "/ok", {}, None, 5.0))[0] == 200
    assert scripted.requests == [scripted.requests[-1]]  # only the valid request reached the server
    assert scripted.requests[0].startswith(b"GET /ok ")


def answer_once_then_hang_up(_connection: int, request: int) -> bytes | None:
    """Each connection answers its first request and closes on the second without a word: a keep-alive
    connection that died while pooled."""
    return OK if request == 1 else None


async def test_an_idempotent_request_on_a_dead_keep_alive_connection_is_sent_once_more() -> None:
    async with running(answer_once_then_hang_up) as scripted, session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), STATIC)
        assert (await lane.request("GET", "/first", {}, None, 5.0))[0] == 200
        assert (await lane.request("GET", "/second", {}, None, 5.0))[0] == 200
    assert [r.split(b" ")[1] for r in scripted.requests] == [b"/first", b"/second", b"/second"]
    assert scripted.connections == 2


async def test_an_order_on_a_dead_keep_alive_connection_is_not_sent_twice() -> None:
    async with running(answer_once_then_hang_up) as scripted, session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), STATIC)
        assert (await lane.request("POST", "/orders", {}, b'{"n":1}', 5.0))[0] == 200
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await lane.request("POST", "/orders", {}, b'{"n":2}', 5.0)
    assert [r.rsplit(b"\r\n", 1)[1] for r in scripted.requests] == [b'{"n":1}', b'{"n":2}']


def silent_on_the_first_connection(connection: int, _request: int) -> bytes | None:
    return OK if connection > 1 else b""  # the first connection takes the request and never answers


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_not_reused() -> None:
    async with running(silent_on_the_first_connection) as scripted, session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), STATIC)
        with pytest.raises(TimeoutError):
            await lane.request("POST", "/orders", {}, b"{}", 0.2)
        assert (await lane.request("GET", "/after", {}, None, 5.0))[0] == 200
    assert scripted.connections == 2  # the unanswered connection was closed, not pooled


async def test_a_cancelled_request_closes_its_connection() -> None:
    async with running(silent_on_the_first_connection) as scripted, session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), STATIC)
        pending = asyncio.ensure_future(lane.request("POST", "/orders", {}, b"{}", 5.0))
        while not scripted.requests:
            await asyncio.sleep(0.01)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert (await lane.request("GET", "/after", {}, None, 5.0))[0] == 200
    assert scripted.connections == 2


async def test_interim_responses_are_skipped_and_a_malformed_one_is_a_response_error() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + OK

    def interim_then_malformed(_connection: int, request: int) -> bytes:
        return interim if request == 1 else b"HTTP/1.1 2x0 Nope\r\n\r\n"

    async with running(interim_then_malformed) as scripted, session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{scripted.port}"), STATIC)
        status, payload, _ = await lane.request("GET", "/interim", {}, None, 5.0)
        assert (status, payload) == (200, b"{}")
        with pytest.raises(aiohttp.ClientResponseError) as malformed:
            await lane.request("GET", "/malformed", {}, None, 5.0)
        assert malformed.value.status == 400
        assert str(malformed.value.request_info.url).endswith("/malformed")


async def test_nothing_listening_is_a_connector_error() -> None:
    async with running(lambda _c, _r: OK) as scripted:
        port = scripted.port
    async with session() as client:
        lane = RequestLane(client, URL(f"http://127.0.0.1:{port}"), STATIC)
        with pytest.raises(aiohttp.ClientConnectorError):
            await lane.request("GET", "/a", {}, None, 5.0)


async def test_the_client_orders_through_the_lane_over_tls(tls: Tls) -> None:
    """The lane writes onto TLS connections as onto plain ones; an unknown CA fails as aiohttp fails it."""
    key = new_ed25519_key()
    sim = Simulator(quiet_config())
    sim.register_cdp_key(key.name, key.public_key_pem)
    trusted = ssl.create_default_context(cafile=str(tls.ca_path))
    async with sim.serve(ssl_context=tls.server_context) as base_url:
        cdp = CdpKey(key.name, key.private_key)
        async with Client(cdp, base_url, ssl_context=trusted, sync_clock=False) as client:
            assert client.transport._lane is not None
            request = OrderRequest(
                product_id="BTC-USD",
                side=Side.BUY,
                configuration=LimitGtc(base_size="0.01", limit_price="1000.00"),
            )
            placed = await client.submit_order(request)
            assert (await client.get_order(placed.order_id)).client_order_id == request.client_order_id
        async with Client(cdp, base_url, sync_clock=False, retry=RetryPolicy(max_attempts=1)) as untrusting:
            with pytest.raises(ExchangeUnavailable, match="cannot connect"):
                await untrusting.accounts()
    assert [order.client_order_id for order in sim.ledger] == [request.client_order_id]
