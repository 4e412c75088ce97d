"""Ids in request paths: text that would change the request (`?`, `#`, `/`, `..`, `%`, spaces, control and
non-ASCII characters) is refused with `InvalidValue` naming the parameter, before anything is sent; plain ids
go through. Against the simulator, counting the requests it saw."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from engine import Client
from engine.errors import InvalidValue, NotFound
from engine.net.paths import path_segment
from tests.client.conftest import SimEnv

HOSTILE_IDS = [
    "abc?limit=1",
    "abc#fragment",
    "../accounts",
    "..",
    ".",
    "a/b",
    "a%2Fb",
    "%2e%2e",
    "a b",
    "",
    "a\x00b",
    "a\r\nX-Injected: 1",
    "caf\u00e9",
    "x" * 129,
    "BTC-USD/../../key_permissions",
]

# (method, the parameter it names, a call on a CDP client or an Exchange client)
Call = Callable[[Client, str], Awaitable[Any]]
CDP_CALLS: list[tuple[str, str, Call]] = [
    ("get_order", "order_id", lambda c, v: c.get_order(v)),
    ("account", "account_uuid", lambda c, v: c.account(v)),
    ("product", "product_id", lambda c, v: c.product(v)),
    ("futures.position", "product_id", lambda c, v: c.futures.position(v)),
]
EXCHANGE_CALLS: list[tuple[str, str, Call]] = [
    ("exchange.get_order", "order_id", lambda c, v: c.exchange.get_order(v)),
    ("exchange.get_order_by_client_oid", "client_oid", lambda c, v: c.exchange.get_order_by_client_oid(v)),
    ("exchange.cancel_order", "order_id", lambda c, v: c.exchange.cancel_order(v)),
]


@pytest.mark.parametrize("value", HOSTILE_IDS, ids=[repr(v)[:24] for v in HOSTILE_IDS])
def test_path_segment_refuses_text_that_is_not_an_id(value: str) -> None:
    with pytest.raises(InvalidValue) as caught:
        path_segment(value, "order_id")
    assert caught.value.field == "order_id"
    assert value not in str(caught.value) or len(value) < 2


@pytest.mark.parametrize(
    "value",
    [
        "BTC-USD",
        "BIT-28JUL23-CDE",
        "0f8c7a3e-2d5b-4c1e-9a77-3b2c1d0e9f8a",
        "client:eng-s-1",
        "a.b_c~d",
        "x" * 128,
    ],
)
def test_path_segment_keeps_plain_ids(value: str) -> None:
    assert path_segment(value, "order_id") == value


async def test_cdp_client_refuses_hostile_ids_before_sending(env: SimEnv) -> None:
    async with env.client() as client:
        before = env.sim.request_count(env.cdp.name)
        for name, parameter, call in CDP_CALLS:
            for value in HOSTILE_IDS:
                with pytest.raises(InvalidValue) as caught:
                    await call(client, value)
                assert caught.value.field == parameter, (name, value)
        assert env.sim.request_count(env.cdp.name) == before  # nothing reached the exchange
        with pytest.raises(NotFound):  # a plain id is sent, and the exchange answers for it
            await client.get_order("0f8c7a3e-2d5b-4c1e-9a77-3b2c1d0e9f8a")
        assert env.sim.request_count(env.cdp.name) == before + 1


async def test_exchange_client_refuses_hostile_ids_before_sending(env: SimEnv) -> None:
    async with env.exchange_client() as client:
        before = env.sim.request_count(env.exchange.key)
        for name, parameter, call in EXCHANGE_CALLS:
            for value in HOSTILE_IDS:
                with pytest.raises(InvalidValue) as caught:
                    await call(client, value)
                assert caught.value.field == parameter, (name, value)
        with pytest.raises(InvalidValue, match="client_oid"):
            await client.exchange.create_order("BTC-USD", "buy", size="0.01", price="1", client_oid="a?b=c")
        assert env.sim.request_count(env.exchange.key) == before
