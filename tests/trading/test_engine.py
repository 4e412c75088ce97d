"""The embedded engine against the simulator: orders, states, positions, risk, kill switch, reconciliation."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import OrderRejected, OutcomeUnknown
from engine.risk import OrderRefused, ProductLimits, RiskConfig, RiskRule
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.trading.tracked import TrackedOrder
from engine.venues.advanced.orders import LimitGtc, MarketIoc, OrderRequest, Side, SorLimitIoc
from engine.venues.base import OrderUpdate
from tests.trading.conftest import Venue, eventually

D = Decimal


def below_market(venue: Venue, ticks: int = 100) -> str:
    return str(venue.sim.markets["BTC-USD"].best_bid() - ticks)


async def test_place_track_and_cancel_a_limit_order(venue: Venue) -> None:
    async with venue.engine() as engine:
        await engine.wait_ready()
        updates: list[OrderState] = []
        engine.on_order(lambda order: updates.append(order.state))
        order = await engine.place(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
        )
        assert order.state is OrderState.OPEN
        assert order.client_order_id.startswith("t-")
        assert [e["order_id"] for e in venue.ledger(order.client_order_id)] == [order.order_id]
        assert engine.open_orders("BTC-USD") == [order]
        usd_before = engine.balances()["USD"]
        assert await engine.cancel(order)
        assert order.state is OrderState.CANCELLED
        assert await order.done(1) is OrderState.CANCELLED
        assert engine.balances()["USD"] > usd_before  # the reservation was released
        assert not await engine.cancel(order)  # already done
        assert updates[0] is OrderState.OPEN
        assert updates[-1] is OrderState.CANCELLED
    with OrderJournal(venue.journal_path) as journal:
        entry = journal.get(order.client_order_id)
        assert entry is not None
        assert (entry.state, entry.order_id) == (OrderState.CANCELLED, order.order_id)
        assert json.loads(entry.request)["order_configuration"]["limit_limit_gtc"]["base_size"] == "0.01"


async def test_a_market_order_fills_and_moves_position_and_balances(venue: Venue) -> None:
    async with venue.engine() as engine:
        await engine.wait_ready()
        btc_before = engine.balances()["BTC"]
        stream = engine.order_updates()
        order = await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.05"))
        assert await order.done(5) is OrderState.FILLED
        assert order.filled_size == D("0.05")
        assert order.average_price is not None
        assert engine.position("BTC-USD") == D("0.05")
        assert engine.balances()["BTC"] == btc_before + D("0.05")
        seen = [await stream.__anext__()]
        assert seen[0] is order
        # the fills are fetched and journalled in the background
        await eventually(lambda: not engine._fills_due)
        sell = await engine.place("BTC-USD", Side.SELL, MarketIoc(base_size="0.02"))
        assert await sell.done(5) is OrderState.FILLED
        assert engine.position("BTC-USD") == D("0.03")
    with OrderJournal(venue.journal_path) as journal:
        fills = [f for f in journal.fills() if f.order_id == order.order_id]
        assert sum(f.size for f in fills) == D("0.05")


async def test_positions_are_rebuilt_from_the_journal_on_restart(venue: Venue) -> None:
    async with venue.engine() as engine:
        await engine.wait_ready()
        order = await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.04"))
        await order.done(5)
    async with venue.engine() as engine:
        assert engine.position("BTC-USD") == D("0.04")


async def test_risk_refusals_send_nothing_and_are_audited(venue: Venue) -> None:
    risk = RiskConfig(default_limits=ProductLimits(max_order_size=D("0.5")), price_band=D("0.02"))
    async with venue.engine(risk=risk) as engine:
        await engine.wait_ready()
        with pytest.raises(OrderRefused) as too_big:
            await engine.place("BTC-USD", Side.BUY, LimitGtc(base_size="1", limit_price=below_market(venue)))
        assert too_big.value.rule is RiskRule.ORDER_SIZE
        with pytest.raises(OrderRefused) as fat_finger:
            await engine.place("BTC-USD", Side.BUY, LimitGtc(base_size="0.1", limit_price="6000"))
        assert fat_finger.value.rule is RiskRule.PRICE_BAND
        refused = [too_big.value.client_order_id, fat_finger.value.client_order_id]
        sell = LimitGtc(base_size="0.4", limit_price="60100")
        for _ in range(5):  # 2 BTC at start: five sells of 0.4 are covered ...
            await engine.place("BTC-USD", Side.SELL, sell)
        with pytest.raises(OrderRefused) as broke:  # ... the sixth is not, the open ones' holds counted
            await engine.place("BTC-USD", Side.SELL, sell)
        assert broke.value.rule is RiskRule.BALANCE
        assert len(engine.open_orders()) == 5
    assert all(not venue.ledger(coid) for coid in refused)
    with OrderJournal(venue.journal_path) as journal:
        assert all(journal.get(coid) is None for coid in refused)
    audit = [
        json.loads(line)
        for line in venue.journal_path.with_name("journal.db.audit.jsonl").read_text().splitlines()
    ]
    refusals = [r for r in audit if r["event"] == "order_refused"]
    assert [r["rule"] for r in refusals] == ["order_size", "price_band", "balance"]
    assert sum(r["event"] == "order_passed" for r in audit) == 5


async def test_the_kill_switch_cancels_everything_and_refuses_new_orders(venue: Venue) -> None:
    async with venue.engine() as engine:
        await engine.wait_ready()
        mine = [
            await engine.place(
                "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue, i))
            )
            for i in range(100, 103)
        ]
        # an order placed by someone else with the same key: the engine does not track it
        foreign = await engine.client.create_order(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue, 200))
        )
        cancelled = await engine.kill("test: runaway strategy")
        assert cancelled == 4
        assert all(order.state is OrderState.CANCELLED for order in mine)
        assert venue.sim.engine.orders[foreign.order_id].status == "CANCELLED"
        with pytest.raises(OrderRefused) as refused:
            await engine.place(
                "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
            )
        assert refused.value.rule is RiskRule.KILL_SWITCH
        engine.risk.reset_kill_switch()
        order = await engine.place(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
        )
        assert order.state is OrderState.OPEN


async def test_edit_goes_through_risk(venue: Venue) -> None:
    async with venue.engine(risk=RiskConfig(price_band=D("0.02"))) as engine:
        await engine.wait_ready()
        order = await engine.place(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
        )
        new_price = below_market(venue, 150)
        assert await engine.edit(order, price=new_price)
        assert venue.sim.engine.orders[order.order_id].spec.limit_price == D(new_price)
        with pytest.raises(OrderRefused) as refused:
            await engine.edit(order, price="100")
        assert refused.value.rule is RiskRule.PRICE_BAND


async def test_a_rejected_order_is_journalled_rejected(venue: Venue) -> None:
    async with venue.engine(risk=RiskConfig(check_balance=False)) as engine:
        await engine.wait_ready()
        with pytest.raises(OrderRejected) as rejected:
            await engine.place(
                "BTC-USD", Side.BUY, LimitGtc(base_size="1000", limit_price=below_market(venue))
            )
        client_order_id = rejected.value.client_order_id
        assert client_order_id is not None
        order = engine.order(client_order_id)
        assert order.state is OrderState.REJECTED
        assert order.failure_reason
    with OrderJournal(venue.journal_path) as journal:
        entry = journal.get(client_order_id)
        assert entry is not None
        assert entry.state is OrderState.REJECTED


async def test_an_unknown_outcome_is_resolved_in_the_background(venue: Venue) -> None:
    async with venue.engine() as engine:
        await engine.wait_ready()
        # the order is accepted, its response lost, and every lookup fails: the client gives up
        venue.sim.faults.update({"drop_after_accept_rate": 1.0, "error_5xx_rate": 1.0})
        with pytest.raises(OutcomeUnknown) as unknown:
            await engine.place(
                "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
            )
        order = engine.order(unknown.value.client_order_id)
        assert order.state is OrderState.UNKNOWN
        venue.sim.faults.clear()
        await eventually(lambda: not order.state.is_unresolved)
        # whichever way it went (503s may have refused every attempt), the engine now agrees with the exchange
        placed = venue.ledger(order.client_order_id)
        if placed:
            assert order.state is OrderState.OPEN
            assert [e["order_id"] for e in placed] == [order.order_id]
        else:
            assert order.state is OrderState.NOT_PLACED


async def test_a_futures_order_with_leverage(venue: Venue) -> None:
    async with venue.engine(products=("BIP-20DEC30-CDE",)) as engine:
        await engine.wait_ready()
        bid = venue.sim.markets["BIP-20DEC30-CDE"].best_bid()
        order = await engine.place(
            "BIP-20DEC30-CDE", Side.BUY, LimitGtc(base_size="2", limit_price=str(bid - 50)), leverage="3"
        )
        assert order.state is OrderState.OPEN
        assert venue.ledger(order.client_order_id)[0]["product_id"] == "BIP-20DEC30-CDE"
        filled = await engine.place("BIP-20DEC30-CDE", Side.BUY, MarketIoc(base_size="1"))
        assert await filled.done(5) is OrderState.FILLED
        assert engine.position("BIP-20DEC30-CDE") == D("1")


async def test_start_reconciles_the_journal_with_the_exchange(venue: Venue) -> None:
    """The state a crash leaves behind, built by hand, then an engine started on it."""
    price = below_market(venue)
    async with venue.client() as client:
        with OrderJournal(venue.journal_path) as journal:

            def intent(coid: str) -> OrderRequest:
                request = OrderRequest(
                    product_id="BTC-USD",
                    side=Side.BUY,
                    configuration=LimitGtc(base_size="0.01", limit_price=price),
                    client_order_id=coid,
                )
                journal.record_intent(coid, "BTC-USD", "BUY", request.body.decode())
                return request

            # died after sending, before the answer: the order exists
            sent = await client.submit_order(intent("t-0-sent"))
            # died before sending: it does not
            intent("t-0-unsent")
            # journalled open, cancelled while we were down
            gone = await client.submit_order(intent("t-0-gone"))
            journal.record_outcome("t-0-gone", OrderState.OPEN, order_id=gone.order_id)
            # journalled open, filled while we were down
            filled_request = OrderRequest(
                product_id="BTC-USD",
                side=Side.BUY,
                configuration=MarketIoc(base_size="0.01"),
                client_order_id="t-0-fill",
            )
            journal.record_intent("t-0-fill", "BTC-USD", "BUY", filled_request.body.decode())
            journal.flush()
            filled = await client.submit_order(filled_request)
        await client.cancel_orders([gone.order_id])
        stranger = await client.create_order(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=price)
        )

    async with venue.engine() as engine:
        report = engine.reconcile_report
        assert report is not None
        assert report.resolved == {
            "t-0-sent": OrderState.OPEN,
            "t-0-unsent": OrderState.NOT_PLACED,
            "t-0-fill": OrderState.FILLED,
        }
        assert report.refreshed == {"t-0-gone": OrderState.CANCELLED}
        assert [o.order_id for o in report.unknown_open_orders] == [stranger.order_id]
        assert report.fills_fetched >= 1
        assert report.not_placed == ["t-0-unsent"]
        tracked: TrackedOrder = engine.order("t-0-sent")
        assert (tracked.state, tracked.order_id) == (OrderState.OPEN, sent.order_id)
        assert "t-0-fill" not in engine.orders  # terminal: nothing left to track
        assert engine.position("BTC-USD") == D("0.01")
    with OrderJournal(venue.journal_path) as journal:
        assert {f.order_id for f in journal.fills()} == {filled.order_id}
        assert not journal.unresolved()


async def test_busy_poll_keeps_the_loop_polling_while_started_and_stops_with_the_engine(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The poller yields with sleep(0). Its turns are counted, not timed: a loaded machine gives it less CPU,
    # but still many turns, where a loop that sleeps takes none.
    turns = 0
    original_sleep = asyncio.sleep

    async def counting_sleep(delay: float, result: Any = None) -> Any:
        nonlocal turns
        if delay == 0:
            turns += 1
        return await original_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", counting_sleep)
    async with venue.engine(busy_poll=True) as engine:
        await engine.wait_ready()
        poller = engine._busy_poll
        assert poller is not None
        before = turns
        await original_sleep(0.2)
        assert not poller.done()
        assert turns - before > 100  # the loop spun instead of sleeping
        order = await engine.place(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
        )
        assert order.state is OrderState.OPEN
    assert poller.cancelled()
    assert engine._busy_poll is None


async def test_stopping_cancels_a_strategy_mid_order_and_the_next_start_resolves_it(venue: Venue) -> None:
    placing = asyncio.Event()
    outcome: list[BaseException] = []
    # no user channel: only the held-back REST response could say the order is open
    async with venue.engine(user_channel=False) as engine:
        await engine.wait_ready()
        # the order takes effect, but its response is held back past the engine's stop
        venue.sim.faults.update({"slow_response_rate": 1.0, "slow_response_s": 5.0})

        async def on_ticker(_: object) -> None:
            if placing.is_set():
                return
            placing.set()
            try:
                await engine.place(
                    "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
                )
            except BaseException as error:
                outcome.append(error)
                raise

        engine.on_ticker(on_ticker, "BTC-USD")
        await asyncio.wait_for(placing.wait(), 5)
        await eventually(lambda: len(engine.orders) == 1)
        (client_order_id,) = engine.orders
        await eventually(lambda: bool(venue.ledger(client_order_id)))
    venue.sim.faults.clear()
    assert [type(error) for error in outcome] == [
        asyncio.CancelledError
    ]  # cancelled by the stop, not left running
    with OrderJournal(venue.journal_path) as journal:
        entry = journal.get(client_order_id)
        assert entry is not None
        assert entry.state is OrderState.UNKNOWN  # journalled as such before the journal closed
    async with venue.engine() as engine:
        assert engine.reconcile_report is not None
        assert engine.reconcile_report.resolved == {client_order_id: OrderState.OPEN}
        assert engine.order(client_order_id).order_id == venue.ledger(client_order_id)[0]["order_id"]


async def test_the_journal_flushes_right_behind_an_outcome_and_batches_a_burst(venue: Venue) -> None:
    """An outcome after a quiet spell is handed to SQLite on the same turn of the loop, behind the response;
    the outcomes of a burst share one flush, at most one per `journal_flush_s`."""
    async with venue.engine(journal_flush_s=0.2) as engine:
        journal = engine.journal
        assert journal is not None
        loop = asyncio.get_running_loop()
        flushes: list[tuple[float, int]] = []  # (loop time, records handed over)
        start_flush = journal.start_flush

        def counted() -> bool:
            records = journal.pending
            taken = start_flush()
            if taken:
                flushes.append((loop.time(), records))
            return taken

        journal.start_flush = counted  # type: ignore[method-assign]
        bid = LimitGtc(base_size="0.001", limit_price="1000.00")
        await asyncio.sleep(0.25)  # a quiet spell longer than journal_flush_s
        flushes.clear()
        first = await engine.place("BTC-USD", Side.BUY, bid)
        answered = loop.time()
        await asyncio.sleep(0)
        assert len(flushes) == 1
        assert flushes[0][0] - answered < 0.05  # right behind the answer
        burst = await asyncio.gather(*(engine.place("BTC-USD", Side.BUY, bid) for _ in range(3)))
        await eventually(lambda: journal.pending == 0)
        assert len(flushes) == 2  # the burst's three intents and outcomes in one more flush,
        assert flushes[1][1] >= 6
        assert flushes[1][0] - flushes[0][0] >= 0.2 - 0.01  # no sooner than journal_flush_s after the first
        assert all(order.state is OrderState.OPEN for order in (first, *burst))


async def test_with_durability_os_the_event_loop_runs_no_sqlite_while_trading(venue: Venue) -> None:
    """Intents, outcomes and flushes on the order path: the loop appends to the intent log, and every SQLite
    statement runs on the journal's writer thread."""
    async with venue.engine() as engine:
        journal = engine.journal
        assert journal is not None
        statements: list[tuple[str, str]] = []  # (thread name, SQL)
        journal._db.set_trace_callback(lambda sql: statements.append((threading.current_thread().name, sql)))
        bid = LimitGtc(base_size="0.001", limit_price="1000.00")
        orders = [await engine.place("BTC-USD", Side.BUY, bid) for _ in range(5)]
        await eventually(lambda: journal.pending == 0)
        journal._db.set_trace_callback(None)
        assert any("INSERT OR IGNORE INTO orders" in sql for _, sql in statements)
        assert {thread.rsplit("_", 1)[0] for thread, _ in statements} == {"journal-writer"}
        entries = {e.client_order_id: e for e in journal.entries()}
        assert all(entries[o.client_order_id].state is OrderState.OPEN for o in orders)


async def test_settled_orders_leave_the_live_set_once_their_fills_are_journalled(venue: Venue) -> None:
    # a bot placing orders for weeks must not hold every order it ever placed: settled orders move to a
    # bounded `settled`, reachable through `Engine.order`, the rest from the journal
    async with venue.engine(settled_orders_kept=3) as engine:
        await engine.wait_ready()
        filled = [await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.001")) for _ in range(4)]
        resting = await engine.place(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
        )
        cancelled = await engine.place(
            "BTC-USD", Side.BUY, LimitGtc(base_size="0.01", limit_price=below_market(venue))
        )
        assert await engine.cancel(cancelled)
        for order in filled:
            assert await order.done(5) is OrderState.FILLED
        await eventually(lambda: list(engine.orders) == [resting.client_order_id])
        # which three are kept depends on the order they settled in (a fill is journalled when it is fetched)
        settled = {o.client_order_id: o for o in (*filled, cancelled)}
        assert len(engine.settled) == 3
        assert set(engine.settled) <= set(settled)
        for client_order_id in engine.settled:
            assert engine.order(client_order_id) is settled[client_order_id]
        beyond = [cid for cid in settled if cid not in engine.settled]
        assert len(beyond) == 2
        for client_order_id in beyond:  # beyond the kept window: in the journal
            assert engine.order(client_order_id) is None
            journalled = await engine.journalled(client_order_id)
            assert journalled is not None
            assert journalled.state is settled[client_order_id].state
        assert engine.open_orders() == [resting]
        assert engine.position("BTC-USD") == D("0.004")
        # news about a settled order is still its own, not a stranger's
        kept = settled[next(iter(engine.settled))]
        engine._on_order_event(OrderUpdate(kept.client_order_id, kept.order_id, kept.state))
        assert not engine.external_orders
    with OrderJournal(venue.journal_path) as journal:
        assert {f.order_id for f in journal.fills()} == {o.order_id for o in filled}


async def test_the_journal_window_of_recent_ids_is_configured_and_an_id_past_it_is_still_refused(
    venue: Venue,
) -> None:
    async with venue.engine(products=(), journal_recent_ids=2) as engine:
        ids = [f"window-{n}" for n in range(4)]
        for client_order_id in ids:  # each expires at once: settled, then retired from `orders`
            order = SorLimitIoc(base_size="0.001", limit_price="30000")
            await engine.place("BTC-USD", Side.BUY, order, client_order_id=client_order_id)
        await eventually(lambda: not engine.orders)
        assert engine.journal is not None
        # the first two left the exact window of two: memory can only say "perhaps", SQLite says "used"
        assert engine.journal._used.seen(ids[0]) is None
        assert engine.journal._used.seen(ids[3]) is True
        for reused in (ids[0], ids[3]):
            with pytest.raises(sqlite3.IntegrityError, match="already journalled"):
                await engine.place("BTC-USD", Side.BUY, order, client_order_id=reused)
    assert [e["client_order_id"] for e in venue.sim.ledger.entries()] == ids
