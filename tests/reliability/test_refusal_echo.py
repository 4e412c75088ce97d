"""A request the simulator's server cannot parse is refused without quoting it.

aiohttp's own 400 puts its parser's message in the body, and that message quotes the offending bytes: for a
header line over 8190 bytes, its first hundred, which in `Authorization` or a `CB-ACCESS-*` header are the
credential itself. Each row here carries a fresh secret in the part aiohttp refuses; the answer must keep
aiohttp's 400, name the kind of mistake, and repeat no 8 characters of the secret, in its head, its body or
the simulator's log line about it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable

import pytest

from engine.sim import Simulator
from tests.sim.conftest import quiet_config
from tests.support.hostile import echoes_in
from tests.support.leaks import observe

_LINE = b"GET /api/v3/brokerage/accounts HTTP/1.1\r\n"
_HOST = b"Host: 127.0.0.1\r\n"


def _header(name: bytes, secret: bytes, tail: bytes = b"") -> bytes:
    return _LINE + _HOST + name + b": " + secret + tail + b"\r\n\r\n"


# (name, the request built around the secret, the kind of mistake the refusal names)
ROWS: list[tuple[str, Callable[[bytes], bytes], str]] = [
    (
        "Authorization over 8190 bytes",
        lambda s: _header(b"Authorization", b"Bearer " + s * 400),
        "LineTooLong",
    ),
    ("CB-ACCESS-SIGN over 8190 bytes", lambda s: _header(b"CB-ACCESS-SIGN", s * 400), "LineTooLong"),
    ("CB-ACCESS-KEY over 8190 bytes", lambda s: _header(b"CB-ACCESS-KEY", s * 400), "LineTooLong"),
    (
        "CB-ACCESS-PASSPHRASE over 8190 bytes",
        lambda s: _header(b"CB-ACCESS-PASSPHRASE", s * 400),
        "LineTooLong",
    ),
    (
        "a request target over 8190 bytes",
        lambda s: b"GET /?jwt=" + s * 400 + b" HTTP/1.1\r\n" + _HOST + b"\r\n",
        "LineTooLong",
    ),
    (
        "a NUL in Authorization",
        lambda s: _header(b"Authorization", b"Bearer " + s, b"\x00"),
        "BadHttpMessage",
    ),
    (
        "a NUL in CB-ACCESS-PASSPHRASE",
        lambda s: _header(b"CB-ACCESS-PASSPHRASE", s, b"\x00"),
        "BadHttpMessage",
    ),
    ("a secret as a header name", lambda s: _LINE + _HOST + s + b" x: y\r\n\r\n", "BadHttpMessage"),
    (
        "a secret in a line without a colon",
        lambda s: _LINE + _HOST + b"CB-ACCESS-SIGN " + s + b"\r\n\r\n",
        "BadHttpMessage",
    ),
    ("a secret in a bad method", lambda s: s + b"\x01 / HTTP/1.1\r\n" + _HOST + b"\r\n", "BadHttpMethod"),
    ("a secret in a bad version", lambda s: b"GET / HTTP/" + s + b"\r\n" + _HOST + b"\r\n", "BadStatusLine"),
]


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, int]]:
    async with Simulator(quiet_config(request_timeout_s=2.0)).serve() as base_url:
        host, port = base_url.split("://", 1)[1].rsplit(":", 1)
        yield host, int(port)


async def _send(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(), 5.0)  # the refusal closes the connection
    except ConnectionResetError:  # refused before all was read: what arrived is the answer
        return b""
    finally:
        writer.close()


@pytest.mark.parametrize(("name", "build", "kind"), ROWS, ids=[row[0] for row in ROWS])
async def test_an_unparsable_request_is_refused_without_quoting_it(
    name: str,
    build: Callable[[bytes], bytes],
    kind: str,
    served: tuple[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = secrets.token_urlsafe(24).replace("-", "x").replace("_", "y").encode()
    caplog.set_level(logging.DEBUG, logger="engine.sim.aiohttp")
    answer = await _send(*served, build(secret))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400 Bad Request\r\n") or head.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert body.startswith(b"400: Bad Request"), body[:300]
    assert kind in body.decode(), body
    text = answer.decode("latin-1")
    observe(text, f"refusal of {name}")
    assert echoes_in(text, secret.decode()) == [], f"the refusal repeats the secret: {text[:300]!r}"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert echoes_in(logged, secret.decode()) == [], f"the log repeats the secret: {logged[:300]!r}"
