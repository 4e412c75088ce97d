"""The simulator's HTTP lane (engine/sim/server.py): it answers what it serves exactly as aiohttp did, and
hands aiohttp everything else, on the same connection, byte for byte."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from http import HTTPStatus

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from engine.sim import Simulator
from engine.sim.orders import OrderSpec
from engine.sim.server import Router, parse_head
from tests.sim.conftest import mint, quiet_config
from tests.support.keys import TestKey, new_ed25519_key

FAULTS = "/sim/faults"
ACCOUNTS = "/api/v3/brokerage/accounts"


class Raw:
    """One TCP connection to the simulator, spoken to in raw HTTP/1.1."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def response(self) -> tuple[bytes, dict[str, str], bytes]:
        """(status line, headers by lower-case name, body) of the next response."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        lines = head.decode().split("\r\n")[:-2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(": ")
            headers[name.lower()] = value
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return lines[0].encode(), headers, body

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""


@pytest.fixture
async def sim_key() -> AsyncIterator[tuple[Simulator, str, TestKey]]:
    sim = Simulator(quiet_config())
    key = new_ed25519_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve() as base_url:
        yield sim, base_url.split("://", 1)[1], key


async def connect(host: str) -> Raw:
    address, port = host.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(address, int(port))
    return Raw(reader, writer, host)


def get(path: str, host: str, *extra: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", f"Host: {host}", *extra, "", ""]).encode()


def post(path: str, host: str, body: bytes, *extra: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}", *extra, "", ""]
    return "\r\n".join(head).encode() + body


def _without_date(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != "date"}


# ---- routing -------------------------------------------------------------------------------------------
def test_the_lane_resolves_every_path_to_the_route_aiohttp_resolves() -> None:
    sim = Simulator(quiet_config())
    routes = sim.routes()
    template_of = {id(handler): (method, path) for method, path, handler in routes}
    router, app = Router(), sim.build_app()
    for method, path, handler in routes:
        router.add(method, path, handler)
    app.freeze()
    methods = sorted({method for method, _, _ in routes} | {"PUT"})
    paths = {re.sub(r"\{[^}]+\}", "BTC-USD", path) for _, path, _ in routes}
    paths |= {p + "/" for p in paths} | {
        "/",
        "/nope",
        "/api/v3/brokerage/orders/historical/x/y",
        "/sim/book/",
    }

    async def compare() -> None:
        for method in methods:
            for path in sorted(paths):
                match = await app.router.resolve(make_mocked_request(method, path, app=app))
                resolved = router.resolve(method, path)
                if method == "GET" and path == "/":  # the Exchange feed's WebSocket: aiohttp's alone
                    assert resolved is None
                    continue
                if match.http_exception is not None:  # 404 or 405: the lane hands such requests to aiohttp
                    assert resolved is None, (method, path)
                    continue
                assert resolved is not None, (method, path)
                handler, params = resolved
                resource = match.route.resource
                assert resource is not None
                assert template_of[id(handler)] == (match.route.method, resource.canonical)
                assert params == dict(match), (method, path)

    asyncio.run(compare())


# ---- what the lane serves ------------------------------------------------------------------------------
async def test_lane_responses_are_what_aiohttp_answers_for_the_same_request(
    sim_key: tuple[Simulator, str, TestKey],
) -> None:
    _, host, key = sim_key
    unknown_order = "/api/v3/brokerage/orders/historical/nope"

    def requests(nonce: str) -> list[bytes]:
        """The same requests, with tokens of their own (or the second run would be refused as replays)."""
        token = "Authorization: Bearer " + mint(key, f"GET {host}{ACCOUNTS}", nonce=nonce + "1")
        return [
            get(FAULTS, host),
            post(FAULTS, host, b'{"latency_ms": 0}', "Content-Type: application/json"),
            get(ACCOUNTS, host),  # 401, text/plain, x-sim-auth-failure
            get(ACCOUNTS, host, token),
            get(ACCOUNTS, host, token),  # replayed
            get(unknown_order, host, "Authorization: Bearer " + mint(key, f"GET {host}{unknown_order}")),
            get(FAULTS, host, "Connection: close"),
        ]

    lane = await connect(host)
    on_lane = []
    for request in requests("a"):
        lane.send(request)
        on_lane.append(await lane.response())
    assert await lane.closed()

    handed = await connect(host)
    handed.send(get("/nope", host))  # the lane hands this connection to aiohttp: it answers from now on
    assert (await handed.response())[0] == b"HTTP/1.1 404 Not Found"
    for request, (status, headers, body) in zip(requests("b"), on_lane, strict=True):
        handed.send(request)
        aio_status, aio_headers, aio_body = await handed.response()
        assert (status, _without_date(headers)) == (aio_status, _without_date(aio_headers))
        assert list(headers) == list(aio_headers)  # same headers in the same order
        assert body == aio_body
    assert await handed.closed()
    assert [status for status, _, _ in on_lane] == [
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 401 Unauthorized",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 401 Unauthorized",
        b"HTTP/1.1 404 Not Found",
        b"HTTP/1.1 200 OK",
    ]
    assert on_lane[4][1]["x-sim-auth-failure"] == "replayed"
    assert on_lane[-1][1]["connection"] == "close"


async def test_pipelined_and_fragmented_requests_are_served_in_order(
    sim_key: tuple[Simulator, str, TestKey],
) -> None:
    _, host, _ = sim_key
    raw = await connect(host)
    body = b'{"latency_ms": 2}'
    # a handler that suspends (injected latency) holds the requests behind it until it has answered
    raw.send(post(FAULTS, host, body) + get(FAULTS, host) + get("/sim/stats?timestamps=0", host))
    first, second, third = [await raw.response() for _ in range(3)]
    assert orjson.loads(first[2])["latency_ms"] == 2
    assert orjson.loads(second[2])["latency_ms"] == 2
    assert "auth_failures" in orjson.loads(third[2])
    message = post(FAULTS, host, b'{"latency_ms": 0}')
    for i in range(len(message)):  # one byte at a time
        raw.send(message[i : i + 1])
        await raw.writer.drain()
    assert orjson.loads((await raw.response())[2])["latency_ms"] == 0
    raw.writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /nope HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 404 Not Found"),
        (b"DELETE /sim/faults HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed"),
        (b"GET /sim/faults HTTP/1.0\r\nHost: h\r\n\r\n", b"HTTP/1.0 200 OK"),
        (b"GET /sim/faults HTTP/1.1\r\n\r\n", b"HTTP/1.0 400 Bad Request"),  # no Host
        (b"GET /sim/faults HTTP/1.1\r\nHost: h\r\nBad Header: x\r\n\r\n", b"HTTP/1.0 400 Bad Request"),
        (b"GET /sim/fa%75lts HTTP/1.1\r\nHost: h\r\n\r\n", b"HTTP/1.1 200 OK"),  # escapes: aiohttp decodes
        (
            b"POST /sim/faults HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'7\r\n{"clear\r\n8\r\n": true}\r\n0\r\n\r\n',
            b"HTTP/1.1 200 OK",
        ),
        (
            b"POST /sim/faults HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n{}",
            b"HTTP/1.1 100 Continue",
        ),
        (
            b"POST /sim/faults HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s"
            % ((1 << 20) + 1, b" " * ((1 << 20) + 1)),
            b"HTTP/1.1 413 " + HTTPStatus(413).phrase.encode(),  # "Content Too Large" from 3.13 on (RFC 9110)
        ),
    ],
)
async def test_what_the_lane_does_not_serve_aiohttp_answers(
    sim_key: tuple[Simulator, str, TestKey], request_bytes: bytes, status: bytes
) -> None:
    raw = await connect(sim_key[1])
    raw.send(request_bytes)
    line = await asyncio.wait_for(raw.reader.readline(), 5)
    assert line.rstrip(b"\r\n") == status
    raw.writer.close()


async def test_the_lane_decodes_queries_as_aiohttp_does(sim_key: tuple[Simulator, str, TestKey]) -> None:
    sim, host, _ = sim_key
    spec = OrderSpec.parse({"limit_limit_gtc": {"base_size": "0.001", "limit_price": "1000.00"}})
    sim.engine.submit("a b!", "BTC-USD", "BUY", spec)
    raw = await connect(host)
    for query in ("client_order_id=a+b%21", "client_order_id=a%20b!", "client_order_id=a+b"):
        raw.send(get(f"{FAULTS.replace('faults', 'ledger')}?{query}", host))
        status, _, body = await raw.response()
        assert status == b"HTTP/1.1 200 OK"
        assert orjson.loads(body)["count"] == (1 if query.endswith(("%21", "!")) else 0), query
    raw.writer.close()


def test_parse_head_refuses_what_it_does_not_fully_understand() -> None:
    good = b"GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer t\r\nContent-Length: 3"
    head = parse_head(good)
    assert head is not None
    assert (head.method, head.target, head.host, head.length, head.close) == ("GET", "/x", "h", 3, False)
    assert head.headers["authorization"] == "Bearer t"
    for bad in [
        b"GET /x HTTP/1.0\r\nHost: h",
        b"GET /x  HTTP/1.1\r\nHost: h",
        b"GET x HTTP/1.1\r\nHost: h",
        b"GET /x HTTP/1.1\r\nHost: h\r\nX: a\tb",  # a control character
        b"GET /x HTTP/1.1\r\nHost: h\nX: y",  # a bare LF
        b"GET /x HTTP/1.1\r\nHost: h\r\n folded",
        b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 1",
        b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: -1",
        b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket",
        b"GET /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked",
        b"GET /x HTTP/1.1\r\nHost: h\r\nX-\xc3\xa9: 1",
        b"GET /x HTTP/1.1\r\nX: 1",
    ]:
        assert parse_head(bad) is None, bad
    closing = parse_head(b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, close")
    assert closing is not None
    assert closing.close


async def test_a_handler_error_is_a_500_as_aiohttp_answers_it(
    sim_key: tuple[Simulator, str, TestKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, host, _ = sim_key

    def broken(self: object) -> dict[str, object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(type(sim.faults), "to_dict", broken)
    answers = []
    for first in (b"", get("/nope", host)):  # on the lane, then on a connection aiohttp serves
        raw = await connect(host)
        raw.send(first + get(FAULTS, host))
        if first:
            await raw.response()
        status, headers, body = await raw.response()
        answers.append((status, _without_date(headers), body))
        assert await raw.closed()
    assert answers[0] == answers[1]
    assert answers[0][0] == b"HTTP/1.1 500 Internal Server Error"
