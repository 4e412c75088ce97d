"""The gateway over HTTP: public/auth judges the CDP JWT as the Advanced Trade side does and issues tokens;
public methods answer; private methods want the Bearer token."""

from __future__ import annotations

import time

from engine.sim.derivatives.config import DerivativesConfig
from tests.derivatives.sim.conftest import Gateway
from tests.sim.conftest import mint
from tests.support.keys import new_ed25519_key, new_es256_key


async def test_auth_issues_a_token_for_a_registered_key(gateway: Gateway) -> None:
    result = await gateway.rpc("public/auth", {"grant_type": "coinbase_cdp", "token": gateway.jwt()})
    assert result["token_type"] == "bearer"
    assert result["expires_in"] == DerivativesConfig().token_lifetime_s
    assert "rat#trade" in result["scope"]
    assert result["access_token"] != result["refresh_token"]
    summary = await gateway.rpc("private/get_account_summary", {"currency": "USDC"}, result["access_token"])
    assert summary["currency"] == "USDC"
    assert summary["equity"] == 100000


async def test_an_ed25519_key_authenticates_too(gateway: Gateway) -> None:
    key = new_ed25519_key()
    gateway.sim.register_cdp_key(key.name, key.public_key_pem)
    token = await gateway.token(key)
    assert (await gateway.rpc("private/get_positions", {"currency": "USDC"}, token)) == []


async def test_refused_credentials(gateway: Gateway) -> None:
    stranger = new_es256_key()  # never registered
    forged = gateway.jwt()[:-6] + ("AAAAAA" if not gateway.jwt().endswith("AAAAAA") else "BBBBBB")
    expired = mint(gateway.key, None, nbf=time.time() - 600)
    other_key = mint(stranger, None, extra_claims={"sub": gateway.key.name})
    for token, reason in (
        (mint(stranger, None), "unknown_key"),
        (forged, None),
        (expired, None),
        (other_key, None),
    ):
        status, body = await gateway.post("public/auth", {"grant_type": "coinbase_cdp", "token": token})
        assert status == 401, body
        assert body["error"]["code"] == 13004, body
        if reason:
            assert body["error"]["data"]["reason"] == reason


async def test_private_methods_need_a_live_token(gateway: Gateway) -> None:
    status, body = await gateway.post("private/get_positions", {"currency": "USDC"})
    assert (status, body["error"]["code"]) == (401, 13009)
    status, body = await gateway.post("private/get_positions", {"currency": "USDC"}, token="made-up")
    assert (status, body["error"]["code"]) == (401, 13009)
    token = await gateway.token()
    gateway.sim.clock.base_offset_s += DerivativesConfig().token_lifetime_s + 1
    status, body = await gateway.post("private/get_positions", {"currency": "USDC"}, token=token)
    assert (status, body["error"]["code"], body["error"]["data"]["reason"]) == (401, 13009, "token_expired")


async def test_a_view_only_key_cannot_trade(gateway: Gateway) -> None:
    key = new_es256_key()
    gateway.sim.register_cdp_key(key.name, key.public_key_pem, {"view"})
    token = await gateway.token(key)
    _status, body = await gateway.post(
        "private/buy", {"instrument_name": "BTC_USDC-PERPETUAL", "amount": 0.001, "type": "market"}, token
    )
    assert body["error"]["code"] == 13021


async def test_instruments_and_market_data(gateway: Gateway) -> None:
    instruments = await gateway.rpc("public/get_instruments", {"currency": "USDC", "kind": "future"})
    names = {i["instrument_name"] for i in instruments}
    assert {"BTC_USDC-PERPETUAL", "ETH_USDC-PERPETUAL", "SOL_USDC-PERPETUAL"} <= names
    btc = next(i for i in instruments if i["instrument_name"] == "BTC_USDC-PERPETUAL")
    assert btc["settlement_period"] == "perpetual"
    assert btc["tick_size"] == 0.5
    assert btc["contract_size"] == btc["min_trade_amount"] == 0.0001
    book = await gateway.rpc("public/get_order_book", {"instrument_name": "BTC_USDC-PERPETUAL", "depth": 5})
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["best_bid_price"] == book["bids"][0][0]
    ticker = await gateway.rpc("public/ticker", {"instrument_name": "ETH_USDC-PERPETUAL"})
    assert ticker["mark_price"] > 0
    assert "current_funding" in ticker
    index = await gateway.rpc("public/get_index_price", {"index_name": "btc_usdc"})
    assert index["index_price"] > 0
    now = await gateway.rpc("public/get_time")
    assert abs(now / 1000 - time.time()) < 60
    assert (await gateway.rpc("public/test"))["version"]


async def test_the_method_may_ride_in_the_body_or_a_get_query(gateway: Gateway) -> None:
    status, body = await gateway.post(
        "",
        body={
            "jsonrpc": "2.0",
            "id": 7,
            "method": "public/get_instrument",
            "params": {"instrument_name": "SOL_USDC-PERPETUAL"},
        },
        path="/api/v2",
    )
    assert status == 200
    assert body["id"] == 7
    assert body["result"]["instrument_name"] == "SOL_USDC-PERPETUAL"
    async with gateway.http.get(
        gateway.base_url + "/api/v2/public/get_order_book?instrument_name=ETH_USDC-PERPETUAL&depth=2"
    ) as response:
        body = await response.json()
    assert response.status == 200
    assert len(body["result"]["bids"]) == 2
