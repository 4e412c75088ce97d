"""The official SDK's gateway clients (coinbase-advanced-py 2.0.0rc1, `coinbase.deribit`), unchanged, against
the simulator over TLS, with both key types.

How they are pointed at the simulator, with their own supported overrides: `DeribitRetailClient(base_url=
"127.0.0.1:PORT")` (it builds `https://{base_url}/api/v2/{method}`, and the token exchange uses the same
host), `DeribitRetailWSClient(url="wss://127.0.0.1:PORT/ws/api/v2")` for the trading socket and
`url=".../streams/ws/api/v2"` with no keys for the streams socket. The test CA is trusted through the
environment: REQUESTS_CA_BUNDLE for requests, SSL_CERT_FILE for the default SSL context websockets builds.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from coinbase.deribit import DeribitAuthError, DeribitRetailClient, DeribitRetailWSClient

from engine.sim import Simulator
from tests.sim.conftest import Tls, quiet_config
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key

BTC = "BTC_USDC-PERPETUAL"


def _result(response: Any) -> Any:
    return response.to_dict()["result"]


def _rest_session(key_file: Path, host_port: str) -> dict[str, Any]:
    client = DeribitRetailClient(key_file=str(key_file), base_url=host_port, timeout=10)
    instruments = _result(client.public_get_instruments("USDC", kind="future"))
    book = _result(client.public_get_order_book(BTC, depth=5))
    summary = _result(client.private_get_account_summary("USDC"))
    bid = book["bids"][0][0]
    placed = _result(client.private_buy(BTC, amount=0.01, type="limit", price=bid - 1000, label="sdk-rest"))
    open_orders = _result(client.private_get_open_orders_by_instrument(BTC))
    cancelled = _result(client.private_cancel(placed["order"]["order_id"]))
    bought = _result(client.private_buy(BTC, amount=0.02, type="market"))
    position = _result(client.private_get_position(BTC))
    closed = _result(client.private_close_position(BTC, "market"))
    after = _result(client.private_get_position(BTC))
    return {
        "instruments": {i["instrument_name"] for i in instruments},
        "depth": len(book["bids"]),
        "currency": summary["currency"],
        "open_ids": [o["order_id"] for o in open_orders],
        "placed_id": placed["order"]["order_id"],
        "cancelled_state": cancelled["order_state"],
        "bought_state": bought["order"]["order_state"],
        "position_size": position["size"],
        "closed_state": closed["order"]["order_state"],
        "after_size": after["size"],
    }


def _ws_session(key_file: Path, base: str) -> dict[str, Any]:
    order_seen = threading.Event()
    book_messages: list[dict[str, Any]] = []
    book_changes = threading.Event()

    def on_order(data: Any, channel: str) -> None:
        if data.get("label") == "sdk-ws":
            order_seen.set()

    def on_book(data: Any, channel: str) -> None:
        book_messages.append(data)
        if sum(1 for m in book_messages if m.get("type") == "change") >= 2:
            book_changes.set()

    with DeribitRetailWSClient(key_file=str(key_file), url=f"{base}/ws/api/v2", timeout=10) as trading:
        trading.subscribe([f"user.orders.{BTC}.raw"], on_order)
        bid = _result(trading.public_get_order_book(BTC, depth=1))["bids"][0][0]
        placed = _result(
            trading.private_buy(BTC, amount=0.01, type="limit", price=bid - 1000, label="sdk-ws")
        )
        notified = order_seen.wait(10)
        listed = [o["order_id"] for o in _result(trading.private_get_open_orders_by_instrument(BTC))]
        _result(trading.private_cancel(placed["order"]["order_id"]))
    with DeribitRetailWSClient(
        api_key=None, api_secret=None, url=f"{base}/streams/ws/api/v2", timeout=10
    ) as s:
        s.subscribe([f"book.{BTC}.100ms"], on_book)
        changed = book_changes.wait(10)
    return {
        "notified": notified,
        "listed": listed,
        "placed_id": placed["order"]["order_id"],
        "changed": changed,
        "book": book_messages,
    }


@pytest.fixture
def trust_test_ca(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> Tls:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls.ca_path))
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_path))
    return tls


@pytest.mark.parametrize("make_key", [new_es256_key, new_ed25519_key], ids=["es256", "ed25519"])
async def test_official_sdk_clients(
    make_key: Callable[[], TestKey], trust_test_ca: Tls, tmp_path: Path
) -> None:
    key = make_key()
    key_file = key.write_portal_file(tmp_path / "key.json")
    sim = Simulator(quiet_config(tick_interval_s=0.05))
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve(ssl_context=trust_test_ca.server_context) as base_url:
        host_port = base_url.split("://")[1]
        rest = await asyncio.to_thread(_rest_session, key_file, host_port)
        ws = await asyncio.to_thread(_ws_session, key_file, f"wss://{host_port}")
    assert {"BTC_USDC-PERPETUAL", "ETH_USDC-PERPETUAL", "SOL_USDC-PERPETUAL"} <= rest["instruments"]
    assert rest["depth"] == 5
    assert rest["currency"] == "USDC"
    assert rest["open_ids"] == [rest["placed_id"]]
    assert rest["cancelled_state"] == "cancelled"
    assert rest["bought_state"] == "filled"
    assert rest["position_size"] == 0.02
    assert rest["closed_state"] == "filled"
    assert rest["after_size"] == 0
    assert ws["notified"]
    assert ws["listed"] == [ws["placed_id"]]
    assert ws["changed"]
    first, *rest_of_book = ws["book"]
    assert first["type"] == "snapshot"
    changes = [m for m in rest_of_book if m["type"] == "change"]
    assert changes[0]["prev_change_id"] == first["change_id"]
    assert all(b["prev_change_id"] == a["change_id"] for a, b in itertools.pairwise(changes))
    derivatives = [e for e in sim.ledger.entries() if e["source"] == "derivatives"]
    assert len(derivatives) == 4  # over HTTP: limit, market, close; over the socket: limit
    assert {e["key_name"] for e in derivatives} == {key.name}


def _refused(key_file: Path, host_port: str) -> tuple[str, str]:
    client = DeribitRetailClient(key_file=str(key_file), base_url=host_port, timeout=10)
    public = _result(client.public_get_instrument(BTC))["instrument_name"]
    try:
        client.private_get_positions(currency="USDC")
    except DeribitAuthError as error:
        rest = str(error)
    else:
        rest = "accepted"
    try:
        DeribitRetailWSClient(key_file=str(key_file), url=f"wss://{host_port}/ws/api/v2", timeout=10).open()
    except DeribitAuthError as error:
        return public + " " + rest, str(error)
    return public + " " + rest, "accepted"


async def test_an_unregistered_key_is_refused(trust_test_ca: Tls, tmp_path: Path) -> None:
    key = new_ed25519_key()  # never registered
    key_file = key.write_portal_file(tmp_path / "key.json")
    sim = Simulator(quiet_config())
    async with sim.serve(ssl_context=trust_test_ca.server_context) as base_url:
        rest, ws = await asyncio.to_thread(_refused, key_file, base_url.split("://")[1])
    assert rest.startswith(BTC)  # public methods need no key
    assert "[13004]" in rest
    assert "[13004]" in ws
    assert sim.derivatives.auth_failures == {"unknown_key": 2}
