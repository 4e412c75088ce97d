"""Reconciliation on start against the gateway: intents whose outcome was never learnt are resolved by label,
orders that moved while the engine was down are refreshed and their fills fetched from the user trades,
open orders the journal does not know are reported, and positions come from the gateway."""

from __future__ import annotations

from decimal import Decimal

from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.venues.derivatives import PerpLimit
from tests.derivatives.engine.conftest import BTC, Perps, perps_session

D = Decimal


async def test_a_restart_reconciles_the_journal_with_the_gateway(perps: Perps) -> None:
    async with perps.engine() as engine:
        resting = await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid()))
        to_fill = await engine.place(BTC, "BUY", PerpLimit("0.03", perps.far_bid(fraction="0.8")))
        kept = await engine.place(BTC, "BUY", PerpLimit("0.01", perps.far_bid(fraction="0.7")))
    # the engine stopped with a logout: its orders rest (cancel-on-disconnect did not fire)
    assert all(perps.desk.get(o.order_id).is_live for o in (resting, to_fill, kept))

    # a crash between journalling two intents and learning their outcome: one reached the gateway
    journal = OrderJournal(perps.journal_path)
    journal.record_intent("perp-crashed-1", BTC, "BUY", "{}")
    journal.record_intent("perp-crashed-2", BTC, "BUY", "{}")
    journal.flush()
    journal.close()

    # while the engine is down: one order cancelled, one filled, one placed by hand, the crashed one placed
    session = perps_session(perps)
    await session.open()
    await session.cancel(resting.order_id)
    await session.edit(to_fill.order_id, amount=D("0.03"), price=perps.far_ask(fraction="1.01"))
    by_hand = await session.buy(BTC, D("0.01"), price=perps.far_bid(fraction="0.6"), label="by-hand")
    crashed = await session.buy(BTC, D("0.01"), price=perps.far_bid(fraction="0.6"), label="perp-crashed-1")
    await session.logout()
    assert perps.desk.get(to_fill.order_id).order_state == "filled"

    async with perps.engine() as engine:
        report = engine.reconcile_report
        assert report is not None
        assert report.resolved == {"perp-crashed-1": OrderState.OPEN, "perp-crashed-2": OrderState.NOT_PLACED}
        assert report.refreshed == {
            resting.client_order_id: OrderState.CANCELLED,
            to_fill.client_order_id: OrderState.FILLED,
        }
        assert [o.order_id for o in report.unknown_open_orders] == [by_hand.order.order_id]
        trades = [t for t in perps.desk.user_trades if t["order_id"] == to_fill.order_id]
        assert report.fills_fetched == len(trades) > 0
        # positions from the gateway
        assert engine.position(BTC) == D("0.03")
        # what is still open is tracked again, the crashed intent included, under the gateway's order id
        open_ids = {o.client_order_id: o.order_id for o in engine.open_orders()}
        assert open_ids == {kept.client_order_id: kept.order_id, "perp-crashed-1": crashed.order.order_id}
        filled = await engine.journalled(to_fill.client_order_id)
        assert filled is not None
        assert filled.state is OrderState.FILLED
        assert filled.filled_size == D("0.03")
