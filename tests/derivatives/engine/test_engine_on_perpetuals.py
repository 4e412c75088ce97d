"""The Engine trading perpetuals through `DerivativesVenue` against the gateway simulator on 127.0.0.1: the
same API as spot (place, cancel, edit, cancel_all, close_position, kill), order states from the user
channels, positions and margin from the gateway; the simulator's ledger is the oracle."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from engine.errors import OrderRejected
from engine.risk.gate import RiskConfig
from engine.risk.limits import ProductLimits
from engine.risk.refusal import OrderRefused, RiskRule
from engine.sim.derivatives.rpc import Params
from engine.trading.order_state import OrderState
from engine.venues.derivatives import DerivativesVenue, PerpLimit, PerpMarket
from tests.derivatives.client.conftest import TEST_SESSION
from tests.derivatives.engine.conftest import BTC, ETH, Perps, perps_session, until

D = Decimal


async def test_a_resting_limit_is_placed_with_our_id_as_label_edited_and_cancelled(perps: Perps) -> None:
    async with perps.engine() as engine:
        price = perps.far_bid()
        order = await engine.place(BTC, "BUY", PerpLimit("0.01", price))
        assert order.state is OrderState.OPEN
        assert order.client_order_id.startswith("perp-")
        [placed] = perps.ledger()[order.client_order_id]
        assert placed.order_id == order.order_id
        assert placed.is_live

        assert await engine.edit(order, size="0.02", price=price - 10)
        assert placed.amount == D("0.02")
        assert placed.price == price - 10

        assert await engine.cancel(order)
        assert order.state is OrderState.CANCELLED
        assert not placed.is_live
        journalled = await engine.journalled(order.client_order_id)
        assert journalled is not None
        assert journalled.order_id == order.order_id


async def test_a_market_order_fills_with_its_fee_and_the_position_margin_and_pnl_follow(perps: Perps) -> None:
    async with perps.engine() as engine:
        venue = engine.venue
        assert isinstance(venue, DerivativesVenue)
        order = await engine.place(BTC, "BUY", PerpMarket("0.05"))
        assert await order.done(10.0) is OrderState.FILLED
        [placed] = perps.ledger()[order.client_order_id]
        assert order.filled_size == placed.filled_amount == D("0.05")
        assert order.filled_value == placed.filled_amount * placed.average_price
        fees = sum(t["fee"] for t in perps.desk.user_trades if t["order_id"] == order.order_id)
        assert fees > 0
        assert order.total_fees == fees
        assert engine.position(BTC) == D("0.05")
        await until(
            lambda: venue.position_risk(BTC) is not None and venue.position_risk(BTC).size == D("0.05")
        )
        risk = venue.position_risk(BTC)
        assert risk is not None
        assert risk.initial_margin is not None
        assert risk.initial_margin > 0
        await until(lambda: venue.margin_account() is not None and venue.margin_account().initial_margin)
        account = venue.margin_account()
        assert account is not None
        assert account.currency == "USDC"
        assert account.equity is not None
        assert account.equity > 0

        close = await engine.close_position(BTC)
        assert await close.done(10.0) is OrderState.FILLED
        assert close.side == "SELL"
        [closing] = perps.ledger()[close.client_order_id]
        assert closing.reduce_only
        assert perps.sim.derivatives.margin.position(BTC) is None or engine.position(BTC) == 0
        await until(lambda: _position(venue) == 0)
        await engine.refresh_balances()
        assert engine.position(BTC) == 0


async def test_kill_cancels_everything_with_one_call_and_refuses_what_follows(perps: Perps) -> None:
    async with perps.engine() as engine:
        price = perps.far_bid()
        orders = [await engine.place(BTC, "BUY", PerpLimit("0.01", price - i)) for i in range(3)]
        # an order on the account the engine does not track is cancelled too
        async with perps_session(perps) as session:
            outsider = await session.buy(BTC, D("0.01"), price=price, label="by-hand")
            calls_before = perps.sim.derivatives.table.calls.get("private/cancel", 0)
            assert await engine.kill("test") == 4
            assert perps.sim.derivatives.table.calls.get("private/cancel", 0) == calls_before
            for order in orders:
                assert await order.done(10.0) is OrderState.CANCELLED
            assert not any(o.is_live for o in perps.desk.orders.values())
            assert perps.desk.get(outsider.order.order_id).cancel_reason == "user_request"
        with pytest.raises(OrderRefused) as refused:
            await engine.place(BTC, "BUY", PerpLimit("0.01", price))
        assert refused.value.rule is RiskRule.KILL_SWITCH


async def test_cancel_all_takes_the_tracked_orders_of_one_instrument(perps: Perps) -> None:
    async with perps.engine() as engine:
        btc = [await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid())) for _ in range(2)]
        eth = await engine.place(ETH, "BUY", PerpLimit("0.1", perps.far_bid(ETH)))
        assert await engine.cancel_all(BTC) == 2
        assert all(o.state is OrderState.CANCELLED for o in btc)
        assert eth.state is OrderState.OPEN
        assert [o.client_order_id for o in engine.open_orders()] == [eth.client_order_id]


def _position(venue: DerivativesVenue) -> Decimal | None:
    risk = venue.position_risk(BTC)
    return None if risk is None else risk.size


async def test_margin_rules_read_the_gateways_account_and_mark(perps: Perps) -> None:
    # equity 100,000 USDC; at most 3x on BTC, margin usage at most 20%, the band 5% around the mark
    risk = RiskConfig(
        products={BTC: ProductLimits(max_leverage=D("3"))}, max_margin_usage=D("0.2"), price_band=D("0.05")
    )
    async with perps.engine(risk=risk) as engine:
        venue = engine.venue
        assert isinstance(venue, DerivativesVenue)
        await until(lambda: venue.mark_price(BTC) is not None, what="a mark price from the ticker")
        mark = venue.mark_price(BTC)
        assert mark is not None
        equity = venue.margin_account().equity  # type: ignore[union-attr]
        assert equity is not None
        near = perps.far_bid(fraction="0.99")
        # 1.5x passes; 3.5x is refused by leverage before anything reaches the gateway
        ok = await engine.place(BTC, "BUY", PerpLimit(_size(equity * D("1.5"), mark), near))
        assert ok.state is OrderState.OPEN
        with pytest.raises(OrderRefused) as refused:
            await engine.place(BTC, "BUY", PerpMarket(_size(equity * D("3.5"), mark)))
        assert refused.value.rule is RiskRule.LEVERAGE
        # the instrument's 10x: 2.5x of equity in notional needs 25% of it as initial margin
        with pytest.raises(OrderRefused) as refused:
            await engine.place(BTC, "BUY", PerpMarket(_size(equity * D("2.5"), mark)))
        assert refused.value.rule is RiskRule.MARGIN_USAGE
        with pytest.raises(OrderRefused) as refused:
            await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid(fraction="0.9")))
        assert refused.value.rule is RiskRule.PRICE_BAND
        assert [o.label for o in perps.desk.orders.values()] == [ok.client_order_id]


def _size(notional: Decimal, mark: Decimal) -> Decimal:
    return (notional / mark).quantize(D("0.0001"))


async def test_after_a_reconnect_the_open_orders_are_fetched_and_what_changed_in_the_gap_is_looked_up(
    perps: Perps,
) -> None:
    no_cod = replace(TEST_SESSION, cancel_on_disconnect=False)
    async with perps.engine(perps.venue(session_config=no_cod)) as engine:
        venue = engine.venue
        assert isinstance(venue, DerivativesVenue)
        filled = await engine.place(BTC, "BUY", PerpLimit("0.02", perps.far_bid()))
        cancelled = await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid()))
        resting = await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid()))
        # the socket drops; in the same turn, before any reconnect, one order fills and one is cancelled
        desk = perps.desk
        assert perps.sim.derivatives.drop_sockets(perps.key.name) == 1
        price = perps.far_ask(fraction="1.01")
        desk.edit(
            desk.get(filled.order_id),
            Params({"order_id": filled.order_id, "amount": D("0.02"), "price": price}),
        )
        desk.cancel(cancelled.order_id)
        assert desk.get(filled.order_id).order_state == "filled"
        await until(lambda: venue.resyncs >= 1, what="the open orders fetched after the reconnect")
        assert await filled.done(10.0) is OrderState.FILLED
        assert filled.filled_size == D("0.02")
        assert await cancelled.done(10.0) is OrderState.CANCELLED
        assert resting.state is OrderState.OPEN
        assert venue.session.stats.connects == 2
        assert engine.position(BTC) == D("0.02")


async def test_closing_a_short_moves_the_position_back_to_zero_as_its_fill_arrives(perps: Perps) -> None:
    async with perps.engine() as engine:
        short = await engine.place(BTC, "SELL", PerpMarket("0.03"))
        assert await short.done(10.0) is OrderState.FILLED
        assert engine.position(BTC) == D("-0.03")
        close = await engine.close_position(BTC)
        assert await close.done(10.0) is OrderState.FILLED
        assert close.side == "BUY"
        assert close.filled_size == D("0.03")
        assert engine.position(BTC) == 0  # from the close's own fill, before any refresh from the gateway
        # a close with nothing to close is refused by the venue, and nothing is sent
        with pytest.raises(OrderRejected):
            await engine.close_position(BTC)
        assert len(perps.desk.orders) == 2


async def test_drain_refuses_new_orders_cancels_the_open_ones_and_waits_for_the_confirmations(
    perps: Perps,
) -> None:
    async with perps.engine() as engine:
        orders = [await engine.place(BTC, "SELL", PerpLimit("0.01", perps.far_ask())) for _ in range(3)]
        assert await engine.drain("test", timeout=10.0) == 3
        assert all(o.state is OrderState.CANCELLED for o in orders)  # confirmed before drain returned
        assert not engine.open_orders()
        with pytest.raises(OrderRefused):
            await engine.place(BTC, "SELL", PerpLimit("0.01", perps.far_ask()))
    assert {o.cancel_reason for o in perps.desk.orders.values()} == {"user_request"}
