"""A product's trading status, flipped at run time through `/sim/market`, refuses the new orders Coinbase
refuses (with Coinbase's error body), shows in the product's fields, and reaches the client as a typed
error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from engine import Client
from engine.auth import CdpKey
from engine.errors import OrderEntryDisabled, OrderRejected
from engine.rest import LimitGtc, MarketIoc, Side
from engine.sim.orders import OrderSpec
from tests.sim.conftest import Served
from tests.sim.test_ws import next_message

P = "/api/v3/brokerage"


@pytest.fixture
async def client(served: Served) -> AsyncIterator[Client]:
    async with Client(CdpKey(served.key.name, served.key.private_key), served.base_url) as c:
        yield c


async def _set_status(served: Served, status: str, product_id: str = "BTC-USD") -> tuple[int, Any]:
    async with served.http.post(
        served.base_url + "/sim/market", json={"status": {product_id: status}}
    ) as response:
        return response.status, await response.json()


def _resting_buy(served: Served) -> LimitGtc:
    bid = served.sim.markets["BTC-USD"].best_bid()
    return LimitGtc(base_size="0.001", limit_price=str(bid - 500))


def _crossing_buy(served: Served) -> LimitGtc:
    ask = served.sim.markets["BTC-USD"].best_ask()
    return LimitGtc(base_size="0.001", limit_price=str(ask + 500))


@pytest.mark.parametrize("status", ["cancel_only", "trading_disabled", "offline"])
async def test_no_new_orders_only_cancels(served: Served, client: Client, status: str) -> None:
    resting = await client.create_order("BTC-USD", Side.BUY, _resting_buy(served))
    assert (await _set_status(served, status))[0] == 200
    ledger = len(served.sim.ledger)
    for configuration in (_resting_buy(served), MarketIoc(quote_size="100")):
        with pytest.raises(OrderEntryDisabled) as refused:
            await client.create_order("BTC-USD", Side.BUY, configuration)
        assert refused.value.failure_reason == "ORDER_ENTRY_DISABLED"
        assert status.replace("_", " ") in str(refused.value)
    assert len(served.sim.ledger) == ledger, "a refused order is not recorded"
    # Coinbase's body: 200, success false, the reason in error_response
    body = {
        "client_order_id": "raw-1",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"market_market_ioc": {"quote_size": "100"}},
    }
    code, answer = await served.call("POST", f"{P}/orders", body)
    assert code == 200
    assert answer["success"] is False
    assert answer["error_response"]["error"] == "ORDER_ENTRY_DISABLED"
    assert answer["error_response"]["new_order_failure_reason"] == "ORDER_ENTRY_DISABLED"
    edited = await client.edit_order(resting.order_id, price=str(_resting_buy(served).limit_price))
    assert not edited.success  # an edit is a new order's worth of entry: refused too
    (cancel,) = await client.cancel_orders(resting.order_id)
    assert cancel.success, "cancels still go through"
    product = await client.product("BTC-USD")
    assert product.trading_disabled is (status != "cancel_only")
    assert product.cancel_only is (status == "cancel_only")
    assert product.status == ("offline" if status == "offline" else "online")
    # and back online, orders are taken again
    assert (await _set_status(served, "online"))[0] == 200
    assert (await client.create_order("BTC-USD", Side.BUY, MarketIoc(quote_size="100"))).order_id
    product = await client.product("BTC-USD")
    flags = (product.trading_disabled, product.cancel_only, product.limit_only, product.post_only)
    assert flags == (False, False, False, False)


async def test_limit_only_refuses_market_orders(served: Served, client: Client) -> None:
    await _set_status(served, "limit_only")
    with pytest.raises(OrderEntryDisabled, match="limit only: market orders"):
        await client.create_order("BTC-USD", Side.BUY, MarketIoc(quote_size="100"))
    crossing = await client.create_order("BTC-USD", Side.BUY, _crossing_buy(served))
    assert served.sim.engine.orders[crossing.order_id].status == "FILLED"  # a limit order may still take
    assert (await client.product("BTC-USD")).limit_only
    # the other product is untouched
    assert (await client.create_order("ETH-USD", Side.BUY, MarketIoc(quote_size="100"))).order_id


async def test_post_only_takes_only_orders_that_add_liquidity(served: Served, client: Client) -> None:
    await _set_status(served, "post_only")
    with pytest.raises(OrderEntryDisabled):
        await client.create_order("BTC-USD", Side.SELL, MarketIoc(base_size="0.001"))
    with pytest.raises(OrderRejected) as refused:
        await client.create_order("BTC-USD", Side.BUY, _crossing_buy(served))
    assert not isinstance(refused.value, OrderEntryDisabled)
    assert refused.value.failure_reason == "INVALID_LIMIT_PRICE_POST_ONLY"
    resting = await client.create_order("BTC-USD", Side.BUY, _resting_buy(served))
    order = served.sim.engine.orders[resting.order_id]
    assert order.status == "OPEN"
    assert order.filled_size == Decimal(0)
    assert (await client.product("BTC-USD")).post_only


async def test_preview_reports_the_refusal(served: Served) -> None:
    await _set_status(served, "cancel_only")
    body = {
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"market_market_ioc": {"quote_size": "100"}},
    }
    code, preview = await served.call("POST", f"{P}/orders/preview", body)
    assert code == 200
    assert preview["errs"] == ["ORDER_ENTRY_DISABLED"]


@pytest.mark.parametrize("status", ["closed", "", 1])
async def test_an_unknown_status_is_refused_and_changes_nothing(served: Served, status: Any) -> None:
    code, answer = await _set_status(served, status)
    assert code == 400
    assert "status must map known products" in answer["message"]
    assert served.sim.product_status["BTC-USD"] == "online"


@pytest.mark.parametrize("status", ["cancel_only", "trading_disabled", "offline"])
async def test_a_halted_book_does_not_match_resting_orders(served: Served, status: str) -> None:
    sim = served.sim
    mid = sim.markets["BTC-USD"].mid
    order, _ = sim.engine.submit(
        "halt-1",
        "BTC-USD",
        "BUY",
        OrderSpec.parse({"limit_limit_gtc": {"base_size": "0.01", "limit_price": str(mid - 1000)}}),
    )
    assert (await _set_status(served, status))[0] == 200
    sim.set_mid("BTC-USD", mid - 2000)  # the market moves through it, but nothing matches
    assert order.status == "OPEN"
    assert order.filled_size == 0
    assert (await _set_status(served, "online"))[0] == 200
    sim.tick()
    assert order.status == "FILLED"


async def test_product_flags_on_the_exchange_api(served: Served) -> None:
    await _set_status(served, "limit_only")
    async with served.http.get(served.base_url + "/products/BTC-USD") as response:
        product = await response.json()
    assert product["limit_only"] is True
    assert product["status"] == "online"
    await _set_status(served, "offline")
    async with served.http.get(served.base_url + "/products/BTC-USD") as response:
        product = await response.json()
    assert (product["status"], product["trading_disabled"], product["limit_only"]) == ("offline", True, False)


async def test_the_status_channel_says_a_narrower_mode_in_words(served: Served) -> None:
    async with served.http.ws_connect(served.base_url + "/ws") as ws:
        await ws.send_json({"type": "subscribe", "channel": "status", "product_ids": ["ETH-USD"]})
        assert (await next_message(ws))["channel"] == "subscriptions"
        snapshot = await next_message(ws)
        assert snapshot["events"][0]["products"][0]["status"] == "online"
        assert (await _set_status(served, "cancel_only", "ETH-USD"))[0] == 200
        update = await next_message(ws)
        (row,) = update["events"][0]["products"]
        assert (row["id"], row["status"], row["status_message"]) == ("ETH-USD", "online", "cancel only")
