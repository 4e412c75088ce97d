"""Portfolios hold funds of their own: an order placed with a `retail_portfolio_id` holds and settles in that
portfolio's accounts, is refused when that portfolio lacks the funds (whatever the default holds),
`move_funds` changes what it can buy, and every breakdown adds up to the accounts behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from engine import Client
from engine.auth import CdpKey
from engine.errors import OrderRejected
from engine.rest import LimitGtc, MarketIoc, Side
from tests.sim.conftest import Served

P = "/api/v3/brokerage"


@pytest.fixture
async def client(served: Served) -> AsyncIterator[Client]:
    async with Client(CdpKey(served.key.name, served.key.private_key), served.base_url) as c:
        yield c


async def _balances(client: Client, portfolio: str) -> dict[str, tuple[D, D]]:
    """currency -> (available, hold) as GET /accounts?retail_portfolio_id= reports them."""
    page = await client.accounts(limit=250, retail_portfolio_id=portfolio)
    found = {}
    for account in page.items:
        assert account.available_balance is not None
        assert account.hold is not None
        found[account.currency] = (account.available_balance.value, account.hold.value)
    return found


async def _total(client: Client, portfolio: str) -> D:
    breakdown = await client.portfolios.breakdown(portfolio, currency="USD")
    assert breakdown.total_balance is not None
    rows = sum((s.total_balance_fiat or D(0) for s in breakdown.spot_positions), D(0))
    assert abs(breakdown.total_balance.value - rows) <= D("0.01") * len(breakdown.spot_positions)
    return breakdown.total_balance.value


async def test_an_order_draws_on_its_own_portfolio(served: Served, client: Client) -> None:
    (default,) = [p.uuid for p in await client.portfolios.list()]
    bots = (await client.portfolios.create("Bots")).uuid
    default_before = await _balances(client, default)
    assert default_before["USD"][0] > 1000  # the default could pay for it...
    with pytest.raises(OrderRejected) as refused:  # ...but the order is the empty portfolio's
        await client.create_order("BTC-USD", Side.BUY, MarketIoc(quote_size="500"), retail_portfolio_id=bots)
    assert refused.value.failure_reason == "INSUFFICIENT_FUND"
    assert await _balances(client, default) == default_before

    await client.portfolios.move_funds("1000", "USD", default, bots)
    assert (await _balances(client, bots))["USD"] == (D(1000), D(0))
    bought = await client.create_order(
        "BTC-USD", Side.BUY, MarketIoc(quote_size="500"), retail_portfolio_id=bots
    )
    order = await client.get_order(bought.order_id)
    assert order.retail_portfolio_id == bots
    assert order.filled_size is not None
    assert order.filled_size > 0
    after = await _balances(client, bots)
    assert D(500) <= after["USD"][0] < D("500.01")  # the quote size, fee included, and never more
    assert after["BTC"][0] == order.filled_size
    unchanged = await _balances(client, default)
    assert unchanged["USD"][0] == default_before["USD"][0] - 1000  # only the move
    assert unchanged["BTC"] == default_before["BTC"]
    fills = (await client.fills(order_ids=[bought.order_id])).items
    assert fills
    assert {f.raw["retail_portfolio_id"] for f in fills} == {bots}

    # a resting order holds in its portfolio, and the hold is not movable
    bid = served.sim.markets["BTC-USD"].best_bid()
    size = (D(400) / bid).quantize(D("0.00000001"))
    resting = await client.create_order(
        "BTC-USD",
        Side.BUY,
        LimitGtc(base_size=str(size), limit_price=str(bid - 1000)),
        retail_portfolio_id=bots,
    )
    held = await _balances(client, bots)
    assert held["USD"][1] > 0
    assert held["USD"][0] == after["USD"][0] - held["USD"][1]
    assert (await _balances(client, default))["USD"][1] == default_before["USD"][1]
    with pytest.raises(OrderRejected):  # what is left is too little for another one that size
        await client.create_order(
            "BTC-USD", Side.BUY, LimitGtc(base_size=str(size * 2), limit_price=str(bid - 1000)),
            retail_portfolio_id=bots,
        )  # fmt: skip
    code, _ = await served.call(
        "POST", f"{P}/portfolios/move_funds",
        {"funds": {"value": "499", "currency": "USD"}, "source_portfolio_uuid": bots,
         "target_portfolio_uuid": default},
    )  # fmt: skip
    assert code == 400  # the hold stays put
    await client.cancel_orders(resting.order_id)
    assert (await _balances(client, bots))["USD"] == (after["USD"][0], D(0))

    # selling: the portfolio's own base, not the default's
    btc_in_bots = after["BTC"][0]
    with pytest.raises(OrderRejected) as refused:
        await client.create_order(
            "BTC-USD", Side.SELL, MarketIoc(base_size=str(btc_in_bots + D("0.01"))), retail_portfolio_id=bots
        )
    assert refused.value.failure_reason == "INSUFFICIENT_FUND"
    await client.create_order(
        "BTC-USD", Side.SELL, MarketIoc(base_size=str(btc_in_bots)), retail_portfolio_id=bots
    )
    sold = await _balances(client, bots)
    assert sold["BTC"][0] == 0
    assert sold["USD"][0] > D(500)


async def test_the_breakdowns_add_up_and_the_money_is_conserved(served: Served, client: Client) -> None:
    (default,) = [p.uuid for p in await client.portfolios.list()]
    bots = (await client.portfolios.create("Bots")).uuid
    served.sim.market_paused = True
    total_before = await _total(client, default)
    await client.portfolios.move_funds("2000", "USD", default, bots)
    assert await _total(client, bots) == D(2000)
    assert await _total(client, default) + D(2000) == total_before
    await client.create_order("BTC-USD", Side.BUY, MarketIoc(quote_size="1000"), retail_portfolio_id=bots)
    breakdown = await client.portfolios.breakdown(bots, currency="USD")
    assets = {s.asset: s for s in breakdown.spot_positions}
    assert set(assets) == {"USD", "BTC"}
    wallet = served.sim.portfolios.get(bots).wallet
    for asset, row in assets.items():
        account = wallet.get(asset)
        assert account is not None
        assert row.total_balance_crypto == account.balance
        assert row.account_uuid == account.uuid  # the portfolio's own account
    assert await _total(client, bots) < D(2000)  # the fee, and the spread at the mid
    # a portfolio's account is found by its uuid, naming its portfolio
    usd = wallet.get("USD")
    assert usd is not None
    got = await client.account(usd.uuid)
    assert got.raw["retail_portfolio_id"] == bots


async def test_preview_and_is_max_read_the_portfolio(served: Served) -> None:
    default = served.sim.accounts.portfolio_uuid
    code, created = await served.call("POST", f"{P}/portfolios", {"name": "Small"})
    assert code == 200
    small = created["portfolio"]["uuid"]
    move: dict[str, Any] = {
        "funds": {"value": "300", "currency": "USD"},
        "source_portfolio_uuid": default,
        "target_portfolio_uuid": small,
    }
    assert (await served.call("POST", f"{P}/portfolios/move_funds", move))[0] == 200
    body: dict[str, Any] = {
        "product_id": "BTC-USD",
        "side": "BUY",
        "retail_portfolio_id": small,
        "order_configuration": {"market_market_ioc": {"quote_size": "500"}},
    }
    code, preview = await served.call("POST", f"{P}/orders/preview", body)
    assert code == 200
    assert preview["errs"] == ["PREVIEW_INSUFFICIENT_FUND"]
    body["order_configuration"] = {"market_market_ioc": {"quote_size": "200"}}
    code, preview = await served.call("POST", f"{P}/orders/preview", body)
    assert preview["errs"] == []
    code, preview = await served.call("POST", f"{P}/orders/preview", dict(body, is_max=True))
    assert code == 200
    assert D(preview["order_total"]) <= D(300)
    assert D(preview["order_total"]) > D(290)  # sized to the portfolio's 300, not the default's funds


async def test_a_convert_moves_funds_inside_its_portfolio(served: Served, client: Client) -> None:
    (default,) = [p.uuid for p in await client.portfolios.list()]
    bots = (await client.portfolios.create("Bots")).uuid
    await client.portfolios.move_funds("1000", "USD", default, bots)
    wallet = served.sim.portfolios.get(bots).wallet
    usd, usdc = wallet.get("USD"), wallet.get("USDC")
    assert usd is not None
    assert usdc is not None
    default_before = await _balances(client, default)
    trade = await client.converts.quote(usd.uuid, usdc.uuid, "400")
    await client.converts.commit(trade.id, usd.uuid, usdc.uuid)
    after = await _balances(client, bots)
    assert after["USD"][0] == D(600)
    assert D(390) < after["USDC"][0] < D(400)  # at par, less the fee
    assert await _balances(client, default) == default_before
    default_usdc = served.sim.accounts.get("USDC")
    assert default_usdc is not None
    code, refused = await served.call(
        "POST",
        f"{P}/convert/quote",
        {"from_account": usd.uuid, "to_account": default_usdc.uuid, "amount": "1"},
    )
    assert code == 400
    assert "different portfolios" in refused["message"]
