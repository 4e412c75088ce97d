"""Clients no one here wrote, unchanged, against the simulator over HTTPS: the official coinbase-advanced-py
RESTClient (ES256 and Ed25519 key files) and ccxt's async `coinbase`."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import ccxt.async_support as ccxt
import pytest
from coinbase.rest import RESTClient

from engine.sim import Simulator
from tests.sim.conftest import Tls, quiet_config
from tests.support.keys import TestKey, new_ed25519_key, new_es256_key


def _rest_client_round_trip(key_file: Path, host_port: str, ca_path: Path) -> dict[str, str]:
    client = RESTClient(key_file=str(key_file), base_url=host_port, timeout=10)
    client.session.verify = str(ca_path)  # the SDK's requests session trusts the test CA
    accounts = client.get_accounts()
    currencies = {a["currency"] for a in accounts["accounts"]}
    order_id = uuid.uuid4().hex
    placed = client.limit_order_gtc_buy(order_id, "BTC-USD", base_size="0.01", limit_price="50000.00")
    assert placed.success, placed.to_dict()
    fetched = client.get_order(placed.success_response["order_id"])
    cancelled = client.cancel_orders([placed.success_response["order_id"]])
    after = client.get_order(placed.success_response["order_id"])
    return {
        "currencies": ",".join(sorted(currencies)),
        "client_order_id": fetched.order.client_order_id,
        "status_before": fetched.order.status,
        "cancel_success": str(cancelled.results[0].success),
        "status_after": after.order.status,
    }


@pytest.mark.parametrize("make_key", [new_es256_key, new_ed25519_key], ids=["es256", "ed25519"])
async def test_official_rest_client(
    make_key: Callable[[], TestKey], tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests prefers REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment over session.verify
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls.ca_path))
    key = make_key()
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key.portal_json()))
    sim = Simulator(quiet_config())
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve(ssl_context=tls.server_context) as base_url:
        assert base_url.startswith("https://")
        host_port = base_url.split("://")[1]
        result = await asyncio.to_thread(_rest_client_round_trip, key_file, host_port, tls.ca_path)
    assert {"USD", "BTC"} <= set(result["currencies"].split(","))
    assert result["status_before"] == "OPEN"
    assert result["cancel_success"] == "True"
    assert result["status_after"] == "CANCELLED"
    assert [entry["client_order_id"] for entry in sim.ledger.entries()] == [result["client_order_id"]]


@pytest.mark.parametrize("make_key", [new_es256_key, new_ed25519_key], ids=["es256", "ed25519"])
async def test_ccxt_coinbase(make_key: Callable[[], TestKey], tls: Tls) -> None:
    key = make_key()
    sim = Simulator(quiet_config())
    sim.register_cdp_key(key.name, key.public_key_pem)
    async with sim.serve(ssl_context=tls.server_context) as base_url:
        exchange = ccxt.coinbase({"apiKey": key.name, "secret": key.private_key, "cafile": str(tls.ca_path)})
        exchange.urls["api"]["rest"] = base_url
        try:
            markets = await exchange.load_markets()
            assert "BTC/USD" in markets
            assert markets["BTC/USD"]["precision"]["price"] == 0.01
            assert any(m["contract"] for m in markets.values())
            balance = await exchange.fetch_balance()
            assert balance["USD"]["total"] == 100000
            assert balance["BTC"]["total"] == 2
            order = await exchange.create_order("BTC/USD", "limit", "buy", 0.01, 50000)
            fetched = await exchange.fetch_order(order["id"])
            assert fetched["status"] == "open"
            assert fetched["price"] == 50000
            assert fetched["amount"] == 0.01
            await exchange.cancel_order(order["id"])
            cancelled = await exchange.fetch_order(order["id"])
            assert cancelled["status"] == "canceled"
        finally:
            await exchange.close()
    assert len(sim.ledger) == 1
    assert next(iter(sim.ledger)).client_order_id.startswith("ccxt-")
