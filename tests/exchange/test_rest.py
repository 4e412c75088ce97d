"""The engine's Exchange client against the simulator: public market data, accounts, every order kind, pages
and iterators over the CB-BEFORE/CB-AFTER cursors, conversions; checked against the simulator's own state."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import ConfigError, ExchangeError, NotFound
from engine.venues.exchange import (
    ExchangeOrderType,
    Liquidity,
    OrderSide,
    OrderStatus,
    SelfTradePrevention,
    StopType,
    TimeInForce,
)
from tests.exchange.conftest import ServedExchange

D = Decimal


async def test_public_market_data(served: ServedExchange) -> None:
    sim = served.sim
    for price in ("60100", "60200", "60050"):
        sim.set_mid("BTC-USD", D(price))
        sim.tick()
    async with served.client() as client:
        api = client.exchange
        assert (await api.time()).epoch_seconds > 1.7e9
        products = {p.id: p for p in await api.products()}
        assert set(products) == {"BTC-USD", "ETH-USD"}  # futures are Advanced Trade's alone
        assert products["BTC-USD"].quote_increment == D("0.01")
        assert (await api.product("ETH-USD")).base_currency == "ETH"
        with pytest.raises(NotFound):
            await api.product("NOPE-USD")

        book = sim.markets["BTC-USD"].book
        top = await api.book("BTC-USD", level=1)
        assert [(e.price, e.size) for e in top.bids] == book.bids.levels(1)
        assert [(e.price, e.size) for e in top.asks] == book.asks.levels(1)
        level2 = await api.book("BTC-USD", level=2)
        assert [(e.price, e.size) for e in level2.bids] == book.bids.levels()
        level3 = await api.book("BTC-USD", level=3)
        assert all(e.order_id for e in level3.bids + level3.asks)
        assert level3.levels() == (book.bids.levels(), book.asks.levels())
        with pytest.raises(ValueError, match="level"):
            await api.book("BTC-USD", level=4)

        ticker = await api.ticker("BTC-USD")
        assert ticker.price == sim.markets["BTC-USD"].last_price
        assert ticker.bid == book.best_bid()
        trades = await api.trades("BTC-USD", limit=2)
        tape = list(sim.recent_trades("BTC-USD"))
        assert [t.trade_id for t in trades] == [int(t.trade_id) for t in reversed(tape)][:2]
        assert trades.after is not None
        older = await api.trades("BTC-USD", after=trades.after)
        assert [t.trade_id for t in older] == [int(t.trade_id) for t in reversed(tape)][2:]
        candles = await api.candles("BTC-USD", granularity=60)
        assert sum(c.volume for c in candles) == sum(t.size for t in tape)
        assert max(c.high for c in candles) == max(t.price for t in tape)
        stats = await api.stats("BTC-USD")
        assert stats.last == sim.markets["BTC-USD"].last_price
        currencies = {c.id: c for c in await api.currencies()}
        assert currencies["USD"].type == "fiat"
        assert currencies["USD"].convertible_to == ("USDC",)
        assert (await api.currency("BTC")).name == "Bitcoin"


async def test_orders_of_every_kind(served: ServedExchange) -> None:
    sim = served.sim
    async with served.client() as client:
        api = client.exchange
        resting = await api.create_order(
            "BTC-USD", "buy", size="0.01", price="50000.00", post_only=True,
            stp=SelfTradePrevention.CANCEL_OLDEST, max_floor="0.005",
        )  # fmt: skip
        assert (resting.status, resting.side, resting.type) == (
            OrderStatus.OPEN, OrderSide.BUY, ExchangeOrderType.LIMIT,
        )  # fmt: skip
        assert (resting.stp, resting.max_floor, resting.post_only) == (
            SelfTradePrevention.CANCEL_OLDEST, D("0.005"), True,
        )  # fmt: skip
        assert (await api.get_order_by_client_oid(resting.client_oid)).id == resting.id

        best_ask = sim.markets["BTC-USD"].best_ask()
        ioc = await api.create_order("BTC-USD", "buy", size="0.001", price=best_ask, time_in_force="IOC")
        assert (ioc.status, ioc.filled_size) == (OrderStatus.DONE, D("0.001"))
        # more than the best ask holds, limited to that price: fill or kill kills it
        beyond = sim.markets["BTC-USD"].book.asks.size_at(best_ask) + D("0.01")
        fok = await api.create_order(
            "BTC-USD", "buy", size=beyond, price=best_ask, time_in_force=TimeInForce.FOK
        )
        assert fok.status is OrderStatus.DONE
        assert fok.filled_size == 0
        by_size = await api.create_order("ETH-USD", "sell", type="market", size="0.5")
        by_funds = await api.create_order("ETH-USD", "buy", type="market", funds="100.00")
        assert by_size.status is OrderStatus.DONE
        assert by_size.filled_size == D("0.5")
        assert by_funds.funds == D("100.00")
        assert 0 < (by_funds.executed_value or 0) <= D("100")

        gtt = await api.create_order(
            "BTC-USD", "buy", size="0.01", price="40000.00", time_in_force="GTT", cancel_after="min"
        )
        assert gtt.time_in_force is TimeInForce.GTT
        assert gtt.expire_time is not None

        stop = await api.create_order(
            "BTC-USD", "sell", size="0.01", price="55000.00", stop=StopType.LOSS, stop_price="56000.00"
        )
        assert (stop.status, stop.stop, stop.stop_price) == (OrderStatus.ACTIVE, StopType.LOSS, D("56000.00"))

        for bad, match in (
            ({"size": "1", "price": "1", "cancel_after": "min"}, "GTT"),
            ({"size": "1", "price": "1", "stop": "loss"}, "stop_price"),
            ({"type": "market", "size": "1", "funds": "1"}, "exactly one"),
            ({"size": "1", "price": "1", "time_in_force": "IOC", "post_only": True}, "post_only"),
            ({"size": 0.5, "price": "1"}, "float"),
        ):
            with pytest.raises((ValueError, TypeError), match=match):
                await api.create_order("BTC-USD", "buy", **bad)  # type: ignore[arg-type]

        # the stop triggers when the last trade falls to its stop price, then rests as a limit sell
        sim.set_mid("BTC-USD", D("55990"))
        triggered = await api.get_order(stop.id)
        assert triggered.status in (OrderStatus.OPEN, OrderStatus.DONE)
        assert sim.engine.orders[stop.id].triggered

        # cancel_after=min: a minute later on the exchange's clock, the order is gone
        sim.clock.base_offset_s += 61
        sim.engine.expire_due()
        sim.clock.base_offset_s -= 61
        expired = await api.get_order(gtt.id)
        assert (expired.status, expired.done_reason) == (OrderStatus.DONE, "canceled")

        assert await api.cancel_order_by_client_oid(resting.client_oid) == resting.id
        with pytest.raises(ExchangeError, match="Order already done"):
            await api.cancel_order(resting.id)
        with pytest.raises(NotFound):
            await api.cancel_order("no-such-order")

        eth = [await api.create_order("ETH-USD", "buy", size="0.1", price=f"{1000 + i}.00") for i in range(2)]
        btc = await api.create_order("BTC-USD", "buy", size="0.01", price="30000.00")
        assert sorted(await api.cancel_all(product_id="ETH-USD")) == sorted(o.id for o in eth)
        assert (await api.get_order(btc.id)).status is OrderStatus.OPEN
        assert await api.cancel_all() == [btc.id]
    assert [o.client_order_id for o in sim.ledger if o.source == "exchange"] == [
        resting.client_oid, ioc.client_oid, fok.client_oid, by_size.client_oid, by_funds.client_oid,
        gtt.client_oid, stop.client_oid, *(o.client_oid for o in eth), btc.client_oid,
    ]  # fmt: skip


async def test_pages_and_iterators_walk_every_order_and_fill(served: ServedExchange) -> None:
    sim = served.sim
    async with served.client() as client:
        api = client.exchange
        placed = [
            await api.create_order("BTC-USD", "buy", size="0.001", price=f"{40000 + i}.00") for i in range(7)
        ]
        newest_first = [o.id for o in reversed(placed)]
        first = await api.list_orders(limit=3)
        assert [o.id for o in first] == newest_first[:3]
        assert first.after is not None
        second = await api.list_orders(limit=3, after=first.after)
        assert [o.id for o in second] == newest_first[3:6]
        back = await api.list_orders(limit=3, before=second.before)
        assert [o.id for o in back] == newest_first[:3]
        requests_before = sim.request_count(served.key.key)
        assert [o.id async for o in api.iter_orders(page_size=3)] == newest_first
        assert sim.request_count(served.key.key) - requests_before == 3  # pages of 3, 3 and 1
        assert [o.id async for o in api.iter_orders(status="all", product_id="ETH-USD")] == []

        for _ in range(5):
            await api.create_order("ETH-USD", "buy", type="market", size="0.01")
        fills = [f async for f in api.iter_fills(product_id="ETH-USD", page_size=2)]
        expected = [f for f in sim.engine.fills if f.product_id == "ETH-USD"]
        assert len(fills) == len(expected) >= 5
        assert [f.order_id for f in fills] == [f.order_id for f in reversed(expected)]
        assert all(f.liquidity is Liquidity.TAKER and f.side is OrderSide.BUY for f in fills)
        assert sum(f.size or 0 for f in fills) == D("0.05")
        page = await api.fills(order_id=fills[0].order_id)
        assert {f.order_id for f in page} == {fills[0].order_id}
        with pytest.raises(ValueError, match="order_id or product_id"):
            await api.fills()


async def test_accounts_holds_ledger_fees_profiles_conversions(served: ServedExchange) -> None:
    sim = served.sim
    async with served.client() as client:
        api = client.exchange
        accounts = {a.currency: a for a in await api.accounts()}
        usd = accounts["USD"]
        assert (await api.account(usd.id)).balance == sim.accounts.get("USD").balance  # type: ignore[union-attr]
        resting = await api.create_order("BTC-USD", "buy", size="0.01", price="50000.00")
        holds = [h async for h in api.iter_holds(usd.id)]
        assert [(h.ref, h.type) for h in holds] == [(resting.id, "order")]
        assert holds[0].amount == sim.engine.orders[resting.id].hold_amount
        assert (await api.account(usd.id)).hold == holds[0].amount

        bought = await api.create_order("BTC-USD", "buy", type="market", size="0.02")
        btc_id = accounts["BTC"].id
        entries = [e async for e in api.iter_ledger(usd.id, page_size=1)]
        assert {e.type for e in entries} == {"match", "fee"}
        assert {e.details["order_id"] for e in entries} == {bought.id}
        assert entries[0].balance == sim.accounts.get("USD").balance  # type: ignore[union-attr]
        assert sum(e.amount or 0 for e in entries) == entries[0].balance - usd.balance  # type: ignore[operator]
        btc_entries = (await api.ledger_page(btc_id)).items
        assert sum(e.amount or 0 for e in btc_entries) == D("0.02")

        fees = await api.fees()
        assert (fees.maker_fee_rate, fees.taker_fee_rate) == (
            sim.config.fees.maker_fee_rate, sim.config.fees.taker_fee_rate,
        )  # fmt: skip
        assert fees.usd_volume == sim.engine.total_volume
        (profile,) = await api.profiles()
        assert profile.is_default
        assert (await api.profile(profile.id)).id == accounts["USD"].profile_id

        usdc_before = sim.accounts.get("USDC").balance  # type: ignore[union-attr]
        conversion = await api.convert("USD", "USDC", "250.00")
        assert (conversion.from_currency, conversion.to_currency, conversion.amount) == (
            "USD",
            "USDC",
            D("250"),
        )
        assert sim.accounts.get("USDC").balance == usdc_before + 250  # type: ignore[union-attr]
        assert (await api.conversion(conversion.id)).to_account_id == accounts["USDC"].id
        latest = (await api.ledger_page(accounts["USDC"].id, limit=1))[0]
        assert (latest.type, latest.amount, latest.details["conversion_id"]) == (
            "conversion",
            250,
            conversion.id,
        )
        with pytest.raises(ExchangeError, match="Insufficient funds") as refused:
            await api.convert("USDC", "USD", "1000000")
        assert refused.value.status == 400
        with pytest.raises(ValueError, match="USD and USDC"):
            await api.convert("USD", "BTC", "1")


async def test_the_exchange_api_needs_an_exchange_key(served: ServedExchange) -> None:
    from engine.auth import CdpKey
    from engine.rest import Client
    from tests.support.keys import new_es256_key

    test_key = new_es256_key()
    async with Client(
        CdpKey(test_key.name, test_key.private_key), served.base_url, sync_clock=False
    ) as client:
        with pytest.raises(ConfigError, match="Exchange key"):
            await client.exchange.products()
