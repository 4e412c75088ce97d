"""Faults on perpetuals: the gateway ends the session when the key's credits run out (10028). The engine backs
off, reconnects and trades on; every intent is at most one order on the gateway, and the engine's picture of
each agrees with the simulator's ledger."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.errors import EngineError
from engine.sim.derivatives.config import Credits, DerivativesConfig
from engine.trading.order_state import OrderState
from engine.venues.derivatives import PerpLimit
from tests.derivatives.engine.conftest import BTC, Perps, until

TIGHT = DerivativesConfig(
    credits=Credits(matching_cost=10_000, matching_pool=50_000, matching_refill_per_s=20_000),
    funding_interval_s=0,
)


@pytest.mark.parametrize("sim_overrides", [{"derivatives": TIGHT}])
async def test_credit_exhaustion_ends_the_session_and_the_engine_resumes_without_a_duplicate(
    perps: Perps, sim_overrides: dict[str, Any]
) -> None:
    async with perps.engine() as engine:
        venue = engine.venue
        price = perps.far_bid()
        results = await asyncio.gather(
            *(engine.place(BTC, "BUY", PerpLimit("0.01", price - i)) for i in range(12)),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        assert failures, "the burst should have exhausted the gateway's credits"
        assert all(isinstance(f, EngineError) for f in failures)
        # every order the engine tracks settles: answered, or looked up by label after the reconnect
        await until(lambda: not any(o.state.is_unresolved for o in engine.orders.values()), timeout=20.0)
        ledger = perps.ledger()
        for tracked in list(engine.orders.values()) + list(engine.settled.values()):
            placed = ledger.get(tracked.client_order_id, [])
            assert len(placed) <= 1, f"{tracked.client_order_id} was placed {len(placed)} times"
            if not placed:
                assert tracked.state in (OrderState.REJECTED, OrderState.NOT_PLACED)
            else:
                assert tracked.order_id == placed[0].order_id
        assert venue.connections[0].stats.disconnects >= 1
        # requests in flight when the session ended were lost, then found (or not) by label
        assert venue.connections[0].stats.lost_in_flight >= 1
        states = [o.state for o in list(engine.orders.values()) + list(engine.settled.values())]
        assert OrderState.NOT_PLACED in states
        # each buy the gateway ran made one order: nothing was sent again after the reconnect
        assert perps.sim.derivatives.table.calls["private/buy"] == len(ledger)
        # trading resumes on the new session once the credits refill
        await until(lambda: venue.connections[0].connected.is_set(), timeout=20.0)
        await asyncio.sleep(0.5)
        after = await engine.place(BTC, "BUY", PerpLimit("0.01", price))
        assert after.state is OrderState.OPEN
        assert len(perps.ledger()[after.client_order_id]) == 1
