"""Portfolios, converts and payment methods over the simulator's REST API: the funds really move."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from tests.sim.conftest import Served

P = "/api/v3/brokerage"


async def _ok(served: Served, method: str, path: str, body: Any = None) -> Any:
    status, answer = await served.call(method, path, body)
    assert status == 200, (path, answer)
    return answer


async def _account(served: Served, currency: str) -> dict[str, Any]:
    accounts = (await _ok(served, "GET", f"{P}/accounts?limit=250"))["accounts"]
    return next(a for a in accounts if a["currency"] == currency)


def _breakdown_total(breakdown: dict[str, Any]) -> D:
    return D(breakdown["portfolio_balances"]["total_balance"]["value"])


async def test_move_funds_moves_them_and_the_breakdowns_add_up(served: Served) -> None:
    default = (await _ok(served, "GET", f"{P}/key_permissions"))["portfolio_uuid"]
    created = (await _ok(served, "POST", f"{P}/portfolios", {"name": "Trading"}))["portfolio"]
    assert created["type"] == "CONSUMER"
    listed = (await _ok(served, "GET", f"{P}/portfolios"))["portfolios"]
    assert {p["uuid"] for p in listed} == {default, created["uuid"]}
    total_before = _breakdown_total((await _ok(served, "GET", f"{P}/portfolios/{default}"))["breakdown"])
    usd_before = D((await _account(served, "USD"))["available_balance"]["value"])

    move = {
        "funds": {"value": "250.50", "currency": "USD"},
        "source_portfolio_uuid": default,
        "target_portfolio_uuid": created["uuid"],
    }
    await _ok(served, "POST", f"{P}/portfolios/move_funds", move)
    usd_after = D((await _account(served, "USD"))["available_balance"]["value"])
    assert usd_before - usd_after == D("250.50")
    target = (await _ok(served, "GET", f"{P}/portfolios/{created['uuid']}"))["breakdown"]
    assert [(s["asset"], s["total_balance_crypto"]) for s in target["spot_positions"]] == [("USD", 250.5)]
    source = (await _ok(served, "GET", f"{P}/portfolios/{default}"))["breakdown"]
    # value is conserved across the two portfolios, and each total is the sum of its rows
    assert _breakdown_total(source) + _breakdown_total(target) == total_before
    rows = sum((D(str(s["total_balance_fiat"])) for s in source["spot_positions"]), D(0))
    assert abs(rows - _breakdown_total(source)) < D("0.01") * len(source["spot_positions"])

    # more than the portfolio holds is refused; a portfolio holding funds cannot be deleted
    too_much = dict(move, funds={"value": "1000", "currency": "USD"}, source_portfolio_uuid=created["uuid"])
    status, _ = await served.call("POST", f"{P}/portfolios/move_funds", too_much)
    assert status == 400
    status, _ = await served.call("DELETE", f"{P}/portfolios/{created['uuid']}")
    assert status == 400
    back = dict(move, source_portfolio_uuid=created["uuid"], target_portfolio_uuid=default)
    await _ok(served, "POST", f"{P}/portfolios/move_funds", back)
    await _ok(served, "DELETE", f"{P}/portfolios/{created['uuid']}")
    assert D((await _account(served, "USD"))["available_balance"]["value"]) == usd_before
    status, _ = await served.call("GET", f"{P}/portfolios/{created['uuid']}")
    assert status == 404


async def test_an_order_carries_its_retail_portfolio_id(served: Served) -> None:
    default = (await _ok(served, "GET", f"{P}/key_permissions"))["portfolio_uuid"]
    created = (await _ok(served, "POST", f"{P}/portfolios", {"name": "Bots"}))["portfolio"]
    move = {  # the order draws on its own portfolio's funds (tests/sim/test_portfolio_funds.py)
        "funds": {"value": "1000", "currency": "USD"},
        "source_portfolio_uuid": default,
        "target_portfolio_uuid": created["uuid"],
    }
    await _ok(served, "POST", f"{P}/portfolios/move_funds", move)
    order = {
        "client_order_id": "pf-1",
        "product_id": "BTC-USD",
        "side": "BUY",
        "retail_portfolio_id": created["uuid"],
        "order_configuration": {"limit_limit_gtc": {"base_size": "0.01", "limit_price": "50000.00"}},
    }
    placed = await _ok(served, "POST", f"{P}/orders", order)
    fetched = (await _ok(served, "GET", f"{P}/orders/historical/{placed['order_id']}"))["order"]
    assert fetched["retail_portfolio_id"] == created["uuid"]
    served.sim.set_mid("BTC-USD", D("49000"))  # it fills: the fill carries the portfolio too
    fills = (await _ok(served, "GET", f"{P}/orders/historical/fills?order_ids={placed['order_id']}"))["fills"]
    assert fills
    assert {f["retail_portfolio_id"] for f in fills} == {created["uuid"]}
    status, _ = await served.call(
        "POST", f"{P}/orders", dict(order, client_order_id="pf-2", retail_portfolio_id="nope")
    )
    assert status == 404


async def test_convert_quote_then_commit_moves_balances_and_charges_the_fee(served: Served) -> None:
    usd, usdc = await _account(served, "USD"), await _account(served, "USDC")
    body = {"from_account": usd["uuid"], "to_account": usdc["uuid"], "amount": "1000"}
    trade = (await _ok(served, "POST", f"{P}/convert/quote", body))["trade"]
    assert trade["status"] == "TRADE_STATUS_CREATED"
    fee = D(trade["total_fee"]["amount"]["value"])
    assert fee > 0
    assert D((await _account(served, "USD"))["available_balance"]["value"]) == D(
        usd["available_balance"]["value"]
    )
    accounts = {"from_account": usd["uuid"], "to_account": usdc["uuid"]}
    committed = (await _ok(served, "POST", f"{P}/convert/trade/{trade['id']}", accounts))["trade"]
    assert committed["status"] == "TRADE_STATUS_COMPLETED"
    usd_after, usdc_after = await _account(served, "USD"), await _account(served, "USDC")
    assert D(usd["available_balance"]["value"]) - D(usd_after["available_balance"]["value"]) == D("1000")
    gained = D(usdc_after["available_balance"]["value"]) - D(usdc["available_balance"]["value"])
    assert gained == D("1000") - fee  # USD to USDC at par, less the fee
    query = f"?from_account={usd['uuid']}&to_account={usdc['uuid']}"
    fetched = (await _ok(served, "GET", f"{P}/convert/trade/{trade['id']}{query}"))["trade"]
    assert fetched["status"] == "TRADE_STATUS_COMPLETED"
    # a second commit is refused, and so is a quote past its expiry
    status, _ = await served.call("POST", f"{P}/convert/trade/{trade['id']}", accounts)
    assert status == 400
    stale = (await _ok(served, "POST", f"{P}/convert/quote", body))["trade"]
    served.sim.clock.base_offset_s += 60
    status, answer = await served.call("POST", f"{P}/convert/trade/{stale['id']}", accounts)
    assert status == 400
    assert "expired" in answer["message"]
    assert D((await _account(served, "USD"))["available_balance"]["value"]) == D(
        usd_after["available_balance"]["value"]
    )


async def test_payment_methods_list_and_fetch(served: Served) -> None:
    methods = (await _ok(served, "GET", f"{P}/payment_methods"))["payment_methods"]
    assert {m["type"] for m in methods} == {"ACH", "DEBIT_CARD"}
    one = (await _ok(served, "GET", f"{P}/payment_methods/{methods[0]['id']}"))["payment_method"]
    assert one == methods[0]
    status, _ = await served.call("GET", f"{P}/payment_methods/unknown")
    assert status == 404
