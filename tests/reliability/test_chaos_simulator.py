"""Chaos on the venue side: the simulator restarted mid-run, connections dropped after the order was accepted,
slow answers, 5xx, WebSocket drops and gaps, all at once and under the simulator's own rate limits (Advanced
Trade's 30 private requests/s per key, the client's default budget).

Every run must end with the journal equal to the ledger (nothing lost, nothing placed twice, every state
agreed), no order left unresolved, and no 429: the engine kept within its budget through every retry.
The simulator is in this process so that a restart keeps its ledger: it stops serving (every connection
closed, the port refusing) and serves again on the same port. `make chaos` (CHAOS_FULL=1) runs it longer,
with more restarts; CHAOS_SEED seeds the faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.auth import CdpKey
from engine.errors import EngineError, OrderRejected
from engine.net.retry import Backoff, RetryPolicy
from engine.risk import RiskConfig
from engine.sim import SimConfig, Simulator
from engine.trading.engine import Engine, EngineConfig
from engine.trading.journal import OrderJournal
from engine.trading.order_state import OrderState
from engine.venues.advanced.client import Client
from engine.venues.advanced.venue import from_exchange_status
from soak.legs import ADVANCED_FUTURES, ADVANCED_SPOT, Leg
from tests.support import chaos
from tests.support.keys import new_ed25519_key

FULL = os.environ.get("CHAOS_FULL") == "1"
ORDERS = 1500 if FULL else 160
RESTARTS = 8 if FULL else 2
TRADERS = 4
FAULTS = {
    "error_5xx_rate": 0.02,
    "drop_after_accept_rate": 0.04,
    "slow_response_rate": 0.04,
    "slow_response_s": 0.3,
    "ws_drop_rate": 0.003,
    "ws_gap_rate": 0.01,
}
# patient enough to outlast a restart (the port refuses for ~0.3 s) and a slow answer, same client_order_id
RETRY = RetryPolicy(max_attempts=10, base_delay_s=0.05, max_delay_s=0.5, budget_s=20.0)


class RestartableSimulator:
    """One `Simulator` (its ledger, books and limits) served, stopped and served again on the same port."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.port = 0
        self.base_url = ""
        self.restarts = 0
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        up, self._stop = asyncio.Event(), asyncio.Event()

        async def serve(stop: asyncio.Event) -> None:
            async with self.sim.serve("127.0.0.1", self.port) as base_url:
                self.base_url = base_url
                self.port = int(base_url.rsplit(":", 1)[1])
                up.set()
                await stop.wait()

        self._serving = asyncio.create_task(serve(self._stop))
        async with asyncio.timeout(10):
            await asyncio.wait([self._serving, asyncio.create_task(up.wait())], return_when="FIRST_COMPLETED")
        if self._serving.done():
            self._serving.result()  # raises what stopped it from serving

    async def stop(self) -> None:
        if self._stop is not None and self._serving is not None:
            self._stop.set()
            async with asyncio.timeout(10):
                await self._serving

    async def restart(self, down_for_s: float = 0.3) -> None:
        await self.stop()
        await asyncio.sleep(down_for_s)
        await self.start()
        self.restarts += 1


@contextlib.asynccontextmanager
async def restartable(seed: int) -> AsyncIterator[tuple[RestartableSimulator, CdpKey]]:
    sim = Simulator(SimConfig(seed=seed, tick_interval_s=0.1, heartbeat_interval_s=0.5))  # limits on
    key = new_ed25519_key()
    sim.register_cdp_key(key.name, key.public_key_pem)
    server = RestartableSimulator(sim)
    await server.start()
    try:
        yield server, CdpKey(key.name, key.private_key)
    finally:
        await server.stop()


async def _trade(engine: Engine, leg: Leg, numbers: list[int], placed: list[int]) -> None:
    while numbers:
        order = leg.order(numbers.pop())
        placed[0] += 1
        try:
            tracked = await engine.place(
                order.product_id, order.side, order.configuration, leverage=order.leverage
            )
            if order.rests and tracked.is_open:
                await engine.cancel(tracked)
        except OrderRejected:
            pass
        except (EngineError, OSError, TimeoutError):
            pass  # outcome unknown to us: the engine tracks it UNKNOWN and resolves it


async def _settle(engine: Engine, within_s: float = 30.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(EngineError, OSError, TimeoutError):
            await engine.cancel_all()
        if all(o.state.is_terminal for o in engine.orders.values()):
            return
        await asyncio.sleep(0.2)


@pytest.mark.chaos
@pytest.mark.timeout(300 if FULL else 120)
async def test_simulator_restarts_and_transport_faults_end_with_the_journal_equal_to_the_ledger(
    tmp_path: Path,
) -> None:
    seed = chaos.seed()
    journal_path = tmp_path / "journal.db"
    async with restartable(seed) as (server, key):
        server.sim.faults.update(FAULTS)
        client = Client(key, server.base_url, retry=RETRY, timeout_s=2.0)  # Advanced Trade's default budget
        config = EngineConfig(
            journal_path=journal_path,
            worker="chaos",
            products=("BTC-USD",),
            market_channels=("level2", "ticker"),
            risk=RiskConfig(check_balance=False),
            housekeeping_s=0.1,
            unknown_grace_s=0.5,
            ws_backoff=Backoff(initial=0.02, maximum=0.3),
        )
        placed = [0]
        async with client, Engine(key, config, client=client, base_url=server.base_url) as engine:
            flows = [list(range(n, ORDERS, TRADERS)) for n in range(TRADERS)]
            legs = [ADVANCED_SPOT, ADVANCED_FUTURES] * (TRADERS // 2)
            traders = [
                asyncio.create_task(_trade(engine, leg, flow, placed))
                for leg, flow in zip(legs, flows, strict=True)
            ]
            for restart in range(RESTARTS):  # spread over the run, by orders placed
                async with asyncio.timeout(120):
                    while placed[0] < (restart + 1) * ORDERS // (RESTARTS + 1):
                        await asyncio.sleep(0.05)
                await server.restart()
            async with asyncio.timeout(240 if FULL else 90):
                await asyncio.gather(*traders)
            server.sim.faults.clear()  # the run is over: what is left must settle
            await _settle(engine)
        sim = server.sim
        ledger = sim.ledger.entries()
        rate_limited = sum(stats.rate_limited for stats in sim.limiter.stats.values())
        injected = dict(sim.injected)
        ws_faults = (sim.hub.gaps_injected, sim.hub.drops_injected)

    hint = chaos.replay_hint()
    assert server.restarts == RESTARTS
    assert placed[0] == ORDERS
    assert injected["drop_after_accept"] > 0, injected
    assert injected["slow_response"] > 0, injected
    assert injected["error_5xx"] > 0, injected
    assert ws_faults[0] > 0, "no WebSocket gap was injected"
    ids = [str(entry["client_order_id"]) for entry in ledger]
    assert len(ids) == len(set(ids)), f"an order was placed twice ({hint})"
    by_id = {str(entry["client_order_id"]): entry for entry in ledger}
    with OrderJournal(journal_path) as journal:
        entries = {entry.client_order_id: entry for entry in journal.entries()}
        assert not journal.unresolved(), f"orders left unresolved ({hint})"
    assert len(entries) == ORDERS, "an order placed was not journalled"
    assert set(by_id) <= set(entries), f"accepted orders missing from the journal ({hint})"
    for client_order_id, entry in entries.items():
        if entry.state in (OrderState.NOT_PLACED, OrderState.REJECTED):
            assert client_order_id not in by_id, f"{client_order_id} is {entry.state.value} but was placed"
            continue
        exchange = by_id[client_order_id]
        assert entry.order_id == exchange["order_id"], client_order_id
        assert entry.state is from_exchange_status(str(exchange["status"])), (client_order_id, hint)
    assert rate_limited == 0, f"{rate_limited} answers 429 within the budget ({hint})"
