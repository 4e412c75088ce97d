"""The typed API against the simulator with no faults: every endpoint family answers with typed values."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from engine.errors import ConfigError, ExchangeError, NotFound, OrderRejected
from engine.rest import LimitGtc, MarketIoc, Side
from engine.venues.advanced.futures import IntradayMarginSetting
from tests.client.conftest import SimEnv


async def test_reference_data_is_typed(env: SimEnv) -> None:
    async with env.client() as client:
        server_time = await client.time()
        assert server_time.epoch_seconds > 1.7e9
        permissions = await client.key_permissions()
        assert permissions.can_view
        assert permissions.can_trade
        accounts = await client.accounts()
        usd = next(a for a in accounts.items if a.currency == "USD")
        assert usd.available_balance is not None
        assert usd.available_balance.value == Decimal("100000")
        assert (await client.account(usd.uuid)).uuid == usd.uuid
        products = await client.products()
        assert "BTC-USD" in {p.product_id for p in products}
        btc = await client.product("BTC-USD")
        assert isinstance(btc.price, Decimal)
        (book,) = await client.best_bid_ask(["BTC-USD"])
        assert book.best_bid is not None
        assert book.best_ask is not None
        assert book.best_bid.price < book.best_ask.price


async def test_order_lifecycle(env: SimEnv) -> None:
    async with env.client() as client:
        preview = await client.preview_order("BTC-USD", Side.BUY, MarketIoc(quote_size="100"))
        assert preview.ok
        assert preview.commission_total is not None
        resting = await client.create_order(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price="1000.00", post_only=True)
        )
        assert not resting.confirmed_by_lookup
        order = await client.get_order(resting.order_id)
        assert order.status == "OPEN"
        assert order.client_order_id == resting.client_order_id
        edited = await client.edit_order(resting.order_id, price=Decimal("1001.00"))
        assert edited.success
        assert (await client.find_order(resting.client_order_id)) is not None
        page = await client.list_orders(product_ids="BTC-USD", order_status="OPEN")
        assert [o.order_id for o in page.items] == [resting.order_id]
        (cancel,) = await client.cancel_orders(resting.order_id)
        assert cancel.success
        assert (await client.get_order(resting.order_id)).status == "CANCELLED"

        taker = await client.create_order("BTC-USD", "BUY", MarketIoc(quote_size="100"))
        fills = await client.fills(order_ids=taker.order_id)
        assert fills.items
        assert all(f.order_id == taker.order_id and f.price is not None for f in fills.items)
    assert env.ledger_client_order_ids() == [resting.client_order_id, taker.client_order_id]


async def test_rejections_and_not_found_are_typed(env: SimEnv) -> None:
    async with env.client() as client:
        with pytest.raises(OrderRejected) as rejected:
            await client.create_order("BTC-USD", Side.BUY, LimitGtc(base_size="1000", limit_price="60000"))
        assert rejected.value.failure_reason == "INSUFFICIENT_FUND"
        assert "INSUFFICIENT_FUND" in str(rejected.value)
        assert rejected.value.client_order_id is not None
        with pytest.raises(NotFound, match="404"):
            await client.get_order("no-such-order")
        with pytest.raises(ConfigError, match="Exchange key"):
            await client.exchange.accounts()
    assert len(env.sim.ledger) == 0


async def test_futures_endpoints(env: SimEnv) -> None:
    async with env.client() as client:
        summary = await client.futures.balance_summary()
        assert summary.futures_buying_power is not None
        assert await client.futures.positions() == []
        await client.create_order("BIP-20DEC30-CDE", Side.BUY, MarketIoc(base_size="2"))
        position = await client.futures.position("BIP-20DEC30-CDE")
        assert position is not None
        assert position.number_of_contracts == Decimal("2")
        assert position.side == "LONG"
        closed = await client.close_position("BIP-20DEC30-CDE")
        assert closed.order_id
        assert await client.futures.position("BIP-20DEC30-CDE") is None
        assert await client.futures.sweeps() == []
        assert await client.futures.schedule_sweep("250.5")
        (sweep,) = await client.futures.sweeps()
        assert sweep.status == "PENDING"
        assert not sweep.should_sweep_all
        assert sweep.requested_amount is not None
        assert sweep.requested_amount.value == Decimal("250.5")
        with pytest.raises(ExchangeError):  # one pending sweep at a time
            await client.futures.schedule_sweep()
        assert await client.futures.cancel_sweep()
        assert await client.futures.sweeps() == []
        assert not await client.futures.cancel_sweep()  # nothing left to cancel
        assert await client.futures.schedule_sweep()  # no amount: sweep all
        (sweep,) = await client.futures.sweeps()
        assert sweep.should_sweep_all
        await client.futures.set_intraday_margin_setting(IntradayMarginSetting.INTRADAY)
        assert await client.futures.intraday_margin_setting() is IntradayMarginSetting.INTRADAY
        window = await client.futures.current_margin_window()
        assert window.margin_window_type.startswith("FCM_MARGIN_WINDOW")


async def test_exchange_api_with_hmac_key(env: SimEnv) -> None:
    async with env.exchange_client() as client:
        assert (await client.exchange.time()).epoch_seconds > 1.7e9
        accounts = await client.exchange.accounts()
        assert {"USD", "BTC"} <= {a.currency for a in accounts}
        order = await client.exchange.create_order(
            "BTC-USD", "buy", size=Decimal("0.01"), price="1000.00", post_only=True
        )
        assert order.status == "open"
        assert (await client.exchange.get_order(order.id)).client_oid == order.client_oid
        assert (await client.exchange.get_order_by_client_oid(order.client_oid)).id == order.id
        assert [o.id for o in await client.exchange.list_orders(status="open")] == [order.id]
        assert await client.exchange.cancel_order(order.id) == order.id
        with pytest.raises(OrderRejected, match="Insufficient funds"):
            await client.exchange.create_order("BTC-USD", "buy", size="1000", price="60000")
        with pytest.raises(ConfigError, match="CDP key"):
            await client.key_permissions()
    assert len(env.sim.ledger) == 1


async def test_many_requests_in_flight_share_one_session(env: SimEnv) -> None:
    import asyncio

    async with env.client() as client:
        books = await asyncio.gather(*(client.best_bid_ask("ETH-USD") for _ in range(25)))
        assert all(b[0].product_id == "ETH-USD" for b in books)
        assert client.limiter_stats().granted >= 25


async def test_trace_configs_observe_every_request_and_its_exact_headers(env: SimEnv) -> None:
    seen: list[tuple[str, str, dict[str, str]]] = []

    async def on_request_end(_: Any, __: Any, params: aiohttp.TraceRequestEndParams) -> None:
        seen.append((params.method, params.url.path, dict(params.headers)))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    trace.freeze()
    async with env.client(trace_configs=[trace], sync_clock=False) as client:
        await client.accounts()
        config = LimitGtc(base_size="0.001", limit_price="1000.00")
        await client.create_order("BTC-USD", Side.BUY, config)
    assert [(method, path) for method, path, _ in seen] == [
        ("GET", "/api/v3/brokerage/accounts"),
        ("POST", "/api/v3/brokerage/orders"),
    ]
    get_headers, post_headers = seen[0][2], seen[1][2]
    for headers in (get_headers, post_headers):
        assert headers["Authorization"].startswith("Bearer ")
        assert headers["Accept"] == "application/json"
        assert headers["Accept-Encoding"] == "identity"  # no compression offered
    assert "Content-Type" not in get_headers
    assert post_headers["Content-Type"] == "application/json"
