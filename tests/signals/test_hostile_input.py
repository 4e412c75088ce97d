"""The webhook under hostile input: decimals bounded by value (not by length), GTD end times that cannot
become an order refused at the door, a timestamp window that takes only a number of seconds, and clients that
hang up mid-body costing one throttled log line, not a traceback each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import orjson
import pytest

from engine.clock import ManualClock
from engine.errors import InvalidValue
from engine.signals.auth import SignalAuthenticator, SignalAuthError
from engine.signals.model import InvalidSignal, parse_signal
from tests.signals.test_webhook import Hook, serve_hook, signal_body
from tests.support.hostile_values import EDGE_DECIMALS, EDGE_TIMES, HOSTILE_DECIMALS, OFF_CALENDAR_TIMES
from tests.support.keys import new_webhook_secret

NOW = 1_700_000_000.0


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    async for served in serve_hook():
        yield served


def _limit(**fields: object) -> bytes:
    document: dict[str, object] = {
        "id": "h-1", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit", "size": "1",
        "limit_price": "100",
    }  # fmt: skip
    return orjson.dumps(document | fields)


# -- decimals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "reason"), HOSTILE_DECIMALS, ids=[t[:24] for t, _ in HOSTILE_DECIMALS])
@pytest.mark.parametrize("field", ["size", "limit_price"])
def test_hostile_decimals_are_refused_naming_the_field(field: str, text: str, reason: str) -> None:
    with pytest.raises(InvalidSignal, match=reason) as caught:
        parse_signal(_limit(**{field: text}))
    assert caught.value.field == field
    assert isinstance(caught.value, InvalidValue)
    assert len(str(caught.value)) < 100


@pytest.mark.parametrize("number", ["1e999999", "1E+400", "-1e308", "1e-400", "123456789012345678901"])
def test_hostile_json_numbers_are_refused(number: str) -> None:
    body = _limit().replace(b'"size":"1"', b'"size":' + number.encode())
    with pytest.raises(InvalidSignal) as caught:
        parse_signal(body)
    assert caught.value.field in ("size", "body")


@pytest.mark.parametrize(("text", "value"), EDGE_DECIMALS)
def test_edge_decimals_are_taken_and_round_trip(text: str, value: str) -> None:
    signal = parse_signal(_limit(size=text))
    assert signal.size == Decimal(value)
    assert parse_signal(signal.to_json()) == signal
    assert len(signal.configuration.fragment()["base_size"]) <= 35


async def test_a_huge_exponent_size_is_400_not_202(hook: Hook) -> None:
    for text in ("1E+999999", "1e999999", "9E+99999"):
        status, body, _ = await hook.post(signal_body(quote_size=text))
        assert status == 400
        assert body["field"] == "quote_size"
        assert len(orjson.dumps(body)) < 200
    assert hook.queue.depth == 0


# -- GTD end times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("end_time", OFF_CALENDAR_TIMES)
@pytest.mark.parametrize("order_type", ["limit", "stop_limit"])
def test_end_times_the_builder_cannot_build_are_refused_at_the_door(order_type: str, end_time: str) -> None:
    extra = {"stop_price": "100"} if order_type == "stop_limit" else {}
    body = _limit(order_type=order_type, time_in_force="GTD", end_time=end_time, **extra)
    with pytest.raises(InvalidSignal, match="outside the calendar") as caught:
        parse_signal(body)
    assert caught.value.field == "end_time"


@pytest.mark.parametrize("end_time", EDGE_TIMES)
def test_end_times_at_the_edge_build_their_order(end_time: str) -> None:
    signal = parse_signal(_limit(time_in_force="GTD", end_time=end_time))
    assert signal.configuration.fragment()["end_time"].endswith("Z")
    assert parse_signal(signal.to_json()) == signal


async def test_an_off_calendar_end_time_is_400_over_http(hook: Hook) -> None:
    for n, end_time in enumerate(OFF_CALENDAR_TIMES):
        body = _limit(id=f"gtd-{n}", time_in_force="GTD", end_time=end_time)
        status, answer, _ = await hook.post(body)
        assert (status, answer["field"]) == (400, "end_time"), end_time
    assert hook.queue.depth == 0


# -- the timestamp window ---------------------------------------------------------------------------------

MALFORMED_TIMESTAMPS = [
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1.7e9",
    "1700000000e0",
    "1E+999999",
    " 1700000000",
    "1700000000 ",
    "1700000000\t",
    "1700000000\n",
    "1_700_000_000",
    "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits: float() takes them
    "+1700000000",
    "-1700000000",
    "0x6553f100",
    "1700000000.",
    ".5",
    "1700000000.1234567890",
    "1" * 40,
    "1700000000,5",
]


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS, ids=[repr(t)[:24] for t in MALFORMED_TIMESTAMPS])
def test_the_window_refuses_anything_but_a_number_of_seconds(timestamp: str) -> None:
    auth = SignalAuthenticator([new_webhook_secret()], clock=ManualClock(now=NOW))
    body = signal_body()
    _, signature = auth.sign(body, timestamp)  # correctly signed: only the timestamp is wrong
    with pytest.raises(SignalAuthError) as caught:
        auth.verify(timestamp, signature, body)
    assert caught.value.reason == "malformed"


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [("1700000000", None), ("1700000000.5", None), ("1699999970", None), ("1700000030", None),
     ("1699999969.9", "stale"), ("1700000030.1", "future"), ("0", "stale"), ("999999999999", "future")],
)  # fmt: skip
def test_the_window_is_30_seconds_either_way(timestamp: str, reason: str | None) -> None:
    auth = SignalAuthenticator([new_webhook_secret()], clock=ManualClock(now=NOW))
    body = signal_body()
    _, signature = auth.sign(body, timestamp)
    if reason is None:
        auth.verify(timestamp, signature, body)
    else:
        with pytest.raises(SignalAuthError) as caught:
            auth.verify(timestamp, signature, body)
        assert caught.value.reason == reason


async def test_a_non_finite_timestamp_is_401_over_http(hook: Hook) -> None:
    for timestamp in ("nan", "inf", "1E+999999", "1_700_000_000", "-nan"):
        status, body, _ = await hook.post(signal_body(), timestamp=timestamp)
        assert (status, body["reason"]) == (401, "malformed"), timestamp
    assert hook.queue.depth == 0
    assert (await hook.post(signal_body()))[0] == 202  # and a proper timestamp still goes through


# -- clients that hang up ---------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def every_log_record() -> Iterator[_Records]:
    handler, root = _Records(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


SLOW_CLIENTS = 120


async def test_many_clients_hanging_up_mid_body_cost_one_log_line(every_log_record: _Records) -> None:
    async for hook in serve_hook():
        port = int(hook.url.rsplit(":", 1)[1])
        body = signal_body("slow-1")
        timestamp, signature = hook.auth.sign(body)
        head = (
            f"POST /signals HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Signal-Timestamp: {timestamp}\r\nX-Signal-Signature: {signature}\r\n"
        ).encode()

        started = time.monotonic()
        await asyncio.gather(*(_slow_client(port, head, body, n) for n in range(SLOW_CLIENTS)))
        hung_up = SLOW_CLIENTS - SLOW_CLIENTS // 3  # the others sent a broken chunk (the server may hang up)
        # wait until the webhook has seen every connection end (nothing timed: the loop just settles)
        while hook.webhook.refused["disconnected"] < hung_up and time.monotonic() - started < 30:
            await asyncio.sleep(0.02)
        assert hung_up <= hook.webhook.refused["disconnected"] <= SLOW_CLIENTS
        status, _, _ = await hook.post(body)
        assert status == 202  # the webhook still serves; the hung-up signal never counted as seen

    loud = [r for r in every_log_record.records if r.levelno >= logging.WARNING]
    assert loud == [], [r.getMessage()[:200] for r in loud]
    assert not any(r.exc_info or r.exc_text for r in every_log_record.records)
    about_clients = [r for r in every_log_record.records if "signal client" in r.getMessage()]
    assert len(about_clients) == 1, [r.getMessage() for r in about_clients]
    assert not [r for r in every_log_record.records if r.name.startswith("aiohttp")]


async def _slow_client(port: int, head: bytes, body: bytes, n: int) -> None:
    """A client that trickles part of a body, then hangs up (RST or FIN), or sends a broken chunk."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    chunked = n % 3 == 2
    if chunked:
        writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n5\r\n" + body[:5] + b"\r\n")
    else:
        writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode())
    await writer.drain()
    for piece in (body[5:8], body[8:12]):  # a trickle of the body
        await asyncio.sleep(0.01)
        writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
        await writer.drain()
    if chunked:
        writer.write(b"zz\r\n")  # not a chunk size: the server drops the connection
        with contextlib.suppress(ConnectionError):
            await writer.drain()
    if n % 3 == 0:
        writer.transport.abort()  # RST
    else:
        writer.close()  # FIN
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def test_a_signal_built_directly_is_checked_like_a_parsed_one() -> None:
    from datetime import datetime

    from engine.signals.model import OrderType, Side, Signal, TimeInForce

    with pytest.raises(InvalidSignal, match="outside the calendar") as caught:
        Signal(
            "direct-1", "BTC-USD", Side.BUY, OrderType.LIMIT, size=Decimal(1), limit_price=Decimal(1),
            time_in_force=TimeInForce.GTD, end_time=datetime.fromisoformat(OFF_CALENDAR_TIMES[0]),
        )  # fmt: skip
    assert caught.value.field == "end_time"
    with pytest.raises(InvalidSignal, match="too large") as caught:
        Signal("direct-2", "BTC-USD", Side.BUY, OrderType.MARKET, size=Decimal("1E+999999"))
    assert caught.value.field == "size"


async def test_a_client_trickling_its_body_forever_gets_408(every_log_record: _Records) -> None:
    async for hook in serve_hook(body_timeout_s=0.2):
        port = int(hook.url.rsplit(":", 1)[1])
        body = signal_body("trickle-1")
        timestamp, signature = hook.auth.sign(body)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /signals HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
            f"X-Signal-Timestamp: {timestamp}\r\nX-Signal-Signature: {signature}\r\n\r\n".encode()
            + body[:10]
        )
        await writer.drain()
        async with asyncio.timeout(20):
            status_line = await reader.readline()  # the rest never comes; the answer does
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        assert status_line.startswith(b"HTTP/1.1 408"), status_line
        assert hook.webhook.refused["slow"] == 1
        assert hook.queue.depth == 0
    assert not [r for r in every_log_record.records if r.levelno >= logging.WARNING]


async def test_a_flood_of_unauthenticated_requests_costs_one_log_line(every_log_record: _Records) -> None:
    async for hook in serve_hook():
        stale = str(int(time.time()) - 3600)
        cases = [("nan", None), (stale, None), (None, "00" * 32)] * 20
        for timestamp, signature in cases:
            status, _, _ = await hook.post(signal_body(), timestamp=timestamp, signature=signature)
            assert status == 401
        assert hook.webhook.refused["unauthenticated"] == len(cases)
    about = [r for r in every_log_record.records if "unauthenticated" in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in about]
    assert "(malformed)" in about[0].getMessage()  # the first one is logged at once, with its reason
