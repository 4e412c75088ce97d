"""Advanced Trade REST shapes beyond the real-client tests: holds visible in accounts, previews, fills, the
client_order_id lookup, products and books, futures positions."""

from __future__ import annotations

from decimal import Decimal as D

from tests.sim.conftest import Served

P = "/api/v3/brokerage"


async def test_orders_holds_fills_and_lookups(served: Served) -> None:
    status, accounts = await served.call("GET", f"{P}/accounts")
    usd = next(a for a in accounts["accounts"] if a["currency"] == "USD")
    assert status == 200
    assert usd["hold"]["value"] == "0"
    body = {
        "client_order_id": "rest-1",
        "product_id": "BTC-USD",
        "side": "BUY",
        "order_configuration": {"limit_limit_gtc": {"base_size": "0.1", "limit_price": "59000.00"}},
    }
    status, preview = await served.call("POST", f"{P}/orders/preview", body)
    assert status == 200
    assert preview["errs"] == []
    assert D(preview["commission_total"]) > 0
    status, placed = await served.call("POST", f"{P}/orders", body)
    order_id = placed["success_response"]["order_id"]
    _, accounts = await served.call("GET", f"{P}/accounts")  # the cached body is re-rendered after a change
    usd = next(a for a in accounts["accounts"] if a["currency"] == "USD")
    assert D(usd["hold"]["value"]) == D("0.1") * D("59000.00") * D("1.006")
    _, listed = await served.call("GET", f"{P}/orders/historical/batch?client_order_id=rest-1")
    assert [o["order_id"] for o in listed["orders"]] == [order_id]
    _, listed = await served.call("GET", f"{P}/orders/historical/batch?order_status=OPEN&product_ids=BTC-USD")
    assert [o["order_id"] for o in listed["orders"]] == [order_id]
    served.sim.set_mid("BTC-USD", D("58000"))
    _, fills = await served.call("GET", f"{P}/orders/historical/fills?order_ids={order_id}")
    assert [(f["liquidity_indicator"], f["price"], f["size"]) for f in fills["fills"]] == [
        ("MAKER", "59000.00", "0.1")
    ]
    _, fetched = await served.call("GET", f"{P}/orders/historical/{order_id}")
    assert fetched["order"]["status"] == "FILLED"
    assert fetched["order"]["average_filled_price"] == "59000.00"
    status, missing = await served.call("GET", f"{P}/orders/historical/nope")
    assert status == 404
    assert missing["error"] == "NOT_FOUND"
    _, summary = await served.call("GET", f"{P}/transaction_summary")
    assert summary["fee_tier"]["maker_fee_rate"] == "0.004"
    assert summary["total_fees"] > 0
    status, refused = await served.call(
        "POST", f"{P}/orders", body | {"client_order_id": "rest-2", "product_id": "NOPE-USD"}
    )
    assert status == 200
    assert refused["success"] is False
    assert refused["error_response"]["preview_failure_reason"] == "PREVIEW_INVALID_PRODUCT_ID"
    status, bad = await served.call("POST", f"{P}/orders", {"product_id": "BTC-USD"})
    assert status == 400
    assert bad["error"] == "INVALID_ARGUMENT"


async def test_products_books_and_futures(served: Served) -> None:
    _, products = await served.call("GET", f"{P}/products")
    ids = {p["product_id"]: p for p in products["products"]}
    assert ids["BTC-USD"]["quote_increment"] == "0.01"
    assert ids["BIP-20DEC30-CDE"]["future_product_details"]["contract_size"] == "0.01"
    _, books = await served.call("GET", f"{P}/best_bid_ask?product_ids=BTC-USD&product_ids=ETH-USD")
    assert [b["product_id"] for b in books["pricebooks"]] == ["BTC-USD", "ETH-USD"]
    best = books["pricebooks"][0]
    assert D(best["bids"][0]["price"]) < D(best["asks"][0]["price"])
    async with served.http.get(served.base_url + f"{P}/market/products?product_type=FUTURE") as response:
        public = await response.json()  # public: no token
    assert [p["product_id"] for p in public["products"]] == ["BIP-20DEC30-CDE"]
    order = {
        "client_order_id": "fut-1",
        "product_id": "BIP-20DEC30-CDE",
        "side": "SELL",
        "order_configuration": {"market_market_ioc": {"base_size": "3"}},
    }
    assert (await served.call("POST", f"{P}/orders", order))[1]["success"]
    _, positions = await served.call("GET", f"{P}/cfm/positions")
    assert [(p["side"], p["number_of_contracts"]) for p in positions["positions"]] == [("SHORT", "3")]
    _, summary = await served.call("GET", f"{P}/cfm/balance_summary")
    assert D(summary["balance_summary"]["initial_margin"]["value"]) > 0
    status, closed = await served.call(
        "POST",
        f"{P}/orders/close_position",
        {"client_order_id": "fut-close", "product_id": "BIP-20DEC30-CDE"},
    )
    assert status == 200
    assert closed["success"]
    assert closed["success_response"]["side"] == "BUY"
    _, positions = await served.call("GET", f"{P}/cfm/positions")
    assert positions["positions"] == []
