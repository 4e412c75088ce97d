"""Hostile input, surface by surface: every malformed or hostile request gets a 4xx (or Coinbase's refused
order), never a 5xx, never a hung connection, and never places an order.

One list of rows per surface the simulator serves. To cover a new surface, or new endpoints of one, add a
list and register it: HTTP rows (REST, JSON-RPC over HTTP) are `Row`s in `SURFACES`, sent signed as their
`auth` says; WebSocket surfaces (market data, JSON-RPC over WebSocket) are `WsSurface`s in `WS_SURFACES`,
each with its hostile frames and a probe it must still answer after each one. Raw HTTP is its own table.
The machinery is in `tests/sim/hostile.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import orjson
import pytest

from engine.sim import Simulator
from tests.sim.conftest import mint, quiet_config
from tests.sim.hostile import (
    DROP,
    HANG_S,
    Frame,
    Row,
    Target,
    WsSurface,
    answered,
    bad_request,
    hmac_headers,
    ok,
    unauthorized,
)
from tests.support.keys import new_es256_key, new_exchange_key

P = "/api/v3/brokerage"
FUTURE = "2031-01-01T00:00:00Z"

# ---- hostile values ----------------------------------------------------------------------------------------
# decimals as a careless or hostile client sends them: every one is refused wherever a price or size goes
HOSTILE_DECIMALS: list[Any] = [
    "1E+999999",
    "1e999999999",
    "NaN",
    "nan",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "-0",
    "0",
    "-1",
    "1e-999999",
    "1" * 1000,
    "0." + "0" * 998 + "1",
    "1_000",
    " 1",
    "1 ",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: Decimal() reads it as 1
    "0x10",
    "1e",
    ".",
    "",
    "1,5",
    True,
    1.5,
    10**30,
    [],
    {},
]
# times (end_time, start_date, end_date) that are not RFC 3339 times a calendar holds
HOSTILE_TIMES: list[Any] = [
    "0001-01-01T00:00:00+14:00",  # before the calendar's first instant in UTC
    "9999-12-31T23:59:59-14:00",  # after its last
    "nan",
    "2031-13-01T00:00:00Z",
    "2031-02-30T00:00:00Z",
    "2031-01-01T25:00:00Z",
    "2031-01-01T00:00:60Z",
    "+02031-01-01T00:00:00Z",
    "2031-01-01T00:00:00.1234567890Z",
    "1" * 1000,
    "",
    5,
    None,
]

# every order configuration Coinbase documents, valid, and the fields a hostile value is put in
CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "market_market_ioc": {"quote_size": "10"},
    "market_market_fok": {"base_size": "0.001"},
    "sor_limit_ioc": {"base_size": "0.001", "limit_price": "100.00"},
    "limit_limit_gtc": {"base_size": "0.001", "limit_price": "100.00"},
    "limit_limit_gtd": {"base_size": "0.001", "limit_price": "100.00", "end_time": FUTURE},
    "limit_limit_fok": {"base_size": "0.001", "limit_price": "100.00"},
    "stop_limit_stop_limit_gtc": {
        "base_size": "0.001",
        "limit_price": "100.00",
        "stop_price": "110.00",
        "stop_direction": "STOP_DIRECTION_STOP_DOWN",
    },
    "stop_limit_stop_limit_gtd": {
        "base_size": "0.001",
        "limit_price": "100.00",
        "stop_price": "110.00",
        "stop_direction": "STOP_DIRECTION_STOP_DOWN",
        "end_time": FUTURE,
    },
    "trigger_bracket_gtc": {"base_size": "0.001", "limit_price": "100.00", "stop_trigger_price": "90.00"},
    "trigger_bracket_gtd": {
        "base_size": "0.001",
        "limit_price": "100.00",
        "stop_trigger_price": "90.00",
        "end_time": FUTURE,
    },
    "twap_limit_gtd": {"quote_size": "10", "limit_price": "100.00", "end_time": FUTURE},
    "scaled_limit_gtc": {
        "base_size": "0.002",
        "min_price": "100.00",
        "max_price": "101.00",
        "orders": [
            {"base_size": "0.001", "limit_price": "100.00"},
            {"base_size": "0.001", "limit_price": "101.00"},
        ],
    },
}
_DECIMAL_FIELDS = {
    "quote_size",
    "base_size",
    "limit_price",
    "stop_price",
    "stop_trigger_price",
    "min_price",
    "max_price",
}


def _order(config_key: str, config: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "client_order_id": f"hostile-{config_key}-{n}",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {config_key: config},
    }


def _configuration_rows(path: str, tag: str) -> Iterator[Row]:
    """Each hostile value in each decimal and time field of each configuration, and in each scaled child."""
    n = 0
    for key, valid in CONFIGURATIONS.items():
        for name in valid:
            values = (
                HOSTILE_DECIMALS if name in _DECIMAL_FIELDS else HOSTILE_TIMES if name == "end_time" else []
            )
            for value in values:
                if key == "scaled_limit_gtc" and value == "":
                    continue  # absent: its children give the sizes and prices, a valid order
                n += 1
                yield Row(
                    f"{tag} {key}.{name}={value!r:.40}",
                    "POST",
                    path,
                    _order(key, valid | {name: value}, n),
                    "jwt",
                )
    scaled = CONFIGURATIONS["scaled_limit_gtc"]
    for value in HOSTILE_DECIMALS:
        for name in ("base_size", "limit_price"):
            n += 1
            child = {"base_size": "0.001", "limit_price": "100.00"} | {name: value}
            config = scaled | {"orders": [child]}
            yield Row(
                f"{tag} scaled child {name}={value!r:.40}",
                "POST",
                path,
                _order("scaled_limit_gtc", config, n),
                "jwt",
            )
    for orders in ([1], ["x"], [None], [[1]], [True], [{"base_size": "0.001"}, 7], [{}]):
        n += 1
        yield Row(
            f"{tag} scaled orders={orders!r}",
            "POST",
            path,
            _order("scaled_limit_gtc", scaled | {"orders": orders}, n),
            "jwt",
        )


# ---- Advanced Trade private REST: hostile values from an authenticated key ---------------------------------
ADVANCED_PRIVATE: list[Row] = [
    *_configuration_rows(f"{P}/orders", "create"),
    *_configuration_rows(f"{P}/orders/preview", "preview"),
    *(
        Row(f"path {template.format(value)}", "GET", P + template.format(value), auth="jwt")
        for template in ("/orders/historical/{}", "/accounts/{}", "/cfm/positions/{}", "/products/{}/ticker")
        for value in ("%ff%fe", "..%2F..%2Fsim%2Ffaults", "%00", "\udce9", "x" * 4000, "%25%25", "a%20b")
    ),
    *(
        Row(
            f"edit {name}={value!r:.40}",
            "POST",
            f"{P}/orders/{kind}",
            {"order_id": "{order_id}", name: value},
            "jwt",
        )
        for kind in ("edit", "edit_preview")
        for name in ("size", "price")
        for value in HOSTILE_DECIMALS
        if value not in ("", 0, [], {})  # an empty value means "keep": the edit is then a valid no-op
    ),
    *(
        Row(
            f"edit order_id={value!r:.40}",
            "POST",
            f"{P}/orders/{kind}",
            {"order_id": value, "size": "0.002"},
            "jwt",
        )
        for kind in ("edit", "edit_preview")
        for value in (5, None, [], {}, "", "x" * 10000, "../orders", "\u0000")
    ),
    *(
        Row(
            f"list orders {name}={value!r:.40}",
            "GET",
            f"{P}/orders/historical/batch?{name}={value}",
            auth="jwt",
        )
        for name in ("start_date", "end_date")
        for value in (
            "nan",
            "2031-13-45T00:00:00Z",
            "0001-01-01T00:00:00%2B14:00",
            "9999-12-31T23:59:59-14:00",
            "x",
            "%ff",
            "1e999",
            "1" * 2000,
            "2031-01-01",
        )
    ),
    *(
        Row(f"{what} {name}={value}", "GET", f"{P}/{what}?{name}={value}", auth="jwt", expect=bad_request)
        for what in ("orders/historical/batch", "orders/historical/fills", "accounts")
        for name in ("limit", "cursor")
        for value in ("abc", "1.5", "1e3", "1" * 30, "%ff", "0x10", "%D9%A1")
    ),
    *(
        Row(
            f"product_book limit={value}",
            "GET",
            f"{P}/product_book?product_id=BTC-USD&limit={value}",
            auth="jwt",
        )
        for value in ("abc", "1.5", "1e3", "-1", "9" * 30, "0x10", "%D9%A1", "%205", "nan")
    ),
    *(
        Row(
            f"close_position size={value!r:.40}",
            "POST",
            f"{P}/orders/close_position",
            {"client_order_id": "c", "product_id": "BIP-20DEC30-CDE", "size": value},
            "jwt",
        )
        for value in HOSTILE_DECIMALS
        if value not in ("", 0, [], {})
    ),
    *(
        Row(
            f"sweep usd_amount={value!r:.40}",
            "POST",
            f"{P}/cfm/sweeps/schedule",
            {"usd_amount": value},
            "jwt",
        )
        for value in HOSTILE_DECIMALS
        if value not in ("",)
    ),
    *(
        Row(
            f"batch_cancel order_ids={value!r:.40}",
            "POST",
            f"{P}/orders/batch_cancel",
            {"order_ids": value},
            "jwt",
        )
        for value in ("x", [1], None, [[]], [None], {"a": 1})
    ),
    *(
        Row(f"orders body {name}", "POST", f"{P}/orders", body, "jwt")
        for name, body in {
            "not JSON": b"{",
            "NaN literal": b'{"client_order_id": NaN}',
            "a list": b"[]",
            "a string": b'"order"',
            "nested 5000 deep": b"[" * 5000 + b"]" * 5000,
            "not UTF-8": b'{"client_order_id": "\xff\xfe"}',
            "a NUL byte": b'{"client_order_id": "a\x00"}',
            "lone surrogate": b'{"client_order_id": "\\udc80"}',
            "configuration a list": _order("limit_limit_gtc", {}, 0) | {"order_configuration": []},
            "configuration two keys": _order("limit_limit_gtc", {}, 0)
            | {"order_configuration": {"a": {}, "b": {}}},
            "configuration a string": _order("limit_limit_gtc", {}, 0)
            | {"order_configuration": {"limit_limit_gtc": "x"}},
            "side 5": _order("limit_limit_gtc", CONFIGURATIONS["limit_limit_gtc"], 0) | {"side": 5},
            "product_id a list": _order("limit_limit_gtc", CONFIGURATIONS["limit_limit_gtc"], 0)
            | {"product_id": []},
            "client_order_id 5": _order("limit_limit_gtc", CONFIGURATIONS["limit_limit_gtc"], 0)
            | {"client_order_id": 5},
            "client_order_id huge": _order("limit_limit_gtc", CONFIGURATIONS["limit_limit_gtc"], 0)
            | {"client_order_id": "x" * 100_000},
        }.items()
    ),
]

# ---- Advanced Trade authentication: tokens and headers a hostile client sends ------------------------------
_ACCOUNTS = f"{P}/accounts"
_NOW = int(time.time())
ADVANCED_AUTH: list[Row] = [
    Row(
        "nbf and exp floats in the window",
        "GET",
        _ACCOUNTS,
        auth="jwt",
        claims={"nbf": lambda now: now - 1.5, "exp": lambda now: now + 100.25},
        expect=ok,
    ),
    *(
        Row(f"claims {claims}", "GET", _ACCOUNTS, auth="jwt", claims=claims, expect=unauthorized)
        for claims in (
            {"nbf": float("nan")},  # the standard json module spells it NaN: not JSON, so no claims at all
            {"exp": float("nan")},
            {"nbf": float("inf")},
            {"exp": float("inf")},
            {"nbf": float("-inf")},
            {"nbf": 1e300},
            {"exp": 1e300},
            {"nbf": -1e300},
            {"exp": 2**64},
            {"nbf": 10**30},
            {"nbf": -(2**63)},
            {"exp": -1},
            {"nbf": str(_NOW)},
            {"exp": "soon"},
            {"nbf": None},
            {"exp": True},
            {"nbf": [_NOW]},
            {"nbf": DROP},
            {"exp": DROP},
            {"exp": _NOW},  # a zero-length window: already over
        )
    ),
    *(
        Row(
            f"Authorization {value!r:.50}",
            "GET",
            _ACCOUNTS,
            headers=((b"Authorization", value),),
            expect=unauthorized,
        )
        for value in (
            b"Bearer \xe9\xe8\xff",
            b"Bearer eyJ\xe9.eyJ\xe9.sig\xe9",
            b"Bearer \xc3\xa9.\xc3\xa9.\xc3\xa9",  # UTF-8 for a non-ASCII token
            b"Bearer ",
            b"Bearer",
            b"bearer x.y.z",
            b"Basic dXNlcjpwYXNz",
            b"Bearer a.b.c.d",
            b"Bearer " + b"A" * 8000,
            b"Bearer ...",
        )
    ),
    # the host a token is judged against, with bytes no host has
    Row("Host latin-1", "GET", _ACCOUNTS, auth="jwt", headers=((b"Host", b"h\xe9st"),), expect=unauthorized),
    Row(
        "Host with a NUL", "GET", _ACCOUNTS, auth="jwt", headers=((b"Host", b"h\x00st"),), expect=bad_request
    ),
    Row(
        "a token longer than a header line",
        "GET",
        _ACCOUNTS,
        headers=((b"Authorization", b"Bearer " + b"A" * 9000),),
        expect=bad_request,
    ),
    Row("a path that is not UTF-8", "GET", f"{P}/accounts/\udcff\udcfe", auth="jwt"),
    *(
        Row(
            f"candles {name}={value}",
            "GET",
            f"{P}/products/BTC-USD/candles?granularity=ONE_MINUTE&{name}={value}",
            auth="jwt",
            expect=bad_request,
        )
        for name in ("start", "end", "limit")
        for value in ("abc", "1.5", "1e3", "-1", "9" * 30, "0x10", "%D9%A1", "nan", "%00")
    ),
    *(
        Row(
            f"candles granularity={value}",
            "GET",
            f"{P}/products/BTC-USD/candles?granularity={value}",
            auth="jwt",
        )
        for value in ("", "60", "ONE_WEEK", "%ff", "x" * 4000)
    ),
    Row(
        "candles over 350 buckets",
        "GET",
        f"{P}/products/BTC-USD/candles?granularity=ONE_MINUTE&start=0&end=99999",
        auth="jwt",
    ),
    *(
        Row(
            f"move_funds value={value!r:.40}",
            "POST",
            f"{P}/portfolios/move_funds",
            {
                "funds": {"value": value, "currency": "USD"},
                "source_portfolio_uuid": "a",
                "target_portfolio_uuid": "b",
            },
            "jwt",
        )
        for value in HOSTILE_DECIMALS
    ),
    *(
        Row(f"move_funds body {value!r:.40}", "POST", f"{P}/portfolios/move_funds", value, "jwt")
        for value in ({}, {"funds": "x"}, {"funds": {"value": "1", "currency": 5}}, [], "x", None)
    ),
    *(
        Row(f"create portfolio name={value!r:.40}", "POST", f"{P}/portfolios", {"name": value}, "jwt")
        for value in (None, 5, "", "   ", "x" * 200, [], {})
    ),
    *(
        Row(f"portfolio path {value}", method, f"{P}/portfolios/{value}", {"name": "n"}, "jwt")
        for method in ("GET", "PUT", "DELETE")
        for value in ("%ff%fe", "..%2F..%2Fsim%2Ffaults", "%00", "x" * 4000, "nope")
    ),
    *(
        Row(
            f"convert quote amount={value!r:.40}",
            "POST",
            f"{P}/convert/quote",
            {"from_account": "a", "to_account": "b", "amount": value},
            "jwt",
        )
        for value in HOSTILE_DECIMALS
    ),
    *(
        Row(
            f"convert quote accounts {value!r:.40}",
            "POST",
            f"{P}/convert/quote",
            {"from_account": value, "to_account": value, "amount": "1"},
            "jwt",
        )
        for value in (None, 5, [], {}, "", "x" * 4000)
    ),
    *(
        Row(
            f"convert trade {method} {value}",
            method,
            f"{P}/convert/trade/{value}",
            {"from_account": "a"},
            "jwt",
        )
        for method in ("GET", "POST")
        for value in ("%ff%fe", "%00", "x" * 4000, "nope")
    ),
    *(
        Row(f"payment method {value}", "GET", f"{P}/payment_methods/{value}", auth="jwt")
        for value in ("%ff%fe", "%00", "x" * 4000, "nope")
    ),
]

# ---- the public market endpoints (no key) ------------------------------------------------------------------
MARKET_PUBLIC: list[Row] = [
    *(
        Row(
            f"market product_book limit={value}",
            "GET",
            f"{P}/market/product_book?product_id=BTC-USD&limit={value}",
            expect=bad_request,
        )
        for value in ("abc", "1.5", "1e3", "-1", "9" * 30, "0x10", "%D9%A1", "nan", "%00", "1" * 5000)
    ),
    *(
        Row(
            f"market ticker limit={value}",
            "GET",
            f"{P}/market/products/BTC-USD/ticker?limit={value}",
            expect=bad_request,
        )
        for value in ("abc", "-5", "1e9999", "9" * 30, "%ff")
    ),
    Row("market product_book without product_id", "GET", f"{P}/market/product_book"),
    *(
        Row(
            f"market candles {name}={value}",
            "GET",
            f"{P}/market/products/BTC-USD/candles?granularity=FIVE_MINUTE&{name}={value}",
            expect=bad_request,
        )
        for name in ("start", "end", "limit")
        for value in ("abc", "1.5", "-1", "9" * 30, "%ff", "nan")
    ),
    *(
        Row(
            f"market ticker {name}={value}",
            "GET",
            f"{P}/market/products/BTC-USD/ticker?limit=5&{name}={value}",
            expect=bad_request,
        )
        for name in ("start", "end")
        for value in ("abc", "1.5", "-1", "9" * 30, "%ff", "nan")
    ),
    Row("market product_book product_id not UTF-8", "GET", f"{P}/market/product_book?product_id=%ff%fe"),
    Row("market product_book product_id NUL", "GET", f"{P}/market/product_book?product_id=%00"),
    Row("market product latin-1", "GET", f"{P}/market/products/BTC-\udce9"),
    Row("market product %ff", "GET", f"{P}/market/products/%ff"),
    Row("market product traversal", "GET", f"{P}/market/products/..%2F..%2Fsim%2Ffaults"),
    Row(
        "market products huge product_ids",
        "GET",
        f"{P}/market/products?product_ids=" + "X," * 3000,
        expect=answered,
    ),
    Row("market products type NUL", "GET", f"{P}/market/products?product_type=%00", expect=answered),
    Row("v2 exchange-rates currency not UTF-8", "GET", "/v2/exchange-rates?currency=%ff", expect=answered),
    Row("time with a latin-1 query", "GET", f"{P}/time?\udce9=\udcff", expect=answered),
]

# ---- Coinbase Exchange REST: hostile values from an authenticated key, and hostile authentication ----------
_EXCHANGE_LIMIT = {
    "product_id": "BTC-USD",
    "side": "buy",
    "type": "limit",
    "size": "0.001",
    "price": "100.00",
}
EXCHANGE: list[Row] = [
    *(
        Row(
            f"exchange limit {name}={value!r:.40}", "POST", "/orders", _EXCHANGE_LIMIT | {name: value}, "hmac"
        )
        for name in ("size", "price")
        for value in HOSTILE_DECIMALS
        if not isinstance(value, float)  # the Exchange API reads a JSON number as its decimal text
    ),
    *(
        Row(
            f"exchange market {name}={value!r:.40}",
            "POST",
            "/orders",
            {"product_id": "BTC-USD", "side": "buy", "type": "market", name: value},
            "hmac",
        )
        for name in ("size", "funds")
        for value in HOSTILE_DECIMALS
        if not isinstance(value, float)
    ),
    *(
        Row(
            f"exchange {name}={value!r:.40}",
            "POST",
            "/orders",
            _EXCHANGE_LIMIT | {name: value, "price": "NaN"},
            "hmac",
        )
        for name, value in (
            ("type", 5),
            ("type", "stop"),
            ("time_in_force", []),
            ("time_in_force", "gtc"),
            ("cancel_after", {"a": 1}),
            ("side", 5),
            ("side", "\u00e9"),
            ("product_id", None),
            ("product_id", "x" * 10000),
            ("client_oid", 5),
            ("post_only", "yes"),
        )
    ),
    Row("exchange body not JSON", "POST", "/orders", b"{", "hmac"),
    Row("exchange body a list", "POST", "/orders", b"[1]", "hmac"),
    Row("exchange body not UTF-8", "POST", "/orders", b'{"size": "\xff"}', "hmac"),
    Row("exchange body nested", "POST", "/orders", b"[" * 5000 + b"]" * 5000, "hmac"),
    *(
        Row(
            f"exchange orders limit={value}", "GET", f"/orders?limit={value}", auth="hmac", expect=bad_request
        )
        for value in ("abc", "1e999", "1.5", "1" * 5000, "%ff")
    ),
    Row("exchange orders status not UTF-8", "GET", "/orders?status=%ff", auth="hmac", expect=answered),
    Row("exchange order id not UTF-8", "GET", "/orders/%ff%fe", auth="hmac"),
    Row("exchange order id latin-1", "GET", "/orders/\udce9", auth="hmac"),
    Row("exchange order by client id NUL", "GET", "/orders/client:%00", auth="hmac"),
    Row("exchange cancel traversal", "DELETE", "/orders/..%2F..%2Fsim%2Ffaults", auth="hmac"),
    *(
        Row(f"exchange conversion {name}={value!r:.40}", "POST", "/conversions", body, "hmac")
        for name, value, body in (
            *(
                ("amount", v, {"from": "USD", "to": "USDC", "amount": v})
                for v in HOSTILE_DECIMALS
                if not isinstance(v, float)
            ),
            ("from", ["USD"], {"from": ["USD"], "to": "USDC", "amount": "1"}),
            ("to", {"a": 1}, {"from": "USD", "to": {"a": 1}, "amount": "1"}),
            ("from", None, {"to": "USDC", "amount": "1"}),
            ("to", "BTC", {"from": "USD", "to": "BTC", "amount": "1"}),
        )
    ),
    *(
        Row(f"exchange {path} {query}", "GET", f"{path}?{query}", auth=auth, expect=expect)
        for path, auth in (
            ("/products/BTC-USD/book", None),
            ("/products/BTC-USD/trades", None),
            ("/products/BTC-USD/candles", None),
            ("/fills", "hmac"),
            ("/orders", "hmac"),
        )
        for query, expect in (
            ("level=abc", answered),
            ("level=%D9%A1", answered),
            ("limit=1e999", answered),
            ("limit=-1", answered),
            ("before=abc", answered),
            ("after=1.5", answered),
            ("after=" + "9" * 400, answered),
            ("granularity=%D9%A1", answered),
            ("granularity=0", answered),
            ("start=nan&end=inf", answered),
            ("start=0001-01-01T00:00:00%2B14:00", answered),
            ("end=9999-12-31T23:59:59-14:00", answered),
            ("order_id=%ff&product_id=%00", answered),
            ("product_id=" + "x" * 5000, answered),
        )
    ),
    *(
        Row(f"exchange GET {path}", "GET", path, auth=auth, expect=answered)
        for path, auth in (
            ("/products/%ff", None),
            ("/products/BTC-USD%00/ticker", None),
            ("/products/..%2Fsim/stats", None),
            ("/currencies/\udce9", None),
            ("/currencies/" + "U" * 5000, None),
            ("/accounts/%00", "hmac"),
            ("/accounts/%ff/holds?limit=abc", "hmac"),
            ("/accounts/x/ledger?before=-1", "hmac"),
            ("/profiles/%ff%fe", "hmac"),
            ("/conversions/..%2F..", "hmac"),
        )
    ),
    Row(
        "exchange cancel all product not UTF-8",
        "DELETE",
        "/orders?product_id=%ff",
        auth="hmac",
        expect=answered,
    ),
]

_STALE, _AHEAD = "{now-45}", "{now+45}"  # outside the 30 s window, whenever the row is sent
EXCHANGE_AUTH: list[Row] = [
    # a correctly signed request whose timestamp is not a finite number of seconds within 30 s: refused
    *(
        Row(
            f"CB-ACCESS-TIMESTAMP {value!r}",
            "GET",
            "/accounts",
            auth="hmac",
            timestamp=value,
            expect=unauthorized,
        )
        for value in (
            "nan",
            "NaN",
            "-nan",
            "+nan",
            "nan(123)",
            "inf",
            "Infinity",
            "-inf",
            "-Infinity",
            "1e10",
            "1E3",
            "0x6553f100",
            "1_700_000_000",
            " {now}",
            "{now} ",
            "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
            "-1",
            "+{now}",
            "{now}.5",
            "9" * 400,
            "0",
            _STALE,
            _AHEAD,
        )
    ),
    Row("CB-ACCESS-TIMESTAMP empty", "GET", "/accounts", auth="hmac", timestamp="", expect=bad_request),
    # latin-1 bytes in each header: 401, as Coinbase answers
    *(
        Row(
            f"{name.decode()} latin-1",
            "GET",
            "/accounts",
            auth="hmac",
            headers=((name, value),),
            expect=unauthorized,
        )
        for name, value in (
            (b"CB-ACCESS-KEY", b"k\xe9y"),
            (b"CB-ACCESS-SIGN", b"\xff\xfe\xfd="),
            (b"CB-ACCESS-TIMESTAMP", b"17\xe90000000"),
            (b"CB-ACCESS-PASSPHRASE", b"p\xe9ss"),
            (b"CB-ACCESS-PASSPHRASE", b"\xc3\xa9"),  # UTF-8 for a non-ASCII passphrase
            (b"CB-ACCESS-SIGN", "é".encode()),
        )
    ),
    Row("a path that is not UTF-8, signed", "GET", "/orders/\udcff", auth="hmac", expect=answered),
]

# ---- the admin endpoints (/sim/...): loopback test controls ------------------------------------------------
ADMIN: list[Row] = [
    *(
        Row(f"faults {body!r:.60}", "POST", "/sim/faults", body, expect=bad_request)
        for body in (
            {"latency_ms": 1e308},
            {"latency_ms": -1},
            {"latency_ms": "10"},
            {"latency_ms": None},
            {"latency_ms": [1]},
            {"latency_ms": True},
            {"slow_response_s": 1e300},
            {"clock_offset_s": 1e300},
            {"clock_offset_s": -1e300},
            {"clock_offset_s": 10**30},
            {"storm_429_until": 1e300},
            {"error_5xx_rate": 2},
            {"error_5xx_rate": -0.5},
            {"no_such_fault": 1},
            {"jitter_ms": 1e20, "clear": True},
            b"{",
            b"[]",
            b'{"latency_ms": NaN}',
            b'{"clock_offset_s": Infinity}',
            b'{"clock_offset_s": -Infinity}',
            b'{"latency_ms": 1e400}',
            b"\xff",
        )
    ),
    *(
        Row(f"market {body!r:.60}", "POST", "/sim/market", body, expect=bad_request)
        for body in (
            {"mid": {"BTC-USD": "NaN"}},
            {"mid": {"BTC-USD": "1E+999999"}},
            {"mid": {"BTC-USD": "Infinity"}},
            {"mid": {"BTC-USD": "-1"}},
            {"mid": {"BTC-USD": [1]}},
            {"mid": {"BTC-USD": "1" * 1000}},
            {"mid": []},
            {"mid": "BTC-USD"},
            {"ticks": "many"},
            {"ticks": 10**12},
            {"ticks": -1},
            {"ticks": 1.5},
            b"not json",
        )
    ),
    Row("market unknown product", "POST", "/sim/market", {"mid": {"NOPE": "1"}}),
    Row("ledger client_order_id not UTF-8", "GET", "/sim/ledger?client_order_id=%ff", expect=answered),
    Row("book product NUL", "GET", "/sim/book/%00"),
    Row("book product latin-1", "GET", "/sim/book/\udce9"),
    Row("stats timestamps latin-1", "GET", "/sim/stats?timestamps=\udcff", expect=answered),
]

SURFACES: dict[str, list[Row]] = {
    "advanced_private": ADVANCED_PRIVATE,
    "advanced_auth": ADVANCED_AUTH,
    "market_public": MARKET_PUBLIC,
    "exchange": EXCHANGE,
    "exchange_auth": EXCHANGE_AUTH,
    "admin": ADMIN,
}


@pytest.fixture
async def target() -> AsyncIterator[tuple[Simulator, Target]]:
    sim = Simulator(quiet_config(request_timeout_s=0.5, keepalive_timeout_s=0.5))
    cdp_key, exchange_key = new_es256_key(), new_exchange_key()
    sim.register_cdp_key(cdp_key.name, cdp_key.public_key_pem)
    sim.register_exchange_key(exchange_key.key, exchange_key.secret, exchange_key.passphrase)
    async with sim.serve() as base_url:
        host, port = base_url.split("://", 1)[1].rsplit(":", 1)
        yield sim, Target(host, int(port), cdp_key, exchange_key)


@pytest.mark.parametrize("surface", list(SURFACES))
async def test_every_hostile_request_gets_a_4xx_or_a_refusal(
    surface: str, target: tuple[Simulator, Target]
) -> None:
    sim, served = target
    # one real resting order, so the edit rows edit something
    status, body = await served.send_raw(
        served.request(
            Row(
                "place",
                "POST",
                f"{P}/orders",
                _order("limit_limit_gtc", CONFIGURATIONS["limit_limit_gtc"], 0),
                "jwt",
            )
        )
    ) or (0, b"")
    assert status == 200, body
    assert orjson.loads(body)["success"], body
    served.context["order_id"] = orjson.loads(body)["order_id"]
    faults_before = sim.faults.to_dict()
    mid_before = {pid: m.mid for pid, m in sim.markets.items()}

    rows = SURFACES[surface]
    assert len(rows) >= 10
    failures = await served.judge(rows)

    assert not failures, f"{len(failures)} of {len(rows)} rows failed:\n" + "\n".join(failures)
    assert len(sim.ledger) == 1, "a hostile request placed an order"
    assert sim.faults.to_dict() == faults_before, "a refused fault update changed a fault"
    assert {pid: m.mid for pid, m in sim.markets.items()} == mid_before, "a refused steer moved the market"
    order = sim.engine.orders[served.context["order_id"]]
    assert (order.spec.base_size, order.spec.limit_price) == (D("0.001"), D("100.00")), (
        "a refused edit edited"
    )


# ---- the 30-second HMAC window against a replay ------------------------------------------------------------
async def test_a_captured_exchange_request_goes_stale_whatever_its_timestamp_says(
    target: tuple[Simulator, Target],
) -> None:
    """The attack the window exists for: a signed order, captured and replayed later. With a timestamp that is
    not a finite number (`nan` passed the old window), it is refused from the start; with a real one, it is
    accepted once and refused once the server's clock has moved 45 s on."""
    sim, served = target
    body = json.dumps(_EXCHANGE_LIMIT | {"client_oid": "replayed"}).encode()

    def captured(timestamp: str) -> bytes:
        head = b"POST /orders HTTP/1.1\r\nHost: " + served.authority.encode() + b"\r\n"
        for name, value in hmac_headers(served.exchange_key, timestamp, "POST", b"/orders", body):
            head += name + b": " + value + b"\r\n"
        return (
            head
            + b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )

    for spelling in ("nan", "NaN", "-nan", "inf", "-Infinity"):
        assert await served.send_raw(captured(spelling)) == (401, b'{"message":"invalid timestamp"}')
    request = captured(f"{sim.clock.now():.3f}")
    first = await served.send_raw(request)
    assert first is not None
    assert first[0] == 200, first
    sim.faults.update({"clock_offset_s": 45.0})  # 45 s later, by the server's clock
    assert await served.send_raw(request) == (401, b'{"message":"request timestamp expired"}')
    assert len(sim.ledger) == 1


# ---- the WebSocket: hostile subscribe frames ---------------------------------------------------------------
def _ws_rows(token: str) -> list[tuple[str, Frame]]:
    """(name, frame): text frames as str, binary as bytes."""
    return [
        ("not JSON", "{"),
        ("a list", "[]"),
        ("a number", "5"),
        ("a string", '"subscribe"'),
        ("null", "null"),
        ("NaN literal", '{"type": NaN}'),
        ("no channel", '{"type": "subscribe"}'),
        ("channel a number", '{"type": "subscribe", "channel": 5}'),
        ("unknown channel", '{"type": "subscribe", "channel": "' + "x" * 10000 + '"}'),
        ("product_ids a string", '{"type": "subscribe", "channel": "level2", "product_ids": "BTC-USD"}'),
        ("product_ids numbers", '{"type": "subscribe", "channel": "level2", "product_ids": [5]}'),
        (
            "product_ids unknown",
            '{"type": "subscribe", "channel": "level2", "product_ids": ["NOPE", "\\u00e9"]}',
        ),
        ("unsubscribe junk", '{"type": "unsubscribe", "channel": "level2", "product_ids": [{}]}'),
        ("user without jwt", '{"type": "subscribe", "channel": "user"}'),
        ("jwt a number", '{"type": "subscribe", "channel": "user", "jwt": 5}'),
        ("jwt latin-1", '{"type": "subscribe", "channel": "user", "jwt": "\u00e9\u00e8\u00ff"}'),
        ("jwt non-ASCII dots", '{"type": "subscribe", "channel": "user", "jwt": "\u00e9.\u00e9.\u00e9"}'),
        ("jwt a lone surrogate", '{"type": "subscribe", "channel": "user", "jwt": "\\udc80"}'),
        ("jwt NUL", '{"type": "subscribe", "channel": "user", "jwt": "a\\u0000b.c.d"}'),
        ("jwt huge", '{"type": "subscribe", "channel": "user", "jwt": "' + "A" * 500_000 + '"}'),
        ("jwt on a market channel", '{"type": "subscribe", "channel": "level2", "jwt": "x.y.z"}'),
        ("jwt with a NaN nbf", '{"type": "subscribe", "channel": "user", "jwt": "' + token + '"}'),
        ("nested deep", "[" * 5000 + "]" * 5000),
        ("a binary frame", b"\xff\x00" * 100),
    ]


WS_SURFACES: dict[str, WsSurface] = {
    "advanced_ws": WsSurface(
        "/ws",
        lambda target: _ws_rows(mint(target.cdp_key, None, extra_claims={"nbf": float("nan")})),
        probe='{"type": "subscribe", "channel": "heartbeats"}',
        is_probe_answer=lambda reply: reply.get("channel") == "subscriptions",
        is_error=lambda reply: reply.get("type") == "error",
    ),
}


@pytest.mark.parametrize("surface", list(WS_SURFACES))
async def test_every_hostile_frame_gets_an_error_and_the_session_lives_on(
    surface: str, target: tuple[Simulator, Target]
) -> None:
    sim, served = target
    failures = await WS_SURFACES[surface].judge(served)
    assert not failures, f"{len(failures)} frames failed:\n" + "\n".join(failures)
    assert len(sim.ledger) == 0


async def test_a_text_frame_that_is_not_utf8_closes_the_websocket_and_nothing_else(
    target: tuple[Simulator, Target],
) -> None:
    """aiohttp refuses it at the protocol level (1007); the simulator goes on serving."""
    _, served = target
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"http://{served.authority}/ws") as ws:
            await ws.send_frame(b'{"jwt": "\xff"}', aiohttp.WSMsgType.TEXT)  # what send_str cannot send
            message = await ws.receive(timeout=HANG_S)
            assert message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            )
        async with http.ws_connect(f"http://{served.authority}/ws") as ws:
            await ws.send_str('{"type": "subscribe", "channel": "heartbeats"}')
            assert orjson.loads((await ws.receive(timeout=HANG_S)).data)["channel"] == "subscriptions"


# ---- raw HTTP: heads and bodies no client library would send -----------------------------------------------
_H = b"Host: h\r\n"
# (name, bytes, the status): aiohttp's 400 at the first byte that shows the head is malformed, or the
# simulator's 408 for a request that stops arriving
RAW_HTTP: list[tuple[str, bytes, int]] = [
    ("bare LF line endings", b"GET /api/v3/brokerage/time HTTP/1.1\nHost: h\n\n", 400),
    ("bare LF, head unfinished", b"GET /api/v3/brokerage/time HTTP/1.1\nHost: h\n", 400),
    ("bare CR line endings", b"GET /api/v3/brokerage/time HTTP/1.1\rHost: h\r\r", 400),
    ("binary", bytes(range(256)), 400),
    (
        "a TLS ClientHello on the plain port",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,
        400,
    ),
    ("an HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400),
    ("a NUL in a header", b"GET /api/v3/brokerage/time HTTP/1.1\r\nHost: h\x00\r\n\r\n", 400),
    ("a tab in the request line", b"GET\t/api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"\r\n", 400),
    ("latin-1 in the path", b"GET /api/v3/brokerage/time\xe9 HTTP/1.1\r\n" + _H + b"\r\n", 400),
    ("a header without a colon", b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"NoColon\r\n\r\n", 400),
    ("a space before the colon", b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"X-A : b\r\n\r\n", 400),
    (
        "an oversized header line",
        b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"X: " + b"a" * 100_000 + b"\r\n\r\n",
        400,
    ),
    (
        "an oversized head, unfinished",
        b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"X: " + b"a" * 100_000,
        400,
    ),
    (
        "too many headers",
        b"GET /api/v3/brokerage/time HTTP/1.1\r\n"
        + _H
        + b"".join(b"X-%d: v\r\n" % i for i in range(300))
        + b"\r\n",
        400,
    ),
    (
        "a header line just over aiohttp's limit",
        b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"X: " + b"a" * 8200 + b"\r\n\r\n",
        400,
    ),
    ("a slowloris head", b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"X-Slow: 1\r\n", 408),
    ("a request line only", b"GET /api/v3/brokerage/time HTTP/1.1\r\n", 408),
    ("half a request line", b"GET /api/v3/bro", 408),
    (
        "a body shorter than its Content-Length",
        b"POST /sim/faults HTTP/1.1\r\n" + _H + b"Content-Length: 100\r\n\r\n{}",
        408,
    ),
    (
        "a Content-Length that is not a number",
        b"POST /sim/faults HTTP/1.1\r\n" + _H + b"Content-Length: 1e3\r\n\r\n{}",
        400,
    ),
    (
        "a negative Content-Length",
        b"POST /sim/faults HTTP/1.1\r\n" + _H + b"Content-Length: -2\r\n\r\n{}",
        400,
    ),
    (
        "two Content-Lengths",
        b"POST /sim/faults HTTP/1.1\r\n" + _H + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
    ),
    (
        "a huge Content-Length",
        b"POST /sim/faults HTTP/1.1\r\n" + _H + b"Content-Length: 99999999999999999999\r\n\r\n{}",
        400,
    ),
    (
        "a chunked body that never ends",
        b"POST /sim/faults HTTP/1.1\r\n" + _H + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}",
        408,
    ),
    ("no Host", b"GET /api/v3/brokerage/time HTTP/1.1\r\n\r\n", 400),
    ("HTTP/9.9", b"GET /api/v3/brokerage/time HTTP/9.9\r\n" + _H + b"\r\n", 400),
]
# odd but valid HTTP, which aiohttp serves: answered, never a 5xx
RAW_HTTP_ODD: list[tuple[str, bytes]] = [
    ("an absolute-form target", b"GET http://h/api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"\r\n"),
    ("a request line without a version", b"GET /api/v3/brokerage/time\r\n\r\n"),
    ("HTTP/1.0 without Host", b"GET /api/v3/brokerage/time HTTP/1.0\r\n\r\n"),
    ("a latin-1 header value", b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"X-A: \xe9\r\n\r\n"),
    ("an obsolete line fold", b"GET /api/v3/brokerage/time HTTP/1.1\r\n" + _H + b"X-A: a\r\n b\r\n\r\n"),
]


async def test_every_malformed_head_is_refused_or_closed_and_never_held(
    target: tuple[Simulator, Target],
) -> None:
    """Each gets a 4xx (aiohttp's 400, or the lane's 408 for a request that stops arriving) or a closed
    connection: never a response of success, never a connection held past the simulator's request timeout."""
    _, served = target
    assert len(RAW_HTTP) >= 10
    failures = []
    for name, data, status in [*RAW_HTTP, *((name, data, 0) for name, data in RAW_HTTP_ODD)]:
        answer = await served.send_raw(data)
        if answer is None:
            failures.append(f"{name}: hung")
        elif (
            answer[0] != status
            and not (status == 0 and 0 < answer[0] < 500)
            and not (
                status == 400 and answer[0] == 0  # refused before it was all read: closed, at worst reset
            )
        ):
            failures.append(f"{name}: {answer[0]} (wanted {status or 'an answer'}) {answer[1][:100]!r}")
    assert not failures, "\n".join(failures)


async def test_a_connection_aiohttp_serves_is_bounded_too(target: tuple[Simulator, Target]) -> None:
    """A connection the lane handed to aiohttp (here by a 404) whose next head never ends is closed by
    aiohttp's keep-alive timer, which the simulator sets from its config (0.5 s here)."""
    _, served = target
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(
            b"GET /nowhere HTTP/1.1\r\nHost: h\r\n\r\nGET /api/v3/brokerage/time HTTP/1.1\r\nHost: h\r\n"
        )
        received = await asyncio.wait_for(reader.read(), HANG_S)  # until the server closes
    finally:
        writer.close()
    assert received.startswith(b"HTTP/1.1 404 Not Found\r\n"), received
    assert received.count(b"HTTP/1.1 ") == 1


async def test_a_slowloris_gets_408_and_a_closed_connection(target: tuple[Simulator, Target]) -> None:
    """The lane's own bound: a head sent a byte at a time, never finished, is cut off."""
    _, served = target
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        with contextlib.suppress(ConnectionError):  # the server may cut it off while it is still sending
            for byte in b"GET /api/v3/brokerage/time HTTP/1.1\r\nHost: h\r\nX-Slow: ":
                writer.write(bytes([byte]))
                await writer.drain()
                if reader.at_eof():
                    break
        answer = await asyncio.wait_for(reader.read(), HANG_S)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
    assert b"Connection: close\r\n" in answer


async def test_a_clock_that_is_not_a_number_admits_no_token_and_no_signature(
    target: tuple[Simulator, Target],
) -> None:
    """The last line of defence, behind the fault settings' own check: with the server's clock NaN, every
    comparison a time window makes is false, and neither the JWT verifier nor the HMAC window may read that
    as "within"."""
    sim, served = target
    sim.faults.clock_offset_s = math.nan  # what POST /sim/faults refuses, set behind its back
    rows = [
        Row("a fresh JWT", "GET", _ACCOUNTS, auth="jwt", expect=unauthorized),
        Row("a fresh HMAC signature", "GET", "/accounts", auth="hmac", expect=unauthorized),
        Row(
            "an HMAC signature dated nan",
            "GET",
            "/accounts",
            auth="hmac",
            timestamp="nan",
            expect=unauthorized,
        ),
    ]
    assert await served.judge(rows) == []
    assert sim.auth_failures["expired"] == 2


async def test_a_malformed_request_or_a_client_gone_is_not_logged_as_an_error(
    target: tuple[Simulator, Target], caplog: pytest.LogCaptureFixture
) -> None:
    """Unauthenticated clients must not be able to fill the simulator's log with tracebacks: a malformed
    head is one INFO line, a client gone mid-body none."""
    _, served = target
    for _, data, _ in RAW_HTTP:
        await served.send_raw(data)
    for _ in range(10):
        _, writer = await asyncio.open_connection(served.host, served.port)
        writer.write(b"POST /sim/faults HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    assert (
        await served.send_raw(b"GET /sim/stats HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n") is not None
    )
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
    refused = [r.getMessage() for r in caplog.records if r.name == "engine.sim.aiohttp"]
    assert refused, "aiohttp refused the malformed heads, and said so in a line each"
    assert all(len(line) < 200 for line in refused), refused
