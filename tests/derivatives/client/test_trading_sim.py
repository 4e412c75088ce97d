"""The gateway client against the simulator's gateway on loopback: auth with both key types, orders of
every kind, many in flight on one socket, positions, cancel-on-disconnect, user channels, typed errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from engine.errors import (
    GatewayAuthError,
    InsufficientFunds,
    InvalidParams,
    MethodNotAllowed,
    SubscriptionRejected,
)
from engine.venues.derivatives import (
    Direction,
    LinkedOrder,
    LinkedOrderType,
    OrderState,
    OrderType,
    PositionDirection,
    TimeInForce,
    Trigger,
)
from engine.venues.derivatives.connection import SessionConfig
from engine.venues.derivatives.credits import RequestClass
from engine.venues.derivatives.session import TradingSession
from engine.venues.derivatives.types import Order
from tests.derivatives.client.conftest import FAST_RECONNECT, TEST_SESSION, GatewayEnv
from tests.support.keys import TestKey, new_ed25519_key

BTC = "BTC_USDC-PERPETUAL"
ETH = "ETH_USDC-PERPETUAL"


async def _far_bid(gateway: GatewayEnv, instrument: str = BTC) -> Decimal:
    async with gateway.http() as client:
        ticker = await client.ticker(instrument)
        spec = await client.get_instrument(instrument)
    assert ticker.best_bid_price is not None
    price = ticker.best_bid_price * Decimal("0.8")
    return price - price % spec.tick_size


@pytest.mark.parametrize("which", ["es256", "ed25519"])
async def test_both_key_types_authenticate_and_a_limit_order_lives_its_life(
    gateway: GatewayEnv, which: str
) -> None:
    test_key = gateway.es256 if which == "es256" else gateway.ed25519
    price = await _far_bid(gateway)
    async with gateway.session(test_key) as session:
        assert session.expires_in > 0
        instruments = {i.instrument_name: i for i in await session.get_instruments("USDC")}
        assert {BTC, ETH, "SOL_USDC-PERPETUAL"} <= set(instruments)
        placed = await session.buy(
            BTC, Decimal("0.0001"), price=price, label="life-1", time_in_force=TimeInForce.GOOD_TIL_CANCELLED
        )
        order = placed.order
        assert order.order_state is OrderState.OPEN
        assert order.direction is Direction.BUY
        assert order.amount == Decimal("0.0001")
        assert order.price == price
        assert order.label == "life-1"
        open_ids = {o.order_id for o in await session.get_open_orders_by_instrument(BTC)}
        assert order.order_id in open_ids
        by_label = await session.get_order_state_by_label("life-1")
        assert [o.order_id for o in by_label] == [order.order_id]
        edited = await session.edit(order.order_id, amount=Decimal("0.0002"), price=price - 1)
        assert edited.order.amount == Decimal("0.0002")
        assert edited.order.price == price - 1
        cancelled = await session.cancel(order.order_id)
        assert cancelled.order_state is OrderState.CANCELLED
        assert (await session.get_order_state(order.order_id)).order_state is OrderState.CANCELLED


async def test_thirty_two_orders_in_flight_on_one_socket_each_placed_once(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    async with gateway.session() as session:
        results = await asyncio.gather(
            *(session.buy(BTC, Decimal("0.0001"), price=price, label=f"many-{i}") for i in range(32))
        )
        ids = {result.order.order_id for result in results}
        assert len(ids) == 32
        assert sorted(r.order.label for r in results) == sorted(f"many-{i}" for i in range(32))
        assert session.stats.connects == 1
        mine = {
            o.order_id
            for o in await session.get_open_orders_by_instrument(BTC)
            if o.label.startswith("many-")
        }
        assert mine == ids
        assert await session.cancel_by_label("many-0") == 1
        assert await session.cancel_all_by_instrument(BTC) == 31


async def test_market_buy_opens_a_position_and_close_position_flattens_it(gateway: GatewayEnv) -> None:
    async with gateway.session() as session:
        bought = await session.buy(ETH, Decimal("0.02"), type=OrderType.MARKET, label="mkt")
        assert bought.order.order_state is OrderState.FILLED
        assert sum(t.amount for t in bought.trades) == Decimal("0.02")
        reduced = await session.sell(ETH, Decimal("0.01"), type=OrderType.MARKET, reduce_only=True)
        assert reduced.order.reduce_only
        position = await session.get_position(ETH)
        assert position.direction is PositionDirection.BUY
        assert position.size == Decimal("0.01")
        assert position.initial_margin is not None
        assert position.initial_margin > 0
        summary = await session.get_account_summary("USDC")
        assert summary.currency.upper() == "USDC"
        assert summary.equity is not None
        closed = await session.close_position(ETH, OrderType.MARKET)
        assert closed.order.reduce_only
        assert (await session.get_position(ETH)).size == 0
        trades = await session.get_user_trades_by_instrument(ETH)
        assert len(trades.trades) >= 2


async def test_every_order_type_and_flag_reaches_the_gateway(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    async with gateway.session() as session:
        ticker = await session.ticker(BTC)
        assert ticker.mark_price is not None
        above = (ticker.mark_price * Decimal("1.5")).quantize(Decimal(1))
        stop = await session.buy(
            BTC,
            Decimal("0.0001"),
            type=OrderType.STOP_MARKET,
            trigger=Trigger.MARK_PRICE,
            trigger_price=above,
        )
        assert stop.order.order_state is OrderState.UNTRIGGERED
        assert stop.order.trigger_price == above
        stop_limit = await session.buy(
            BTC, Decimal("0.0001"), type=OrderType.STOP_LIMIT, price=above + 10, trigger=Trigger.LAST_PRICE,
            trigger_price=above,
        )  # fmt: skip
        assert stop_limit.order.order_type is OrderType.STOP_LIMIT
        post = await session.buy(BTC, Decimal("0.0001"), price=price, post_only=True, reject_post_only=True)
        assert post.order.post_only
        ioc = await session.buy(
            BTC, Decimal("0.0001"), price=price, time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL
        )
        assert ioc.order.order_state is OrderState.CANCELLED
        bracket = await session.buy(
            BTC,
            Decimal("0.0001"),
            price=price,
            label="entry",
            linked_order_type=LinkedOrderType.ONE_TRIGGERS_ONE_CANCELS_OTHER,
            otoco_config=[
                LinkedOrder(Direction.SELL, Decimal("0.0001"), OrderType.TAKE_LIMIT, price=price * 2,
                            trigger=Trigger.MARK_PRICE, trigger_price=price * 2, label="tp"),
                LinkedOrder(Direction.SELL, Decimal("0.0001"), OrderType.STOP_MARKET,
                            trigger=Trigger.MARK_PRICE, trigger_price=price / 2, label="sl"),
            ],
        )  # fmt: skip
        assert bracket.order.label == "entry"
        await session.cancel_all()
        assert await session.get_open_orders() == ()


async def test_eight_decimal_amounts_and_exact_prices_arrive_as_sent(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    async with gateway.session() as session:
        result = await session.buy(BTC, Decimal("0.00010000"), price=price + Decimal("0.5"))
        assert result.order.price == price + Decimal("0.5")
        assert result.order.amount == Decimal("0.0001")
        await session.cancel(result.order.order_id)


async def test_errors_come_typed_from_the_gateway(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    async with gateway.session() as session:
        with pytest.raises(InsufficientFunds):  # 100 BTC needs far more initial margin than the account has
            await session.buy(BTC, Decimal(100), price=price)
        with pytest.raises(InvalidParams):
            await session.buy(BTC, Decimal("0.00001"), price=price)  # under the minimum amount
        with pytest.raises(InvalidParams):
            await session.buy("NOPE_USDC-PERPETUAL", Decimal("0.0001"), price=price)
        with pytest.raises(MethodNotAllowed):
            await session.request("public/subscribe", {"channels": [f"book.{BTC}.100ms"]})
        assert session.connected


@pytest.mark.parametrize("sim_config", [{"credits": True}], indirect=True)
async def test_the_default_credit_pools_keep_a_burst_inside_the_gateways_limits(gateway: GatewayEnv) -> None:
    """The gateway ends the session of a key that spends its credits; the client's pools (Deribit's
    defaults less a margin) pace a burst of 30 orders so that it never does."""
    price = await _far_bid(gateway)
    key = gateway.key()
    async with TradingSession(key, gateway.trading_url, config=TEST_SESSION) as session:
        results = await asyncio.gather(
            *(session.buy(BTC, Decimal("0.0001"), price=price, label=f"paced-{i}") for i in range(30))
        )
        assert len({r.order.order_id for r in results}) == 30
        assert session.stats.connects == 1
        assert session.stats.disconnects == 0
        assert session.credits is not None
        assert session.credits.limiter(RequestClass.MATCHING).stats().queued > 0  # it did have to wait


async def test_an_unregistered_key_is_refused_at_auth_with_a_diagnosis(gateway: GatewayEnv) -> None:
    stranger = new_ed25519_key()
    with pytest.raises(GatewayAuthError) as refused:
        async with gateway.session(stranger):
            pass
    assert refused.value.hint
    assert refused.value.rpc_code == 13004


async def test_cancel_on_disconnect_cancels_this_connections_orders(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    async with gateway.session() as watcher:
        async with gateway.session() as session:
            order = (await session.buy(BTC, Decimal("0.0001"), price=price, label="cod")).order
            session.drop_connection()
            while session.stats.disconnects < 1:
                await asyncio.sleep(0.01)
        for _ in range(200):
            state = await watcher.get_order_state(order.order_id)
            if state.order_state is OrderState.CANCELLED:
                break
            await asyncio.sleep(0.01)
        assert state.order_state is OrderState.CANCELLED
        assert state.cancel_reason == "cancel_on_disconnect"


async def test_without_cancel_on_disconnect_orders_outlive_the_connection(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    config = SessionConfig(cancel_on_disconnect=False, reconnect=FAST_RECONNECT)
    async with gateway.session(config=config) as session:
        order = (await session.buy(BTC, Decimal("0.0001"), price=price)).order
        session.drop_connection()
        while session.stats.connects < 2 or not session.connected:  # back, authenticated, resubscribed
            await asyncio.sleep(0.01)
        assert (await session.get_order_state(order.order_id)).order_state is OrderState.OPEN
        assert session.stats.connects == 2


async def test_user_channels_deliver_our_orders_and_fills(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    orders: list[Order] = []
    async with gateway.session() as session:
        await session.subscribe_orders(orders.append, BTC)
        changes: list[object] = []
        await session.subscribe_changes(changes.append, ETH)
        placed = (await session.buy(BTC, Decimal("0.0001"), price=price, label="note")).order
        await session.buy(ETH, Decimal("0.01"), type=OrderType.MARKET)
        for _ in range(300):
            if any(o.order_id == placed.order_id for o in orders) and changes:
                break
            await asyncio.sleep(0.01)
        assert any(o.order_id == placed.order_id and o.label == "note" for o in orders)
        assert changes
        with pytest.raises(SubscriptionRejected) as rejected:
            await session.subscribe_channels(
                [f"book.{BTC}.100ms", f"user.orders.{ETH}.raw"], lambda c, d: None
            )
        assert rejected.value.rejected == [f"book.{BTC}.100ms"]


async def test_a_reconnect_resubscribes_the_user_channels(gateway: GatewayEnv) -> None:
    price = await _far_bid(gateway)
    orders: list[Order] = []
    async with gateway.session() as session:
        await session.subscribe_orders(orders.append, BTC)
        session.drop_connection()
        while session.stats.connects < 2 or not session.connected:  # back, authenticated, resubscribed
            await asyncio.sleep(0.01)
        placed = (await session.buy(BTC, Decimal("0.0001"), price=price)).order
        for _ in range(300):
            if any(o.order_id == placed.order_id for o in orders):
                break
            await asyncio.sleep(0.01)
        assert any(o.order_id == placed.order_id for o in orders)
        assert session.stats.resubscribed >= 1


async def test_http_caches_its_token_and_keeps_it_out_of_logs(
    gateway: GatewayEnv, caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway.http() as client:
        for _ in range(3):
            await client.get_positions()
        assert client.token_exchanges == 1
        token = await client.access_token()
        assert token not in repr(client.__dict__)
        summaries = await client.get_account_summaries()
        assert summaries.summaries
        book = await client.get_order_book(BTC, depth=5)
        assert book.bids
        assert book.asks
        assert book.bids[0][0] < book.asks[0][0]
        index = await client.get_index_price("btc_usdc")
        assert index.index_price > 0
        leverage = await client.get_leverage(BTC)
        assert leverage.leverage > 0
        assert (await client.set_leverage(BTC, 5)).leverage == 5
        margins = await client.get_margins(BTC, Decimal("0.01"), Decimal(60000))
        assert margins.buy is not None
        assert margins.buy > 0
        assert (await client.get_max_order_size(BTC)).max_tradable_amount.buy is not None
    assert all(token not in record.getMessage() for record in caplog.records)


async def test_http_refreshes_a_refused_token_once(
    gateway: GatewayEnv, register_key: Callable[..., TestKey]
) -> None:
    async with gateway.http() as client:
        await client.get_positions()
        assert client.token_exchanges == 1
        assert client._token is not None
        client._token.value = "revoked-token"  # what the gateway sees when it has forgotten a token
        await client.get_positions()  # 13009, a fresh token, the call once more
        assert client.token_exchanges == 2
