"""The signal model: every accepted shape, every bad field named, a canonical round trip, and the one
client_order_id a signal may ever become."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.signals.execution import order_configuration, order_request
from engine.signals.model import (
    InvalidSignal,
    OrderType,
    Side,
    Signal,
    TimeInForce,
    declared_signal_id,
    parse_signal,
    signal_client_order_id,
)
from engine.trading.ids import worker_of

BASE: dict[str, Any] = {"id": "tv-1", "product_id": "BTC-USD", "side": "BUY", "order_type": "limit"}


def doc(**fields: Any) -> bytes:
    merged = {**BASE, "size": "0.01", "limit_price": "60000"} | fields
    return orjson.dumps({k: v for k, v in merged.items() if v is not None})


@pytest.mark.parametrize(
    ("fields", "configuration_key"),
    [
        (
            {"order_type": "market", "size": None, "limit_price": None, "quote_size": "25"},
            "market_market_ioc",
        ),
        ({"order_type": "market", "limit_price": None, "time_in_force": "FOK"}, "market_market_fok"),
        ({}, "limit_limit_gtc"),
        ({"time_in_force": "gtd", "end_time": "2030-01-01T00:00:00Z"}, "limit_limit_gtd"),
        ({"time_in_force": "IOC"}, "sor_limit_ioc"),
        ({"time_in_force": "FOK"}, "limit_limit_fok"),
        (
            {"order_type": "stop_limit", "stop_price": "59000", "stop_direction": "DOWN"},
            "stop_limit_stop_limit_gtc",
        ),
        (
            {
                "order_type": "stop_limit",
                "stop_price": "61000",
                "time_in_force": "GTD",
                "end_time": "2030-01-01T00:00:00+00:00",
            },
            "stop_limit_stop_limit_gtd",
        ),
    ],
)
def test_each_order_type_maps_to_its_configuration(fields: dict[str, Any], configuration_key: str) -> None:
    signal = parse_signal(doc(**fields))
    assert list(order_configuration(signal).payload()) == [configuration_key]
    assert parse_signal(signal.to_json()) == signal


def test_fields_are_typed() -> None:
    signal = parse_signal(doc(side="sell", post_only=True, tag="strategy-a", size=0.5))
    assert signal.side is Side.SELL
    assert signal.order_type is OrderType.LIMIT
    assert signal.size == Decimal("0.5")
    assert signal.limit_price == Decimal("60000")
    assert signal.effective_time_in_force is TimeInForce.GTC
    assert signal.post_only
    fragment = order_configuration(signal).payload()["limit_limit_gtc"]
    assert fragment == {"base_size": "0.5", "limit_price": "60000", "post_only": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (doc(id=None), "id"),
        (doc(id="has space"), "id"),
        (doc(id="x" * 129), "id"),
        (doc(id=7), "id"),
        (doc(product_id="btc-usd"), "product_id"),
        (doc(product_id=None), "product_id"),
        (doc(side="HOLD"), "side"),
        (doc(order_type="iceberg"), "order_type"),
        (doc(size=None), "size"),
        (doc(size="-1"), "size"),
        (doc(size="0"), "size"),
        (doc(size="NaN"), "size"),
        (doc(size="Infinity"), "size"),
        (doc(size="1e"), "size"),
        (doc(size=True), "size"),
        (doc(size=[1]), "size"),
        (doc(quote_size="5"), "quote_size"),
        (doc(limit_price=None), "limit_price"),
        (doc(stop_price="1"), "stop_price"),
        (doc(stop_direction="UP"), "stop_direction"),
        (doc(order_type="stop_limit"), "stop_price"),
        (doc(order_type="stop_limit", stop_price="1", stop_direction="sideways"), "stop_direction"),
        (doc(order_type="market", limit_price=None, quote_size="5"), "size"),
        (doc(order_type="market", size=None, limit_price=None), "size"),
        (doc(order_type="market", limit_price="1"), "limit_price"),
        (doc(order_type="market", limit_price=None, post_only=True), "post_only"),
        (doc(order_type="market", limit_price=None, time_in_force="GTC"), "time_in_force"),
        (doc(time_in_force="DAY"), "time_in_force"),
        (doc(time_in_force="GTD"), "end_time"),
        (doc(end_time="2030-01-01T00:00:00Z"), "end_time"),
        (doc(time_in_force="GTD", end_time="2030-01-01T00:00:00"), "end_time"),
        (doc(time_in_force="GTD", end_time="tomorrow"), "end_time"),
        (doc(time_in_force="IOC", post_only=True), "post_only"),
        (doc(post_only="yes"), "post_only"),
        (doc(tag="x" * 65), "tag"),
        (doc(leverage="3"), "leverage"),
        (b'"BUY"', "body"),
        (b'{"id": "tv-1", "id": 7}', "id"),
        (doc(side=7), "side"),
        (doc(order_type=["limit"]), "order_type"),
        (doc(time_in_force=1), "time_in_force"),
        (doc(stop_direction=True), "stop_direction"),
        (doc(end_time=1893456000), "end_time"),
        (doc(tag=5), "tag"),
        (doc(product_id=["BTC-USD"]), "product_id"),
        (orjson.dumps({**BASE, "size": "1", "limit_price": "2", "post_only": None}), "post_only"),
        (orjson.dumps({**BASE, "side": None, "size": "1", "limit_price": "2"}), "side"),
    ],
)
def test_a_bad_field_is_named(body: bytes, field: str) -> None:
    with pytest.raises(InvalidSignal) as caught:
        parse_signal(body)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("side", "order_type", "time_in_force", "expected"),
    [
        ("buy", "LIMIT", "gtc", (Side.BUY, OrderType.LIMIT, TimeInForce.GTC)),
        ("Sell", "Limit", "Fok", (Side.SELL, OrderType.LIMIT, TimeInForce.FOK)),
    ],
)
def test_enums_are_read_in_any_case(
    side: str, order_type: str, time_in_force: str, expected: tuple[Side, OrderType, TimeInForce]
) -> None:
    body = doc(side=side, order_type=order_type, time_in_force=time_in_force)
    signal = parse_signal(body)
    assert (signal.side, signal.order_type, signal.effective_time_in_force) == expected
    assert Signal.from_mapping(orjson.loads(body)) == signal


def test_a_declared_id_is_read_from_any_json_object() -> None:
    assert declared_signal_id(doc(size="lots")) == "tv-1"
    assert declared_signal_id(b'{"id": "has space"}') is None
    assert declared_signal_id(b'{"id": 7}') is None
    assert declared_signal_id(b"[1]") is None
    assert declared_signal_id(b"{") is None


def test_client_order_id_is_derived_from_the_signal_id_alone() -> None:
    first = parse_signal(doc())
    again = parse_signal(doc(size="0.02"))  # same id, other content: still the one order
    assert first.client_order_id() == again.client_order_id() == signal_client_order_id("tv-1")
    assert re.fullmatch(r"eng-s-[0-9a-f]{32}", first.client_order_id())
    assert first.client_order_id("desk_7").startswith("desk_7-s-")
    assert worker_of(first.client_order_id("desk_7")) == "desk_7"
    assert order_request(first, "desk_7").client_order_id == first.client_order_id("desk_7")
    with pytest.raises(ValueError, match="prefix"):
        signal_client_order_id("tv-1", "bad-prefix")


@given(st.text(alphabet=st.sampled_from("abcXYZ019_.:-"), min_size=1, max_size=128))
def test_client_order_ids_fit_coinbase(signal_id: str) -> None:
    client_order_id = signal_client_order_id(signal_id, "p" * 64)
    assert len(client_order_id) <= 128
    # OrderRequest enforces Coinbase's bound too: building one proves it accepts the id.
    signal = Signal.from_mapping({**BASE, "id": signal_id, "size": "1", "limit_price": "2"})
    assert order_request(signal, "p" * 64).client_order_id == client_order_id
