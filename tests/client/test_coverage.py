"""Every live endpoint of the official SDK's RESTClient has a typed method on `engine.Client`, and the ones
added for full coverage answer with real state from the simulator."""

from __future__ import annotations

import inspect
import re
from decimal import Decimal
from typing import Any

import pytest
from coinbase.rest import RESTClient

from engine.errors import ExchangeError, InvalidValue, NotFound
from engine.rest import Client, LimitGtc, MarketIoc, Side, TriggerBracketGtc
from engine.venues.advanced.market import Granularity
from engine.venues.advanced.orders import ClosePositionRequest, OrderRequest
from tests.client.conftest import SimEnv

# The SDK's method -> where the client answers it (`futures.positions` is `client.futures.positions`).
ENDPOINTS: dict[str, str] = {
    "get_accounts": "accounts",
    "get_account": "account",
    "get_api_key_permissions": "key_permissions",
    "get_unix_time": "time",
    "get_products": "products",
    "get_product": "product",
    "get_best_bid_ask": "best_bid_ask",
    "get_product_book": "product_book",
    "get_candles": "candles",
    "get_market_trades": "market_trades",
    "get_public_products": "public_products",
    "get_public_product": "public_product",
    "get_public_product_book": "public_product_book",
    "get_public_candles": "public_candles",
    "get_public_market_trades": "public_market_trades",
    "get_transaction_summary": "transaction_summary",
    "create_order": "create_order",
    "preview_order": "preview_order",
    "cancel_orders": "cancel_orders",
    "edit_order": "edit_order",
    "preview_edit_order": "preview_edit_order",
    "get_order": "get_order",
    "list_orders": "list_orders",
    "get_fills": "fills",
    "close_position": "close_position",
    "get_portfolios": "portfolios.list",
    "create_portfolio": "portfolios.create",
    "edit_portfolio": "portfolios.edit",
    "delete_portfolio": "portfolios.delete",
    "get_portfolio_breakdown": "portfolios.breakdown",
    "move_portfolio_funds": "portfolios.move_funds",
    "create_convert_quote": "converts.quote",
    "get_convert_trade": "converts.get",
    "commit_convert_trade": "converts.commit",
    "list_payment_methods": "payment_methods.list",
    "get_payment_method": "payment_methods.get",
    "get_futures_balance_summary": "futures.balance_summary",
    "list_futures_positions": "futures.positions",
    "get_futures_position": "futures.position",
    "schedule_futures_sweep": "futures.schedule_sweep",
    "list_futures_sweeps": "futures.sweeps",
    "cancel_pending_futures_sweep": "futures.cancel_sweep",
    "get_intraday_margin_setting": "futures.intraday_margin_setting",
    "set_intraday_margin_setting": "futures.set_intraday_margin_setting",
    "get_current_margin_window": "futures.current_margin_window",
}
# Parameters the client takes under another name (it builds the configuration from typed values).
RENAMED = {
    "order_configuration": "configuration",
    "attached_order_configuration": "attached_configuration",
    "value": "value",
}


def _sdk_endpoints() -> dict[str, Any]:
    """The SDK's public methods that call an endpoint of their own, less the INTX ones Coinbase retired."""
    found = {}
    for name, method in inspect.getmembers(RESTClient, inspect.isfunction):
        if name.startswith("_"):
            continue
        source = inspect.getsource(method)
        match = re.search(r'endpoint = f?"([^"]+)"', source)
        if match and "/intx/" not in match.group(1):
            found[name] = method
    return found


def _resolve(client: Client, path: str) -> Any:
    target: Any = client
    for part in path.split("."):
        target = getattr(target, part)
    return target


def test_every_live_sdk_endpoint_maps_to_a_client_method_with_its_parameters(env: SimEnv) -> None:
    sdk = _sdk_endpoints()
    assert set(sdk) == set(ENDPOINTS), "the SDK's endpoints and the client's map differ"
    assert len(sdk) == 45
    client = env.client()
    for name, method in sdk.items():
        ours = _resolve(client, ENDPOINTS[name])
        assert inspect.iscoroutinefunction(ours), name
        theirs = [p for p in inspect.signature(method).parameters if p not in ("self", "kwargs")]
        accepted = set(inspect.signature(ours).parameters)
        if "filters" in accepted:  # public_products forwards to products
            accepted |= set(inspect.signature(client.products).parameters)
        missing = [p for p in theirs if RENAMED.get(p, p) not in accepted]
        assert not missing, f"{ENDPOINTS[name]} lacks {missing} that the SDK's {name} sends"


async def _trade(client: Client) -> None:
    await client.create_order("BTC-USD", Side.BUY, MarketIoc(quote_size="500"))
    await client.create_order("BTC-USD", Side.SELL, MarketIoc(base_size="0.002"))


async def test_candles_and_market_trades_agree_with_our_trades(env: SimEnv) -> None:
    async with env.client() as client:
        await _trade(client)
        now = int(env.sim.clock.now())
        for public in (False, True):
            trades = await client.market_trades("BTC-USD", 10, public=public)
            assert len(trades.trades) >= 2
            assert trades.best_bid is not None
            assert trades.best_ask is not None
            assert trades.best_bid < trades.best_ask
            candles = await client.candles(
                "BTC-USD", now - 600, now + 60, Granularity.ONE_MINUTE, public=public
            )
            assert candles, "a minute with trades has a candle"
            prices = [t.price for t in trades.trades if t.price is not None]
            assert min(c.low for c in candles if c.low is not None) <= min(prices)
            assert max(c.high for c in candles if c.high is not None) >= max(prices)
            volume = sum((c.volume or Decimal(0) for c in candles), Decimal(0))
            assert volume >= sum((t.size or Decimal(0) for t in trades.trades), Decimal(0))
        assert (await client.public_candles("BTC-USD", now - 600, now + 60, "ONE_MINUTE")) == candles
        assert len((await client.public_market_trades("BTC-USD", 1)).trades) == 1
        with pytest.raises(ValueError, match="TEN_SECONDS"):
            await client.candles("BTC-USD", now - 600, now, "TEN_SECONDS")
        with pytest.raises(InvalidValue):
            await client.candles("BTC-USD", "yesterday", now, "ONE_MINUTE")


async def test_product_book_public_products_and_transaction_summary(env: SimEnv) -> None:
    async with env.client() as client:
        for public in (False, True):
            book = await client.product_book("BTC-USD", limit=5, public=public)
            assert 0 < len(book.bids) <= 5
            assert 0 < len(book.asks) <= 5
            assert book.bids[0].price < book.asks[0].price
            assert book.mid_market is not None
            assert book.spread_absolute == book.asks[0].price - book.bids[0].price
        assert (await client.public_product_book("BTC-USD", limit=1)).bids
        public = await client.public_products(product_ids=["BTC-USD", "ETH-USD"])
        assert {p.product_id for p in public} == {"BTC-USD", "ETH-USD"}
        assert (await client.public_product("ETH-USD")).product_id == "ETH-USD"
        assert (await client.product("ETH-USD", get_tradability_status=True)).product_id == "ETH-USD"
        before = await client.transaction_summary()
        await _trade(client)
        after = await client.transaction_summary(product_type="SPOT")
        assert after.fee_tier.taker_fee_rate is not None
        assert after.fee_tier.taker_fee_rate > 0
        assert before.total_volume is not None
        assert after.total_volume is not None
        assert after.total_volume > before.total_volume
        assert after.total_fees is not None
        assert before.total_fees is not None
        assert after.total_fees > before.total_fees


async def test_portfolios_hold_and_move_funds(env: SimEnv) -> None:
    async with env.client() as client:
        (default,) = await client.portfolios.list()
        created = await client.portfolios.create("Bots")
        assert created.name == "Bots"
        assert created.type == "CONSUMER"
        renamed = await client.portfolios.edit(created.uuid, "Market making")
        assert renamed.name == "Market making"
        assert {p.uuid for p in await client.portfolios.list(portfolio_type="CONSUMER")} == {created.uuid}
        moved = await client.portfolios.move_funds(Decimal("125.25"), "USD", default.uuid, created.uuid)
        assert moved.target_portfolio_uuid == created.uuid
        breakdown = await client.portfolios.breakdown(created.uuid, currency="USD")
        assert breakdown.portfolio.uuid == created.uuid
        assert [(s.asset, s.total_balance_crypto) for s in breakdown.spot_positions] == [
            ("USD", Decimal("125.25"))
        ]
        assert breakdown.total_balance is not None
        assert breakdown.total_balance.value == Decimal("125.25")
        usd = next(
            a for a in (await client.accounts(retail_portfolio_id=default.uuid)).items if a.currency == "USD"
        )
        assert usd.available_balance is not None
        assert usd.available_balance.value == Decimal("100000") - Decimal("125.25")
        with pytest.raises(ExchangeError):  # a portfolio holding funds cannot be deleted
            await client.portfolios.delete(created.uuid)
        await client.portfolios.move_funds("125.25", "USD", created.uuid, default.uuid)
        await client.portfolios.delete(created.uuid)
        with pytest.raises(NotFound):
            await client.portfolios.breakdown(created.uuid)
        with pytest.raises(InvalidValue):
            await client.portfolios.create("")


async def test_convert_quote_commit_and_lookup(env: SimEnv) -> None:
    async with env.client() as client:
        accounts = {a.currency: a for a in (await client.accounts(limit=250)).items}
        usd, usdc = accounts["USD"], accounts["USDC"]
        quote = await client.converts.quote(usd.uuid, usdc.uuid, "1000")
        assert quote.status == "TRADE_STATUS_CREATED"
        assert quote.total_fee is not None
        assert quote.total_fee.value > 0
        assert quote.amount is not None
        assert quote.amount.value == Decimal("1000") - quote.total_fee.value
        committed = await client.converts.commit(quote.id, usd.uuid, usdc.uuid)
        assert committed.status == "TRADE_STATUS_COMPLETED"
        assert (await client.converts.get(quote.id, usd.uuid, usdc.uuid)).status == "TRADE_STATUS_COMPLETED"
        after = await client.account(usdc.uuid)
        assert after.available_balance is not None
        assert usdc.available_balance is not None
        assert after.available_balance.value - usdc.available_balance.value == quote.amount.value
        with pytest.raises(ExchangeError):  # committed once only
            await client.converts.commit(quote.id, usd.uuid, usdc.uuid)


async def test_payment_methods(env: SimEnv) -> None:
    async with env.client() as client:
        methods = await client.payment_methods.list()
        assert {m.type for m in methods} == {"ACH", "DEBIT_CARD"}
        ach = next(m for m in methods if m.type == "ACH")
        assert ach.allow_deposit
        assert ach.allow_withdraw
        assert await client.payment_methods.get(ach.id) == ach
        with pytest.raises(NotFound):
            await client.payment_methods.get("no-such-method")


async def test_edit_preview_and_order_filters_and_iterators(env: SimEnv) -> None:
    async with env.client() as client:
        placed = [
            await client.create_order(
                "BTC-USD",
                Side.BUY,
                LimitGtc(base_size="0.01", limit_price=str(40000 + i)),
                self_trade_prevention_id="stp-1",
            )
            for i in range(5)
        ]
        preview = await client.preview_edit_order(placed[0].order_id, size="0.02", price="39000")
        assert preview.ok
        assert preview.base_size == Decimal("0.02")
        assert preview.quote_size == Decimal("780.00")
        order = await client.get_order(placed[0].order_id)
        assert order.configuration["limit_limit_gtc"]["base_size"] == "0.01"  # a preview changes nothing
        missing = await client.preview_edit_order("no-such-order", size="1")
        assert not missing.ok
        assert missing.errors == ["ORDER_NOT_FOUND"]
        page = await client.list_orders(
            product_ids="BTC-USD", order_status="OPEN", order_side=Side.BUY, limit=2
        )
        assert len(page.items) == 2
        assert page.has_next
        assert page.cursor
        every = [
            o.order_id async for o in client.iter_orders(product_ids="BTC-USD", order_status="OPEN", limit=2)
        ]
        assert sorted(every) == sorted(p.order_id for p in placed)
        assert not (await client.list_orders(order_side="SELL", order_status="OPEN")).items
        await _trade(client)
        fills = [f async for f in client.iter_fills(product_ids=["BTC-USD"], limit=1)]
        assert len(fills) >= 2
        assert {f.order_id for f in fills} == {f.order_id for f in (await client.fills(limit=100)).items}


def test_request_building_for_the_new_order_fields() -> None:
    bracket = TriggerBracketGtc(limit_price="60000", stop_trigger_price="45000")
    order = OrderRequest(
        product_id="BTC-USD", side=Side.BUY,
        configuration=LimitGtc(base_size="0.01", limit_price="50000", rfq_disabled=True),
        attached_configuration=bracket, self_trade_prevention_id="stp",
    )  # fmt: skip
    assert b'"rfq_disabled":true' in order.body
    assert b'"attached_order_configuration":{"trigger_bracket_gtc":{"limit_price"' in order.body
    assert b'"self_trade_prevention_id":"stp"' in order.body
    assert (
        b"rfq_disabled"
        not in OrderRequest(
            product_id="BTC-USD", side=Side.BUY, configuration=LimitGtc(base_size="1", limit_price="1")
        ).body
    )
    with pytest.raises(InvalidValue, match="base_size"):  # a standalone bracket needs its size
        OrderRequest(product_id="BTC-USD", side=Side.SELL, configuration=bracket)
    sized = TriggerBracketGtc(base_size="0.01", limit_price="60000", stop_trigger_price="45000")
    with pytest.raises(InvalidValue, match="attached_order_configuration"):
        OrderRequest(
            product_id="BTC-USD",
            side=Side.BUY,
            configuration=LimitGtc(base_size="1", limit_price="1"),
            attached_configuration=sized,
        )
    # a Decimal size renders as its decimal string, once, before any I/O
    close = ClosePositionRequest(product_id="BIP-20DEC30-CDE", size=Decimal("1.50"), client_order_id="c-1")
    assert close.body == b'{"client_order_id":"c-1","product_id":"BIP-20DEC30-CDE","size":"1.50"}'
    with pytest.raises(InvalidValue):
        ClosePositionRequest(product_id="BIP-20DEC30-CDE", size=Decimal("-1"))


async def test_attached_bracket_and_decimal_close_against_the_simulator(env: SimEnv) -> None:
    async with env.client() as client:
        bracket = TriggerBracketGtc(limit_price="200000", stop_trigger_price="1000")
        placed = await client.create_order(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price="40000", rfq_disabled=True),
            attached_configuration=bracket,
        )  # fmt: skip
        order = await client.get_order(placed.order_id, user_native_currency="USD")
        assert order.configuration["limit_limit_gtc"]["rfq_disabled"] is True
        await client.create_order("BIP-20DEC30-CDE", Side.BUY, MarketIoc(base_size="3"))
        closed = await client.close_position("BIP-20DEC30-CDE", size=Decimal("1"))
        assert closed.order_id
        position = await client.futures.position("BIP-20DEC30-CDE")
        assert position is not None
        assert position.number_of_contracts == Decimal("2")
