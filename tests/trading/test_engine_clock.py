"""The Engine on a hand-driven clock (engine.clock.ManualClock), against the simulator: the daily loss
limit's trading day rolls over when the clock says so, the order-rate cooldown runs on the clock's time,
and the journal and the audit log date their records by it. No sleeps stand in for time passing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from engine.clock import ManualClock
from engine.risk import OrderRefused, RiskConfig, RiskRule
from engine.trading.engine import Engine
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.venues.advanced.client import Client
from engine.venues.advanced.orders import MarketIoc, Side
from tests.trading.conftest import FAST_RETRY, Venue

DAY_S = 86_400.0
SIZE = "0.05"


async def test_the_daily_loss_day_rolls_over_with_the_clock(venue: Venue) -> None:
    clock = ManualClock(now=1_767_225_600.0 + DAY_S - 60)  # 2026-01-01 23:59 UTC
    risk = RiskConfig(daily_loss_limit=Decimal("0.01"))
    key = venue.cdp_key()
    async with (
        Client(key, venue.base_url, retry=FAST_RETRY, timeout_s=2.0) as client,
        Engine(key, venue.config(risk=risk), client=client, clock=clock) as engine,
    ):
        await engine.wait_ready()
        bought = await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size=SIZE))
        assert await bought.done(5) is OrderState.FILLED
        sold = await engine.place("BTC-USD", Side.SELL, MarketIoc(base_size=SIZE))  # reduces: passes
        assert await sold.done(5) is OrderState.FILLED
        assert engine.position("BTC-USD") == 0
        assert engine.portfolio.daily_pnl(lambda _: None) < -risk.daily_loss_limit  # fees and the spread
        with pytest.raises(OrderRefused) as refused:
            await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size=SIZE))
        assert refused.value.rule is RiskRule.DAILY_LOSS

        clock.advance(59.0)  # 23:59:59: still the same trading day
        with pytest.raises(OrderRefused):
            await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size=SIZE))
        clock.advance(1.0)  # midnight UTC: a new day, its loss starts at zero
        next_day = clock.now()
        again = await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size=SIZE))
        assert await again.done(5) is OrderState.FILLED

    with OrderJournal(venue.journal_path) as journal:
        created = {e.client_order_id: e.created_ns for e in journal.entries()}
    assert created[bought.client_order_id] == created[sold.client_order_id] == int((next_day - 60) * 1e9)
    assert created[again.client_order_id] == int(next_day * 1e9)
    audit_path = venue.journal_path.with_name(venue.journal_path.name + ".audit.jsonl")
    audit = [json.loads(line) for line in audit_path.read_text().splitlines()]
    decisions = [(r["event"], r.get("rule"), r["ts"]) for r in audit if r["event"].startswith("order_")]
    assert decisions == [
        ("order_passed", None, next_day - 60),
        ("order_passed", None, next_day - 60),
        ("order_refused", "daily_loss", next_day - 60),
        ("order_refused", "daily_loss", next_day - 1),
        ("order_passed", None, next_day),
    ]


async def test_the_order_rate_cooldown_runs_on_the_engines_clock(venue: Venue) -> None:
    clock = ManualClock()
    risk = RiskConfig(max_orders=2, rate_window=1.0, rate_cooldown=30.0)
    key = venue.cdp_key()
    async with (
        Client(key, venue.base_url, retry=FAST_RETRY, timeout_s=2.0) as client,
        Engine(key, venue.config(risk=risk), client=client, clock=clock) as engine,
    ):
        await engine.wait_ready()
        for _ in range(2):
            await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.001"))
        with pytest.raises(OrderRefused) as capped:
            await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.001"))
        assert capped.value.rule is RiskRule.ORDER_RATE
        # However long the orders above took on the wire, the engine's clock has not moved: the window holds
        clock.advance(29.0)
        with pytest.raises(OrderRefused) as cooling:
            await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.001"))
        assert cooling.value.rule is RiskRule.COOLDOWN
        clock.advance(1.0)  # the cooldown is over
        placed = await engine.place("BTC-USD", Side.BUY, MarketIoc(base_size="0.001"))
        assert await placed.done(5) is OrderState.FILLED
