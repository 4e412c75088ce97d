"""Hostile and broken input gets the gateway's JSON-RPC error, on every transport, and the socket stays
usable: never a crash, a 5xx or a hung connection."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from engine.sim.derivatives.config import Credits
from tests.derivatives.sim.conftest import Gateway, serve_gateway

BTC = "BTC_USDC-PERPETUAL"
BIG = "x" * (33 * 1024)

# (frame as sent, expected error code, expected id in the reply)
FRAMES: list[tuple[str, bytes | str, int, Any]] = [
    ("not json", b"{nope", -32700, None),
    ("truncated", '{"jsonrpc":"2.0","id":1,"method":"public/te', -32700, None),
    ("an array (batch)", '[{"jsonrpc":"2.0","id":1,"method":"public/test"}]', -32600, None),
    ("a bare number", "42", -32600, None),
    ("no id", '{"jsonrpc":"2.0","method":"public/test","params":{}}', -32600, None),
    ("id an object", '{"jsonrpc":"2.0","id":{},"method":"public/test"}', -32600, None),
    ("no method", '{"jsonrpc":"2.0","id":3,"params":{}}', -32600, 3),
    ("method a number", '{"jsonrpc":"2.0","id":4,"method":7}', -32600, 4),
    ("unknown method", '{"jsonrpc":"2.0","id":5,"method":"public/nope"}', -32601, 5),
    ("positional params", '{"jsonrpc":"2.0","id":6,"method":"public/test","params":[1]}', -32602, 6),
    (
        "oversized",
        orjson.dumps({"jsonrpc": "2.0", "id": 7, "method": "public/test", "params": {"p": BIG}}),
        -32600,
        7,
    ),
]

# (params of private/buy, expected code, the param named in the error)
PARAMS: list[tuple[dict[str, Any], int, str | None]] = [
    ({}, -32602, "instrument_name"),
    ({"instrument_name": 5, "amount": 1}, -32602, "instrument_name"),
    ({"instrument_name": "NOPE-PERPETUAL", "amount": 1}, -32602, "instrument_name"),
    ({"instrument_name": BTC}, -32602, "amount"),
    ({"instrument_name": BTC, "amount": "lots"}, -32602, "amount"),
    ({"instrument_name": BTC, "amount": True}, -32602, "amount"),
    ({"instrument_name": BTC, "amount": [1]}, -32602, "amount"),
    ({"instrument_name": BTC, "amount": -1, "price": 100}, -32602, "amount"),
    ({"instrument_name": BTC, "amount": 1e300, "price": 100}, -32602, "amount"),
    ({"instrument_name": BTC, "amount": 0.01}, -32602, "price"),
    ({"instrument_name": BTC, "amount": 0.01, "price": "NaN"}, -32602, "price"),
    ({"instrument_name": BTC, "amount": 0.01, "type": "moon", "price": 100}, -32602, "type"),
    (
        {"instrument_name": BTC, "amount": 0.01, "price": 100, "time_in_force": "forever"},
        -32602,
        "time_in_force",
    ),
    ({"instrument_name": BTC, "amount": 0.01, "price": 100, "post_only": "yes"}, -32602, "post_only"),
    ({"instrument_name": BTC, "amount": 0.01, "price": 100, "label": "l" * 65}, -32602, "label"),
    ({"instrument_name": BTC, "amount": 0.01, "price": 100, "valid_until": "soon"}, -32602, "valid_until"),
    ({"instrument_name": BTC, "amount": 0.01, "type": "stop_market"}, -32602, "trigger"),
    (
        {"instrument_name": BTC, "amount": 0.01, "type": "stop_market", "trigger": "mark_price"},
        -32602,
        "trigger_price",
    ),
    (
        {"instrument_name": BTC, "amount": 0.01, "type": "market", "linked_order_type": "all"},
        -32602,
        "linked_order_type",
    ),
    (
        {
            "instrument_name": BTC,
            "amount": 0.01,
            "type": "market",
            "linked_order_type": "one_cancels_other",
            "otoco_config": "x",
        },
        -32602,
        "otoco_config",
    ),
]


@pytest.mark.parametrize(("name", "frame", "code", "request_id"), FRAMES, ids=[f[0] for f in FRAMES])
async def test_bad_frames_on_the_trading_socket(
    gateway: Gateway, name: str, frame: bytes | str, code: int, request_id: Any
) -> None:
    socket = await gateway.trading()
    await socket.send_raw(frame)
    reply = await socket.reply(request_id)
    assert reply["error"]["code"] == code, reply
    assert (await socket.call("public/test", {}))["version"]  # the socket still answers


@pytest.mark.parametrize(("name", "frame", "code", "request_id"), FRAMES, ids=[f[0] for f in FRAMES])
async def test_bad_frames_on_the_streams_socket(
    gateway: Gateway, name: str, frame: bytes | str, code: int, request_id: Any
) -> None:
    socket = await gateway.streams()
    await socket.send_raw(frame)
    reply = await socket.reply(request_id)
    assert reply["error"]["code"] in (code, -32601), reply
    assert (await socket.call("public/test", {}))["version"]


@pytest.mark.parametrize(("name", "frame", "code", "request_id"), FRAMES, ids=[f[0] for f in FRAMES])
async def test_bad_bodies_over_http(
    gateway: Gateway, name: str, frame: bytes | str, code: int, request_id: Any
) -> None:
    body = frame.encode() if isinstance(frame, str) else frame
    status, reply = await gateway.post("", body=body, path="/api/v2")
    if name == "no id":  # over HTTP a request without an id is what the official SDK sends
        assert status == 200
        return
    assert status == 400, (status, reply)
    assert reply["error"]["code"] == code, reply


@pytest.mark.parametrize(("params", "code", "param"), PARAMS, ids=[str(i) for i in range(len(PARAMS))])
async def test_wrong_or_missing_params(
    gateway: Gateway, params: dict[str, Any], code: int, param: str | None
) -> None:
    socket = await gateway.trading()
    reply = await socket.request("private/buy", params)
    assert reply["error"]["code"] == code, reply
    assert reply["error"]["data"]["param"] == param
    token = await gateway.token()
    status, body = await gateway.post("private/buy", params, token)
    assert (status, body["error"]["code"]) == (400, code)


async def test_a_frame_far_over_the_limit_gets_an_error_not_a_hang(gateway: Gateway) -> None:
    socket = await gateway.trading()
    await socket.send_raw("{" + "x" * (200 * 1024))
    reply = await socket.reply(None)
    assert reply["error"]["code"] == -32600
    assert (await socket.call("public/test", {}))["version"]
    status, body = await gateway.post("", body=b"[" * (64 * 1024), path="/api/v2/public/test")
    assert status == 400
    assert body["error"]["code"] == -32600


HOSTILE: list[Any] = [
    None,
    True,
    0,
    -1,
    1,
    2**70,
    1e308,
    -1e-300,
    "",
    "x" * 300,
    "NaN",
    "Infinity",
    "1e999999",
    "-0",
    [],
    [1, "a"],
    {},
    {"a": {"b": []}},
    BTC,
    "ETH_USDC-PERPETUAL",
    "USDC",
    "any",
    "limit",
    "market",
    "stop_market",
    "mark_price",
    0.0001,
    0.5,
    60000,
    "grid",
    ["book.x.100ms"],
    [{"type": 1}],
]
NAMES = [
    "instrument_name",
    "amount",
    "contracts",
    "price",
    "type",
    "label",
    "currency",
    "order_id",
    "depth",
    "trigger",
    "trigger_price",
    "trigger_offset",
    "time_in_force",
    "post_only",
    "reduce_only",
    "valid_until",
    "linked_order_type",
    "otoco_config",
    "start_timestamp",
    "end_timestamp",
    "resolution",
    "count",
    "sorting",
    "leverage",
    "index_name",
    "channels",
    "interval",
    "scope",
    "detailed",
    "kind",
    "expired",
    "grant_type",
    "token",
    "access_token",
    "expected_result",
]


async def test_every_method_survives_random_hostile_params() -> None:
    """A seeded fuzz of every method in the table: each call gets a result or a typed error, never an
    internal error, and the socket keeps answering (credits lifted: 600 calls would exhaust them)."""
    async with serve_gateway(credits=Credits(enabled=False)) as gateway:
        await _fuzz(gateway)


async def _fuzz(gateway: Gateway) -> None:
    rng = random.Random(20261202)
    socket = await gateway.trading()
    methods = sorted(m for m in gateway.sim.derivatives.table.methods if m != "private/logout")
    internal: list[tuple[str, dict[str, Any]]] = []
    answered = 0
    for _ in range(600):
        method = rng.choice(methods)
        params = {name: rng.choice(HOSTILE) for name in rng.sample(NAMES, rng.randint(0, 6))}
        request_id = rng.getrandbits(31)
        frame = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        await socket.send_raw(json.dumps(frame))  # the standard library writes integers past 64 bits
        reply = await socket.reply(request_id)
        if "error" in reply:
            assert isinstance(reply["error"]["code"], int), reply
            if reply["error"]["code"] == -32603:
                internal.append((method, params))
        else:
            answered += 1
    assert internal == []
    assert answered > 60, answered  # the fuzz reaches the handlers, not only the param checks
    assert (await socket.call("public/test", {}))["version"]
